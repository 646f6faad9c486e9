package main

// The management API against the real binary: with PostgreSQL, a change
// made through the API of one server is answered by dig at another, and a
// drain takes the endpoint out of the pool's answers; in zone-file mode,
// an RRset written through the API is journaled, answered and kept across
// a restart, and what only the files hold is refused.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// apiURL returns the management API's URL that m logged.
func (m *meridian) apiURL(t *testing.T) string {
	t.Helper()
	l := m.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return l.Msg == "Management API listening" })
	u, _ := l.attrs["url"].(string)
	if u == "" {
		t.Fatalf("API log line without url: %v", l.attrs)
	}
	return u
}

// makeAPIToken runs "meridian api-token" with args and returns the token and
// the api.tokens entry it printed.
func makeAPIToken(t *testing.T, args ...string) (token, entry string) {
	t.Helper()
	out, err := exec.Command(meridianBinary(t), append([]string{"api-token"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("meridian api-token: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "token: "); ok {
			token = v
		}
		if strings.HasPrefix(l, "- {sha256:") {
			entry = l
		}
	}
	if token == "" || entry == "" {
		t.Fatalf("meridian api-token printed:\n%s", out)
	}
	return token, entry
}

// apiCall sends a request to the API at base and returns the status, the
// ETag and the body.
func apiCall(t *testing.T, method, url, token, body string, headers ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), string(b)
}

func TestE2EAPIPostgres(t *testing.T) {
	requireDig(t)
	url := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, meridianBinary(t), "migrate", "--database", url).CombinedOutput(); err != nil {
		t.Fatalf("meridian migrate: %v\n%s", err, out)
	}
	applyExamples(t, url, nil)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	token, _, err := postgres.CreateAPIToken(ctx, conn, "ci", []string{"zone:example.com.", "zone:example.net."})
	if err != nil {
		t.Fatal(err)
	}
	readOnly, _, err := postgres.CreateAPIToken(ctx, conn, "viewer", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	b := startMeridian(t, dir, []string{"MERIDIAN_API_LISTEN=127.0.0.1:0"}, "--listen", "127.0.0.1:0", "--database", url)
	base := b.apiURL(t)

	// An ACME DNS-01 challenge through B's API is answered by A.
	status, _, body := apiCall(t, "PUT", base+"/zones/example.com/rrsets/_acme-challenge/TXT", token, `{"ttl": 60, "records": ["\"dns01-token\""]}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT TXT: %d %s", status, body)
	}
	for _, m := range []*meridian{a, b} {
		m.waitDig(t, "the TXT record is served", func(r *digResult) bool {
			return slices.Equal(data(r.Answer, "TXT"), []string{`"dns01-token"`})
		}, "_acme-challenge.example.com", "TXT")
	}
	// A read token cannot write; nothing changes.
	if status, _, body := apiCall(t, "DELETE", base+"/zones/example.com/rrsets/_acme-challenge/TXT", readOnly, "", "If-Match: *"); status != http.StatusForbidden {
		t.Errorf("DELETE with a read token: %d %s", status, body)
	}

	// Draining an endpoint takes it out of the pool's answers on A.
	const drained = "198.51.100.11"
	q := []string{"www.example.net", "A", "+subnet=192.0.2.0/24"}
	if r := a.mustDig(t, q...); !slices.Contains(data(r.Answer, "A"), drained) {
		t.Fatalf("%s not answered before the drain:\n%s", drained, r.Raw)
	}
	status, _, body = apiCall(t, "PUT", base+"/zones/example.net/pools/www/endpoints/"+drained+"/admin", token, `{"state": "drain", "reason": "maintenance"}`)
	if status != http.StatusOK || !strings.Contains(body, `"new":"drain"`) {
		t.Fatalf("drain: %d %s", status, body)
	}
	a.waitDig(t, "the drained endpoint is left out", func(r *digResult) bool {
		return len(data(r.Answer, "A")) > 0 && !slices.Contains(data(r.Answer, "A"), drained)
	}, q...)

	// Adding an endpoint with a stale ETag of its pool is refused; with
	// the current one it is served.
	_, tag, _ := apiCall(t, "GET", base+"/zones/example.net/pools/www", token, "")
	status, _, body = apiCall(t, "PUT", base+"/zones/example.net/pools/www/endpoints/198.51.100.99", token, `{"datacenter": "us-east", "weight": 10}`)
	if status != http.StatusCreated {
		t.Fatalf("add endpoint: %d %s", status, body)
	}
	var pool struct {
		Endpoints []json.RawMessage `json:"endpoints"`
	}
	_, _, body = apiCall(t, "GET", base+"/zones/example.net/pools/www", token, "")
	if err := json.Unmarshal([]byte(body), &pool); err != nil {
		t.Fatal(err)
	}
	status, _, _ = apiCall(t, "PUT", base+"/zones/example.net/pools/www", token, `{"max_answers": 2, "endpoints": []}`, "If-Match: "+tag)
	if status != http.StatusPreconditionFailed {
		t.Errorf("PUT pool with the ETag read before an endpoint was added: %d, want 412", status)
	}

	// The audit log names the token.
	_, _, body = apiCall(t, "GET", base+"/audit?zone=example.net.", readOnly, "")
	if !strings.Contains(body, `"actor":"token:ci"`) || !strings.Contains(body, "198.51.100.99") {
		t.Errorf("audit log: %s", body)
	}
}

func TestE2EAPIZoneFiles(t *testing.T) {
	requireDig(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.com.zone")
	zone := "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 10 7200 3600 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.1\n"
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	token, entry := makeAPIToken(t, "--scope", "zone:example.com", "--label", "acme")
	conf := fmt.Sprintf("dns:\n  listen: [\"127.0.0.1:0\"]\nzones:\n  files: [%q]\nhealth:\n  checks: false\napi:\n  listen: 127.0.0.1:0\n  tokens:\n    %s\n", zoneFile, entry)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", confFile)
	base := m.apiURL(t)

	status, _, body := apiCall(t, "PUT", base+"/zones/example.com./rrsets/_acme-challenge/TXT", token, `{"ttl": 60, "records": ["\"file-token\""]}`)
	if status != http.StatusCreated {
		t.Fatalf("PUT TXT: %d %s", status, body)
	}
	m.waitDig(t, "the TXT record is served", func(r *digResult) bool {
		return slices.Equal(data(r.Answer, "TXT"), []string{`"file-token"`})
	}, "_acme-challenge.example.com", "TXT")
	if _, err := os.Stat(zoneFile + ".jnl"); err != nil {
		t.Errorf("no journal next to the zone file: %v", err)
	}
	// What only the file holds is refused, with the reason.
	status, _, body = apiCall(t, "PUT", base+"/zones/example.com./datacenters/lon", token, `{"latitude": 51.5, "longitude": -0.12}`)
	if status != http.StatusConflict || !strings.Contains(body, "zone file") {
		t.Errorf("PUT datacenter in zone-file mode: %d %s", status, body)
	}
	// A wrong token is refused.
	if status, _, _ := apiCall(t, "GET", base+"/zones", "mrd_not-a-token", ""); status != http.StatusUnauthorized {
		t.Errorf("bad token: %d", status)
	}

	// The journal keeps the change across a restart.
	m.stop(t)
	m = startMeridian(t, dir, nil, "--config", confFile)
	if r := m.mustDig(t, "_acme-challenge.example.com", "TXT"); !slices.Equal(data(r.Answer, "TXT"), []string{`"file-token"`}) {
		t.Errorf("after a restart:\n%s", r.Raw)
	}
	base = m.apiURL(t)
	_, tag, _ := apiCall(t, "GET", base+"/zones/example.com./rrsets/_acme-challenge/TXT", token, "")
	if status, _, body := apiCall(t, "DELETE", base+"/zones/example.com./rrsets/_acme-challenge/TXT", token, "", "If-Match: "+tag); status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	m.waitDig(t, "the TXT record is gone", func(r *digResult) bool { return r.Status == "NXDOMAIN" }, "_acme-challenge.example.com", "TXT")
}

// TestE2EAPITLS serves the API over HTTPS: a client that trusts the CA
// gets its answers, and one speaking plain HTTP gets none.
func TestE2EAPITLS(t *testing.T) {
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.com.zone")
	zone := "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 10 7200 3600 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n"
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	_, pool := writeTestTLS(t, dir)
	token, entry := makeAPIToken(t, "--scope", "read")
	conf := fmt.Sprintf("dns:\n  listen: [\"127.0.0.1:0\"]\nzones:\n  files: [%q]\nhealth:\n  checks: false\napi:\n  listen: 127.0.0.1:0\n  tls_cert_file: cert.pem\n  tls_key_file: key.pem\n  tokens:\n    %s\n", zoneFile, entry)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", confFile)
	base := m.apiURL(t)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("API URL %s", base)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", base+"/zones", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"example.com."`) || resp.TLS == nil {
		t.Errorf("GET /zones over HTTPS: %d %s", resp.StatusCode, body)
	}
	plain := "http://" + strings.TrimPrefix(base, "https://")
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/zones"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the HTTPS listener: %d", resp.StatusCode)
		}
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

func sha(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func TestMemAgentsTokens(t *testing.T) {
	for _, bad := range [][]agentToken{
		{{Pool: "www.example.", SHA256: "abc"}},
		{{Pool: "www.example.", SHA256: strings.Repeat("g", 64)}},
		{{Pool: "www.example.", Operator: true, SHA256: sha("x")}},
		{{SHA256: sha("x")}},
	} {
		if _, err := newMemAgents(bad, store.NewHealth(), nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	const agent, op = "mrd_agent-token-www", "mrd_operator-token"
	m, err := newMemAgents([]agentToken{
		{Pool: "WWW.example", SHA256: sha(agent), Label: "web1"},
		{Operator: true, SHA256: strings.ToUpper(sha(op)), Label: "alice"},
	}, store.NewHealth(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ti, err := m.CheckToken(ctx, agent); err != nil || ti.Kind != postgres.TokenAgent || ti.Pool != "www.example." || ti.Actor() != "token:web1" {
		t.Errorf("agent token: %+v, %v", ti, err)
	}
	if ti, err := m.CheckToken(ctx, op); err != nil || ti.Kind != postgres.TokenOperator || ti.Pool != "" || ti.Actor() != "token:alice" {
		t.Errorf("operator token: %+v, %v", ti, err)
	}
	// Near misses, of the same length or a prefix, and the hash itself.
	for _, wrong := range []string{"", "mrd_agent-token-wwW", "mrd_agent-token-ww", agent + " ", sha(agent)} {
		if ti, err := m.CheckToken(ctx, wrong); !errors.Is(err, postgres.ErrBadToken) {
			t.Errorf("token %q: %+v, %v", wrong, ti, err)
		}
	}
}

// TestMemAgentsAPI serves the agent API over memAgents, as "meridian
// serve" without a database does: refused requests (body too large, bad
// values, unknown pool) change nothing and show nothing internal; a good
// report changes the health.
func TestMemAgentsAPI(t *testing.T) {
	dir := t.TempDir()
	zone := `origin: mem.example.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters:
  - {name: dc1, lat: 50, lon: 8}
pools:
  - name: www
    endpoints:
      - {address: 192.0.2.11, datacenter: dc1}
`
	path := filepath.Join(dir, "mem.example.yaml")
	if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	h := store.NewHealth()
	st := store.WithHealth(store.NewFiles([]string{path}, nil), h)
	health := func() zones.HealthState {
		t.Helper()
		d, err := st.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return d.Zones[0].Pools[0].Endpoints[0].Health
	}
	before := health()
	const token = "mrd_agent-www"
	m, err := newMemAgents([]agentToken{{Pool: "www.mem.example.", SHA256: sha(token)}}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	api := agentapi.New(m, nil)
	do := func(path, body string) (int, string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	const report = "/v1/pools/www.mem.example./endpoints/192.0.2.11/report"
	for _, tt := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{report, `{"status": "down", "message": "` + strings.Repeat("x", agentapi.MaxBody) + `"}`, http.StatusRequestEntityTooLarge, "request body over"},
		{report, `{"status": "down", "load": 7}`, http.StatusBadRequest, "load 7"},
		{report, `{"status": "down"} {"status": "up"}`, http.StatusBadRequest, "more than one value"},
		{"/v1/pools/nope.mem.example./endpoints/192.0.2.11/report", `{"status": "down"}`, http.StatusForbidden, "not for pool"},
		{"/v1/pools/www.mem.example./endpoints/192.0.2.99/report", `{"status": "down"}`, http.StatusNotFound, "has no endpoint 192.0.2.99"},
	} {
		code, body := do(tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.msg) || strings.Contains(body, "postgres") {
			t.Errorf("%s %.60s: %d %.200s, want %d with %q", tt.path, tt.body, code, body, tt.code, tt.msg)
		}
		if got := health(); got != before {
			t.Fatalf("after %d: health %s, was %s", code, got, before)
		}
	}
	if code, body := do(report, `{"status": "down", "ttl": "1h"}`); code != 200 {
		t.Fatalf("report: %d %s", code, body)
	}
	if got := health(); got != zones.HealthDown {
		t.Errorf("after a down report: %s", got)
	}
}

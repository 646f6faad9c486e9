package statuspage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/health/statuspage"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const zoneYAML = `origin: page.example.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters:
  - {name: fra, lat: 50.1, lon: 8.7}
  - {name: nyc, lat: 40.7, lon: -74}
pools:
  - name: www
    health_check: {type: http, port: 8080, path: /health}
    endpoints:
      - {address: 192.0.2.11, datacenter: fra}
      - {address: 192.0.2.12, datacenter: nyc}
  - name: other
    endpoints:
      - {address: 192.0.2.21, datacenter: nyc}
`

// browser is a client with cookies that posts forms as a browser on the
// page would.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestPostgres serves the page over a real database: it shows what the
// checkers and agents stored, and an operator's drain through it is
// audited as an API admin action would be.
func TestPostgres(t *testing.T) {
	ctx := context.Background()
	_, db := pgtest.Store(t, zoneYAML)
	op, _, err := postgres.CreateToken(ctx, db, postgres.TokenOperator, "", "alice")
	if err != nil {
		t.Fatal(err)
	}
	agent, _, err := postgres.CreateToken(ctx, db, postgres.TokenAgent, "www.page.example.", "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.RegisterChecker(ctx, db, "c1", "eu", time.Minute); err != nil {
		t.Fatal(err)
	}
	www := "www.page.example."
	e11, e12 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")
	for _, v := range []struct {
		addr   netip.Addr
		up     bool
		reason string
	}{{e11, true, ""}, {e12, false, "status 503 (want 200)"}} {
		if _, _, err := postgres.RecordVerdict(ctx, db, "c1", www, v.addr, v.up, v.reason); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := postgres.ReportAgent(ctx, db, www, e11, postgres.Report{Status: postgres.AgentUp, Capacity: ptr(300), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(statuspage.New(statuspage.PG{PG: agentapi.PG{DB: db}}, "c1", nil))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}

	code, page := b.get("/status")
	for _, want := range []string{
		`data-address="192.0.2.11" data-state="up"`, `agent: up`, `capacity 300`, `c1: up`,
		`data-address="192.0.2.12" data-state="down"`, `majority: 1 of 1 checkers say down: status 503 (want 200)`, `c1: down</span> (status 503 (want 200))`,
		`health unknown → down`, `verdict unknown → down by c1`,
		`data-address="192.0.2.21" data-state="unknown"`, `data-checker="c1"`, `data-name="fra"`, `data-name="nyc"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if code != 200 || t.Failed() {
		t.Fatalf("HTTP %d:\n%s", code, page)
	}

	drain := url.Values{"pool": {www}, "address": {"192.0.2.11"}, "action": {"drain"}, "reason": {"rack move"}}
	// An agent token signs in but may not drain: nothing changes.
	if code, _ := b.post("/status/login", url.Values{"token": {agent}}); code != 200 {
		t.Fatalf("agent sign-in: HTTP %d", code)
	}
	if code, body := b.post("/status/admin", drain); code != http.StatusForbidden || !strings.Contains(body, "operator token") {
		t.Errorf("agent drain: HTTP %d %s", code, body)
	}
	// The operator drains (the redirect is followed to the page).
	if code, _ := b.post("/status/login", url.Values{"token": {op}}); code != 200 {
		t.Fatalf("operator sign-in: HTTP %d", code)
	}
	code, page = b.post("/status/admin", drain)
	if code != 200 || !strings.Contains(page, "Drained 192.0.2.11 of www.page.example.") ||
		!strings.Contains(page, `data-address="192.0.2.11" data-state="drain"`) || !strings.Contains(page, "admin active → drain by token:alice: rack move") {
		t.Fatalf("operator drain: HTTP %d\n%s", code, page)
	}
	log, err := postgres.AuditLog(ctx, db, 0)
	if err != nil || len(log) != 1 || log[0].Actor != "token:alice" || log[0].New != "drain" || log[0].Reason != "rack move" || log[0].Addr != e11 {
		t.Errorf("audit log %+v, %v", log, err)
	}
	// An unknown endpoint: 404, nothing logged.
	if code, _ := b.post("/status/admin", url.Values{"pool": {www}, "address": {"192.0.2.99"}, "action": {"enable"}}); code != http.StatusNotFound {
		t.Errorf("unknown endpoint: HTTP %d", code)
	}
	// Enable; then a revoked token stops working at once.
	if code, page := b.post("/status/admin", url.Values{"pool": {www}, "address": {"192.0.2.11"}, "action": {"enable"}}); code != 200 ||
		!strings.Contains(page, `data-address="192.0.2.11" data-state="up"`) {
		t.Errorf("enable: HTTP %d", code)
	}
	ts, _ := postgres.ListTokens(ctx, db)
	for _, tk := range ts {
		if tk.Label == "alice" {
			if err := postgres.RevokeToken(ctx, db, tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, _ := b.post("/status/admin", drain); code != http.StatusUnauthorized {
		t.Errorf("revoked token: HTTP %d", code)
	}
	if log, _ := postgres.AuditLog(ctx, db, 0); len(log) != 2 {
		t.Errorf("audit log after refusals: %+v", log)
	}
}

func ptr[T any](v T) *T { return &v }

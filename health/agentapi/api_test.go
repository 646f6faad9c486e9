package agentapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const apiYAML = `origin: api.example.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters:
  - {name: dc1, lat: 50, lon: 8, country: DE, continent: EU}
pools:
  - name: www
    endpoints:
      - {address: 192.0.2.11, datacenter: dc1}
      - {address: "2001:db8::11", datacenter: dc1}
  - name: other
    endpoints:
      - {address: 192.0.2.21, datacenter: dc1}
`

// fixture is a database with apiYAML, the API over it and tokens.
type fixture struct {
	db                          *pgxpool.Pool
	h                           http.Handler
	agent, otherAgent, operator string
	revoked                     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	_, db := pgtest.Store(t, apiYAML)
	f := &fixture{db: db, h: agentapi.New(agentapi.PG{DB: db}, nil)}
	mk := func(kind, pool, label string) string {
		tok, _, err := postgres.CreateToken(ctx, db, kind, pool, label)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.agent = mk("agent", "www.api.example.", "www-agent")
	f.otherAgent = mk("agent", "other.api.example.", "other-agent")
	f.operator = mk("operator", "", "ops")
	f.revoked = mk("operator", "", "old")
	ts, _ := postgres.ListTokens(ctx, db)
	if err := postgres.RevokeToken(ctx, db, ts[len(ts)-1].ID); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) do(t *testing.T, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b), w.Result().Header
}

// state is what must not move when a request fails.
func (f *fixture) state(t *testing.T) string {
	t.Helper()
	var s string
	err := f.db.QueryRow(context.Background(), `SELECT (SELECT version FROM meridian_version)
		|| '/' || (SELECT count(*) FROM agent_reports) || '/' || (SELECT count(*) FROM admin_audit)
		|| '/' || (SELECT string_agg(admin_state || coalesce(h.state, '-'), ',' ORDER BY e.id) FROM endpoints e LEFT JOIN endpoint_health h ON h.endpoint_id = e.id)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	report = "/v1/pools/www.api.example./endpoints/192.0.2.11/report"
	admin  = "/v1/pools/www.api.example./endpoints/192.0.2.11/admin"
)

func TestAPIErrors(t *testing.T) {
	f := newFixture(t)
	okBody := `{"status": "up"}`
	tests := []struct {
		name                string
		method, path, token string
		header              map[string]string
		body                string
		code                int
		msg                 string // in the error
	}{
		{"no token", "POST", report, "", nil, okBody, 401, "missing or invalid token"},
		{"wrong token", "POST", report, "mrd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, okBody, 401, "missing or invalid token"},
		{"garbage token", "POST", report, "hello", nil, okBody, 401, "missing or invalid token"},
		{"revoked token", "POST", report, f.revoked, nil, okBody, 401, "missing or invalid token"},
		{"basic auth", "POST", report, "", map[string]string{"Authorization": "Basic " + f.operator}, okBody, 401, "missing or invalid token"},
		{"agent of another pool", "POST", report, f.otherAgent, nil, okBody, 403, "not for pool www.api.example."},
		{"agent on admin", "POST", admin, f.agent, nil, `{"state": "drain", "reason": "x"}`, 403, "operator token"},
		{"agent lists another pool", "GET", "/v1/pools/other.api.example/endpoints", f.agent, nil, "", 403, "not for pool"},
		{"unknown pool", "POST", "/v1/pools/nope.api.example./endpoints/192.0.2.11/report", f.operator, nil, okBody, 404, "unknown pool nope.api.example."},
		{"unknown endpoint", "POST", "/v1/pools/www.api.example./endpoints/192.0.2.99/report", f.agent, nil, okBody, 404, "has no endpoint 192.0.2.99"},
		{"unknown pool, admin", "POST", "/v1/pools/nope.api.example./endpoints/192.0.2.11/admin", f.operator, nil, `{"state": "drain", "reason": "x"}`, 404, "unknown pool"},
		{"unknown pool, list", "GET", "/v1/pools/nope.api.example./endpoints", f.operator, nil, "", 404, "unknown pool"},
		{"bad address", "POST", "/v1/pools/www.api.example./endpoints/not-an-ip/report", f.agent, nil, okBody, 400, "bad endpoint address"},
		{"bad JSON", "POST", report, f.agent, nil, `{"status": `, 400, "bad JSON"},
		{"empty body", "POST", report, f.agent, nil, ``, 400, "empty body"},
		{"unknown field", "POST", report, f.agent, nil, `{"status": "up", "sttus": "x"}`, 400, `unknown field "sttus"`},
		{"two values", "POST", report, f.agent, nil, `{"status": "up"} {}`, 400, "more than one value"},
		{"wrong type", "POST", report, f.agent, nil, `{"status": "up", "connections": "12"}`, 400, `field "connections"`},
		{"fractional connections", "POST", report, f.agent, nil, `{"status": "up", "connections": 1.5}`, 400, "bad JSON"},
		{"bad status", "POST", report, f.agent, nil, `{"status": "sideways"}`, 400, `status word "sideways"`},
		{"load over 1", "POST", report, f.agent, nil, `{"status": "up", "load": 1.2}`, 400, "load 1.2: want 0 to 1"},
		{"negative load", "POST", report, f.agent, nil, `{"status": "up", "load": -0.2}`, 400, "load"},
		{"negative connections", "POST", report, f.agent, nil, `{"status": "up", "connections": -1}`, 400, "connections -1"},
		{"negative capacity", "POST", report, f.agent, nil, `{"status": "up", "capacity": -3}`, 400, "capacity -3"},
		{"ttl zero", "POST", report, f.agent, nil, `{"status": "up", "ttl": "0s"}`, 400, "ttl"},
		{"ttl negative", "POST", report, f.agent, nil, `{"status": "up", "ttl": "-1s"}`, 400, "ttl"},
		{"ttl over an hour", "POST", report, f.agent, nil, `{"status": "up", "ttl": "2h"}`, 400, "ttl 2h0m0s"},
		{"ttl garbage", "POST", report, f.agent, nil, `{"status": "up", "ttl": "soon"}`, 400, "ttl"},
		{"body too large", "POST", report, f.agent, nil, `{"status": "up", "message": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "request body over 65536 bytes"},
		{"admin bad state", "POST", admin, f.operator, nil, `{"state": "asleep", "reason": "x"}`, 400, `state "asleep"`},
		{"admin no reason", "POST", admin, f.operator, nil, `{"state": "drain"}`, 400, "give a reason"},
		{"admin unknown field", "POST", admin, f.operator, nil, `{"state": "drain", "reason": "x", "by": "me"}`, 400, "unknown field"},
		{"admin too large", "POST", admin, f.operator, nil, `{"state": "drain", "reason": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "over"},
		{"no such route", "GET", "/v2/nothing", f.operator, nil, "", 404, "not found"},
		{"wrong method", "GET", report, f.operator, nil, "", 405, "method not allowed"},
		{"pools without token", "GET", "/v1/pools", "", nil, "", 401, "missing or invalid token"},
	}
	before := f.state(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("body %q (%s): not a JSON error: %v", w.Body.String(), w.Header().Get("Content-Type"), err)
			}
			if w.Code != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%d %q, want %d with %q", w.Code, e.Error, tt.code, tt.msg)
			}
			if strings.Contains(e.Error, "postgres") || strings.Contains(e.Error, "SQL") {
				t.Errorf("internal details in %q", e.Error)
			}
			if tt.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if after := f.state(t); after != before {
				t.Errorf("state moved: %s -> %s", before, after)
			}
		})
	}
}

func TestAPIReportAndAdmin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	health := func(addr string) (string, string) {
		t.Helper()
		st, err := postgres.EndpointHealth(ctx, f.db, "www.api.example.", netip.MustParseAddr(addr))
		if err != nil {
			t.Fatal(err)
		}
		return st.State.String(), st.Reason
	}

	if code, body, _ := f.do(t, "GET", "/healthz", "", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("healthz: %d %s", code, body)
	}

	v0 := f.state(t)
	code, body, _ := f.do(t, "POST", report, f.agent, `{"status": "drain", "load": 0.3, "connections": 12, "capacity": 100, "message": "deploy", "ttl": "30s"}`)
	if code != 200 || !strings.Contains(body, `"health":"down"`) || !strings.Contains(body, `"changed":true`) {
		t.Fatalf("report: %d %s", code, body)
	}
	if st, why := health("192.0.2.11"); st != "down" || why != "agent: drain: deploy" {
		t.Errorf("after drain: %s %q", st, why)
	}
	if f.state(t) == v0 {
		t.Error("the report did not move the version")
	}
	// HAProxy vocabulary, on the IPv6 endpoint, by an operator token.
	code, body, _ = f.do(t, "POST", "/v1/pools/WWW.api.example/endpoints/2001:db8::11/report", f.operator, `{"status": "up 75% maxconn:50"}`)
	if code != 200 || !strings.Contains(body, `"health":"up"`) {
		t.Fatalf("report v6: %d %s", code, body)
	}
	var w, c int
	if err := f.db.QueryRow(ctx, "SELECT weight_percent, capacity FROM agent_reports r JOIN endpoints e ON e.id = r.endpoint_id WHERE e.address = '2001:db8::11'").Scan(&w, &c); err != nil || w != 75 || c != 50 {
		t.Errorf("stored weight %d capacity %d, %v", w, c, err)
	}
	// The same again changes nothing.
	v1 := f.state(t)
	if code, body, _ = f.do(t, "POST", report, f.agent, `{"status": "drain", "message": "deploy"}`); code != 200 || !strings.Contains(body, `"changed":false`) {
		t.Errorf("repeat: %d %s", code, body)
	}
	if f.state(t) != v1 {
		t.Error("a repeated report moved the version")
	}
	// Up again.
	if code, body, _ = f.do(t, "POST", report, f.agent, `{"status": "ready"}`); code != 200 || !strings.Contains(body, `"health":"up"`) {
		t.Errorf("ready: %d %s", code, body)
	}

	// Operator admin action, with the audit row.
	code, body, _ = f.do(t, "POST", admin, f.operator, `{"state": "drain", "reason": "rack move"}`)
	if code != 200 || !strings.Contains(body, `"old":"active"`) || !strings.Contains(body, `"state":"drain"`) {
		t.Fatalf("admin: %d %s", code, body)
	}
	log, err := postgres.AuditLog(ctx, f.db, 1)
	if err != nil || len(log) != 1 || log[0].Actor != "token:ops" || log[0].New != "drain" || log[0].Reason != "rack move" ||
		log[0].Pool != "www.api.example." || log[0].Addr != netip.MustParseAddr("192.0.2.11") {
		t.Errorf("audit log %+v, %v", log, err)
	}

	// Listings: the operator sees every pool, an agent its own.
	var pools []agentapi.Pool
	code, body, _ = f.do(t, "GET", "/v1/pools", f.operator, "")
	if err := json.Unmarshal([]byte(body), &pools); code != 200 || err != nil || len(pools) != 2 {
		t.Errorf("pools (operator): %d %s", code, body)
	}
	code, body, _ = f.do(t, "GET", "/v1/pools", f.agent, "")
	if err := json.Unmarshal([]byte(body), &pools); code != 200 || err != nil || len(pools) != 1 || pools[0].Name != "www.api.example." || pools[0].Up != 2 {
		t.Errorf("pools (agent): %d %s", code, body)
	}
	var eps []agentapi.Endpoint
	code, body, _ = f.do(t, "GET", "/v1/pools/www.api.example/endpoints", f.agent, "")
	if err := json.Unmarshal([]byte(body), &eps); code != 200 || err != nil || len(eps) != 2 {
		t.Fatalf("endpoints: %d %s", code, body)
	}
	if e := eps[0]; e.Address != "192.0.2.11" || e.Admin != "drain" || e.AdminReason != "rack move" || e.Health != "up" ||
		e.HealthReason != "agent: up" || e.Eligible || e.HealthUpdated == nil || time.Since(*e.HealthUpdated) > time.Minute {
		t.Errorf("endpoint %+v", e)
	}
}

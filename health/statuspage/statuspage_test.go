package statuspage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Tokens of the fake store.
const (
	opToken    = "mrd_operator-alice"
	agentToken = "mrd_agent-www"
	otherToken = "mrd_agent-other"
)

// fake is a Source in memory: one overview, three tokens, and a record of
// SetAdmin calls.
type fake struct {
	mu       sync.Mutex
	ov       *postgres.Overview
	ovErr    error
	adminErr error
	calls    []string
}

func (f *fake) Overview(context.Context) (*postgres.Overview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ov, f.ovErr
}

func (f *fake) CheckToken(_ context.Context, token string) (postgres.TokenInfo, error) {
	switch token {
	case opToken:
		return postgres.TokenInfo{ID: 1, Kind: postgres.TokenOperator, Label: "alice"}, nil
	case agentToken:
		return postgres.TokenInfo{ID: 2, Kind: postgres.TokenAgent, Pool: "www.example.net.", Label: "web1"}, nil
	case otherToken:
		return postgres.TokenInfo{ID: 3, Kind: postgres.TokenAgent, Pool: "api.example.net.", Label: "api1"}, nil
	case "mrd_store-down":
		return postgres.TokenInfo{}, errors.New("postgres: check token: connection refused")
	}
	return postgres.TokenInfo{}, postgres.ErrBadToken
}

func (f *fake) SetAdmin(_ context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adminErr != nil {
		return 0, f.adminErr
	}
	f.calls = append(f.calls, strings.Join([]string{pool, addr.String(), state.String(), reason, actor}, " "))
	return zones.AdminActive, nil
}

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// overview is two pools in two datacenters: www has one endpoint up, one
// down (its health URL fails), one drained, one decided by its agent;
// api's only endpoint is unknown.
func overview() *postgres.Overview {
	return &postgres.Overview{
		At: at,
		Datacenters: []postgres.OverviewDatacenter{
			{Zone: "example.net.", Name: "eu-west", Lat: 51.5, Lon: -0.1},
			{Zone: "example.net.", Name: "us-east", Lat: 39, Lon: -77.5},
			{Zone: "example.net.", Name: "ap-south", Lat: 1.3, Lon: 103.8},
		},
		Checkers: []postgres.CheckerInfo{
			{ID: "c1", Region: "eu", Live: true, LastSeen: at.Add(-2 * time.Second), Started: at.Add(-time.Hour)},
			{ID: "c9", Region: "us", Live: false, LastSeen: at.Add(-10 * time.Minute), Started: at.Add(-2 * time.Hour)},
		},
		Pools: []postgres.OverviewPool{
			{Zone: "example.net.", Name: "www.example.net.", Quorum: "majority", UnknownIsUp: true, CheckType: "http", Endpoints: []postgres.OverviewEndpoint{
				{Addr: netip.MustParseAddr("192.0.2.1"), Datacenter: "eu-west", Weight: 100, Health: zones.HealthUp,
					HealthReason: "majority: 1 of 1 checkers say up", HealthUpdated: at.Add(-time.Minute),
					Verdicts: []postgres.Verdict{{Checker: "c1", Region: "eu", Up: true, Changed: at.Add(-time.Minute)}}},
				{Addr: netip.MustParseAddr("192.0.2.2"), Datacenter: "eu-west", Weight: 100, Health: zones.HealthDown,
					HealthReason: "majority: 1 of 1 checkers say down: body lacks \"UP\"", HealthUpdated: at.Add(-30 * time.Second),
					Verdicts: []postgres.Verdict{{Checker: "c1", Region: "eu", Up: false, Reason: `body lacks "UP"`, Changed: at.Add(-30 * time.Second)}},
					Events: []postgres.HealthEvent{
						{At: at.Add(-30 * time.Second), Kind: postgres.EventHealth, Old: "up", New: "down", Reason: "majority: 1 of 1 checkers say down: body lacks \"UP\""},
						{At: at.Add(-31 * time.Second), Kind: postgres.EventVerdict, Old: "up", New: "down", Reason: `body lacks "UP"`, By: "c1"},
					}},
				{Addr: netip.MustParseAddr("192.0.2.3"), Datacenter: "us-east", Weight: 50, Admin: zones.AdminDrain, AdminReason: "kernel <upgrade>",
					Health: zones.HealthUp, HealthReason: "majority: 1 of 1 checkers say up",
					Events: []postgres.HealthEvent{{At: at.Add(-5 * time.Minute), Kind: postgres.EventAdmin, Old: "active", New: "drain", Reason: "kernel <upgrade>", By: "token:bob"}}},
				{Addr: netip.MustParseAddr("2001:db8::4"), Datacenter: "us-east", Weight: 100, Health: zones.HealthUp, HealthReason: "agent: up: v2.3",
					Agent: &postgres.AgentReport{Status: "up", Load: ptr(0.42), WeightPercent: ptr(75), Capacity: ptr(400), Connections: ptr(130),
						Message: "v2.3", Reported: at.Add(-3 * time.Second), Expires: at.Add(27 * time.Second), Fresh: true}},
			}},
			{Zone: "example.net.", Name: "api.example.net.", Quorum: "all", Endpoints: []postgres.OverviewEndpoint{
				{Addr: netip.MustParseAddr("198.51.100.1"), Datacenter: "us-east", Weight: 100},
			}},
		},
	}
}

// server is a fake with the handler over it, and the handler's log.
type server struct {
	f   *fake
	h   *Handler
	log *bytes.Buffer
}

func newServer() *server {
	var log bytes.Buffer
	f := &fake{ov: overview()}
	return &server{f: f, h: New(f, "c1", slog.New(slog.NewTextHandler(&log, nil))), log: &log}
}

// do serves one request: a form post when form is not nil, from the
// page's own origin unless headers say otherwise (a value "" removes a
// header).
func (s *server) do(method, target string, form url.Values, cookie string, headers map[string]string) *http.Response {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://"+r.Host)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range headers {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w.Result()
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEffective(t *testing.T) {
	tests := []struct {
		name                  string
		e                     postgres.OverviewEndpoint
		state, source, reason string
	}{
		{"admin wins over health", postgres.OverviewEndpoint{Admin: zones.AdminDrain, AdminReason: "rack", Health: zones.HealthUp, HealthReason: "agent: up"},
			"drain", "admin", "rack"},
		{"disabled", postgres.OverviewEndpoint{Admin: zones.AdminDisabled, AdminReason: "gone", Health: zones.HealthDown}, "disabled", "admin", "gone"},
		{"agent report", postgres.OverviewEndpoint{Health: zones.HealthDown, HealthReason: "agent: drain: deploy"}, "down", "agent", "agent: drain: deploy"},
		{"quorum", postgres.OverviewEndpoint{Health: zones.HealthDown, HealthReason: "all: 1 of 2 checkers say down: timeout"},
			"down", "quorum", "all: 1 of 2 checkers say down: timeout"},
		{"quorum lost", postgres.OverviewEndpoint{Health: zones.HealthUnknown, HealthReason: "majority: no live checker has a verdict"},
			"unknown", "none", "majority: no live checker has a verdict"},
		{"never judged", postgres.OverviewEndpoint{}, "unknown", "none", "no checker or agent has spoken yet"},
	}
	for _, tt := range tests {
		state, source, reason := effective(&tt.e)
		if state != tt.state || source != tt.source || reason != tt.reason {
			t.Errorf("%s: %s %s %q, want %s %s %q", tt.name, state, source, reason, tt.state, tt.source, tt.reason)
		}
	}
}

func TestWorldMap(t *testing.T) {
	for _, tt := range []struct {
		lat, lon, x, y float64
	}{{0, 0, 360, 180}, {90, -180, 0, 0}, {-90, 180, 720, 360}, {51.5, -0.1, 359.8, 77}, {95, 200, 720, 0}} {
		if x, y := project(tt.lat, tt.lon); x != tt.x || y != tt.y {
			t.Errorf("project(%v, %v) = %v, %v; want %v, %v", tt.lat, tt.lon, x, y, tt.x, tt.y)
		}
	}
	for _, tt := range []struct {
		healthy, total int
		want           string
	}{{3, 3, "hsl(120, 70%, 40%)"}, {0, 2, "hsl(0, 70%, 40%)"}, {1, 2, "hsl(60, 70%, 40%)"}, {0, 0, "#9e9e9e"}} {
		if got := healthColour(tt.healthy, tt.total); got != tt.want {
			t.Errorf("healthColour(%d, %d) = %s, want %s", tt.healthy, tt.total, got, tt.want)
		}
	}
	// One datacenter named in two zones is one dot.
	m := newWorldMap([]mapPoint{{Name: "fra", Lat: 50, Lon: 8, Healthy: 1, Total: 1}, {Name: "fra", Lat: 50, Lon: 8, Healthy: 0, Total: 1},
		{Name: "nyc", Lat: 40.7, Lon: -74, Total: 0}})
	if len(m.Dots) != 2 || m.Dots[0].Name != "nyc" || m.Dots[1].Colour != "hsl(60, 70%, 40%)" || !strings.Contains(m.Dots[1].Title, "1 of 2") {
		t.Errorf("dots %+v", m.Dots)
	}
}

// TestPage renders the page for each kind of visitor.
func TestPage(t *testing.T) {
	s := newServer()
	anon := readBody(t, s.do("GET", "/status", nil, "", nil))
	op := readBody(t, s.do("GET", "/status", nil, opToken, nil))
	agent := readBody(t, s.do("GET", "/status", nil, agentToken, nil))
	tests := []struct {
		name       string
		body       string
		has, lacks []string
	}{
		{"anonymous", anon, []string{
			`<title>Meridian health: c1</title>`,
			`2026-03-01 12:00:00 UTC`,
			`2 pools, 5 endpoints: 2 up, 1 down, 1 unknown, 1 drained or disabled; 2 in the answers.`,
			// up, by the quorum
			`data-address="192.0.2.1" data-state="up"`,
			// down with the reason, the checker's verdict and the change
			`data-address="192.0.2.2" data-state="down"`, `majority: 1 of 1 checkers say down: body lacks &#34;UP&#34;`,
			`c1: down</span> (body lacks &#34;UP&#34;)`, `30s ago: health up → down`, `31s ago: verdict up → down by c1`,
			// drained, by whom and why (escaped)
			`data-address="192.0.2.3" data-state="drain"`, `kernel &lt;upgrade&gt;`, `by token:bob`,
			// the agent's report
			`data-address="2001:db8::4" data-state="up"`, `load 0.42`, `weight 75%`, `capacity 400`, `connections 130`, `reported 3s ago`,
			`by agent`,
			// unknown, counted as up in www but not in api
			`data-address="198.51.100.1" data-state="unknown"`, `no checker or agent has spoken yet`,
			// checkers
			`data-checker="c1"`, `expired: its verdicts do not count`,
			// the map: eu-west half healthy, us-east 1 of 3 healthy, ap-south empty
			`data-name="eu-west"`, `fill="hsl(60, 70%, 40%)"`, `fill="hsl(40, 70%, 40%)"`, `fill="#9e9e9e"`, `1 of 2 endpoints answered`,
			// recent changes leave verdicts out
			`<td>www.example.net. 192.0.2.2</td><td>health up → down</td>`,
			`action="/status/login"`, `type="password" name="token"`,
		}, []string{`action="/status/admin"`, `<script`, `kernel <upgrade>`, `http-equiv="refresh"`}},
		{"operator", op, []string{
			`Signed in as <b id="actor">token:alice</b> (operator token`, `action="/status/logout"`,
			`name="action" value="drain"`, `name="action" value="enable"`,
			`<input type="hidden" name="pool" value="api.example.net.">`, `<input type="hidden" name="address" value="2001:db8::4">`,
		}, []string{`action="/status/login"`}},
		{"agent token: read only", agent, []string{`token:web1</b>, an agent token for pool www.example.net.`}, []string{`action="/status/admin"`}},
	}
	for _, tt := range tests {
		for _, want := range tt.has {
			if !strings.Contains(tt.body, want) {
				t.Errorf("%s: page lacks %q", tt.name, want)
			}
		}
		for _, bad := range tt.lacks {
			if strings.Contains(tt.body, bad) {
				t.Errorf("%s: page has %q", tt.name, bad)
			}
		}
	}
	if n := strings.Count(op, `action="/status/admin"`); n != 5 {
		t.Errorf("operator: %d admin forms, want 5", n)
	}
	if t.Failed() {
		t.Logf("anonymous page:\n%s", anon)
	}

	resp := s.do("GET", "/status?refresh=10&done=drain&pool=www.example.net&address=192.0.2.3", nil, "", nil)
	body := readBody(t, resp)
	for _, want := range []string{`<meta http-equiv="refresh" content="10">`, `Drained 192.0.2.3 of www.example.net.`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	h := resp.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("headers %v", h)
	}
	// What the query says is not echoed, only what it means.
	body = readBody(t, s.do("GET", "/status?refresh=1&done=drain&pool=<script>x&address=1.2.3.4", nil, "", nil))
	if strings.Contains(body, "<script>") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("query reflected into the page")
	}
}

func TestPageErrors(t *testing.T) {
	s := newServer()
	// A revoked token: signed out, told so, the cookie dropped.
	resp := s.do("GET", "/status", nil, "mrd_revoked", nil)
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "no longer valid") || !strings.Contains(body, `action="/status/login"`) ||
		!strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("revoked token: %d %v", resp.StatusCode, resp.Header)
	}
	// The store away: 503, no details.
	s.f.ovErr = errors.New("postgres: read overview: dial tcp 10.1.2.3:5432: connection refused")
	resp = s.do("GET", "/status", nil, "", nil)
	body = readBody(t, resp)
	if resp.StatusCode != 503 || strings.Contains(body, "10.1.2.3") || !strings.Contains(s.log.String(), "10.1.2.3") {
		t.Errorf("store away: %d %s", resp.StatusCode, body)
	}
	for _, tt := range []struct {
		method, path string
		code         int
	}{{"GET", "/status/nothing", 404}, {"GET", "/status/admin", 405}, {"POST", "/status", 405}, {"DELETE", "/status/login", 405}} {
		if resp := s.do(tt.method, tt.path, nil, "", nil); resp.StatusCode != tt.code || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.code)
		}
	}
}

// TestSignIn checks the token and keeps it in a strict cookie.
func TestSignIn(t *testing.T) {
	s := newServer()
	tests := []struct {
		name    string
		target  string
		form    url.Values
		headers map[string]string
		code    int
		cookie  []string // in Set-Cookie; nil: none set
		msg     string
	}{
		{"operator", "/status/login", url.Values{"token": {" " + opToken + " "}}, nil, 303,
			[]string{CookieName + "=" + opToken, "Path=/status", "Max-Age=43200", "HttpOnly", "SameSite=Strict"}, ""},
		{"over TLS: Secure", "https://checker.example/status/login", url.Values{"token": {opToken}}, map[string]string{"Origin": "https://checker.example"}, 303,
			[]string{"Secure", "HttpOnly", "SameSite=Strict"}, ""},
		{"behind a TLS proxy: Secure", "/status/login", url.Values{"token": {opToken}}, map[string]string{"X-Forwarded-Proto": "https"}, 303,
			[]string{"Secure", "HttpOnly", "SameSite=Strict"}, ""},
		{"agent token", "/status/login", url.Values{"token": {agentToken}}, nil, 303, []string{CookieName + "=" + agentToken}, ""},
		{"bad token", "/status/login", url.Values{"token": {"mrd_nope"}}, nil, 401, nil, "missing or invalid token"},
		{"no token", "/status/login", url.Values{"token": {""}}, nil, 400, nil, "give a token"},
		{"store away", "/status/login", url.Values{"token": {"mrd_store-down"}}, nil, 500, nil, "internal error"},
		{"cross-origin", "/status/login", url.Values{"token": {opToken}}, map[string]string{"Origin": "http://evil.example"}, 403, nil, "cross-origin"},
		{"sign out", "/status/logout", url.Values{}, nil, 303, []string{CookieName + "=;", "Max-Age=0"}, ""},
		{"sign out, cross-origin", "/status/logout", url.Values{}, map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}, 403, nil, "cross-origin"},
	}
	for _, tt := range tests {
		resp := s.do("POST", tt.target, tt.form, "", tt.headers)
		body := readBody(t, resp)
		set := resp.Header.Get("Set-Cookie")
		if resp.StatusCode != tt.code || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tt.name, resp.StatusCode, body, tt.code, tt.msg)
		}
		if tt.cookie == nil && set != "" {
			t.Errorf("%s: cookie set: %s", tt.name, set)
		}
		for _, c := range tt.cookie {
			if !strings.Contains(set, c) {
				t.Errorf("%s: Set-Cookie %q lacks %q", tt.name, set, c)
			}
		}
		if !strings.HasPrefix(tt.target, "https:") && tt.headers["X-Forwarded-Proto"] == "" && strings.Contains(set, "Secure") {
			t.Errorf("%s: Secure cookie over plain HTTP", tt.name)
		}
		if tt.code == 303 && !strings.HasPrefix(resp.Header.Get("Location"), "/status?done=sign") {
			t.Errorf("%s: Location %q", tt.name, resp.Header.Get("Location"))
		}
		if tt.code >= 400 && strings.Contains(body, "postgres") {
			t.Errorf("%s: internal details in %q", tt.name, body)
		}
	}
}

// TestAdmin drains and enables through the forms, and refuses everything
// else without touching the store.
func TestAdmin(t *testing.T) {
	drain := url.Values{"pool": {"WWW.example.net"}, "address": {"192.0.2.1"}, "action": {"drain"}, "reason": {" kernel upgrade "}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range drain {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name     string
		form     url.Values
		cookie   string
		headers  map[string]string
		storeErr error
		code     int
		msg      string // in the error page, or the Location of a 303
		call     string // the SetAdmin call made; "" for none
	}{
		{"drain", drain, opToken, nil, nil, 303, "done=drain&pool=www.example.net.", "www.example.net. 192.0.2.1 drain kernel upgrade token:alice"},
		{"enable without a reason", url.Values{"pool": {"www.example.net."}, "address": {"192.0.2.3"}, "action": {"enable"}}, opToken, nil, nil,
			303, "done=enable", "www.example.net. 192.0.2.3 active  token:alice"},
		{"IPv4-mapped address", with("address", "::ffff:192.0.2.1"), opToken, nil, nil, 303, "address=192.0.2.1", "www.example.net. 192.0.2.1 drain kernel upgrade token:alice"},
		{"referer instead of origin", drain, opToken, map[string]string{"Origin": "", "Referer": "http://example.com/status"}, nil, 303, "done=drain", "www.example.net. 192.0.2.1 drain kernel upgrade token:alice"},

		{"no origin nor referer", drain, opToken, map[string]string{"Origin": "", "Sec-Fetch-Site": ""}, nil, 403, "cross-origin request refused", ""},
		{"another origin", drain, opToken, map[string]string{"Origin": "http://evil.example"}, nil, 403, "cross-origin", ""},
		{"another port", drain, opToken, map[string]string{"Origin": "http://example.com:8080"}, nil, 403, "cross-origin", ""},
		{"null origin", drain, opToken, map[string]string{"Origin": "null"}, nil, 403, "cross-origin", ""},
		{"cross-site fetch", drain, opToken, map[string]string{"Sec-Fetch-Site": "cross-site"}, nil, 403, "cross-origin", ""},
		{"same-site is not same-origin", drain, opToken, map[string]string{"Sec-Fetch-Site": "same-site"}, nil, 403, "cross-origin", ""},
		{"referer of another site", drain, opToken, map[string]string{"Origin": "", "Referer": "http://evil.example/status"}, nil, 403, "cross-origin", ""},
		{"not a web origin", drain, opToken, map[string]string{"Origin": "file://example.com"}, nil, 403, "cross-origin", ""},

		{"not signed in", drain, "", nil, nil, 401, "sign in with an operator token first", ""},
		{"revoked token", drain, "mrd_revoked", nil, nil, 401, "missing or invalid token", ""},
		{"agent token of the pool", drain, agentToken, nil, nil, 403, "this needs an operator token", ""},
		{"agent token of another pool", drain, otherToken, nil, nil, 403, "this needs an operator token", ""},
		{"store away checking the token", drain, "mrd_store-down", nil, nil, 500, "internal error", ""},

		{"bad action", with("action", "disable"), opToken, nil, nil, 400, `action &#34;disable&#34;: want drain or enable`, ""},
		{"no action", with("action", ""), opToken, nil, nil, 400, "want drain or enable", ""},
		{"no pool", with("pool", " "), opToken, nil, nil, 400, "no pool", ""},
		{"bad address", with("address", "192.0.2.300"), opToken, nil, nil, 400, "bad endpoint address", ""},
		{"address with a zone", with("address", "fe80::1%eth0"), opToken, nil, nil, 400, "bad endpoint address", ""},
		{"drain without a reason", with("reason", "  "), opToken, nil, nil, 400, "give a reason to drain", ""},
		{"reason too long", with("reason", strings.Repeat("x", 1025)), opToken, nil, nil, 400, "reason of 1025 bytes", ""},
		{"body too large", with("reason", strings.Repeat("x", 9000)), opToken, nil, nil, 413, "request body over 8192 bytes", ""},
		{"unknown pool", with("pool", "nope.example.net"), opToken, nil, postgres.ErrUnknownPool, 404, "unknown pool nope.example.net.", ""},
		{"unknown endpoint", drain, opToken, nil, postgres.ErrUnknownEndpoint, 404, "pool www.example.net. has no endpoint 192.0.2.1", ""},
		{"store failure", drain, opToken, nil, errors.New("postgres: set admin state: connection reset"), 500, "internal error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer()
			s.f.adminErr = tt.storeErr
			resp := s.do("POST", "/status/admin", tt.form, tt.cookie, tt.headers)
			body := readBody(t, resp)
			if resp.StatusCode != tt.code {
				t.Errorf("HTTP %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if tt.code == 303 {
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/status?") || !strings.Contains(loc, tt.msg) {
					t.Errorf("Location %q, want %q", loc, tt.msg)
				}
			} else if !strings.Contains(body, tt.msg) || !strings.Contains(body, "Nothing was changed") {
				t.Errorf("body %q, want %q", body, tt.msg)
			}
			if strings.Contains(body, "postgres") || strings.Contains(body, "connection") {
				t.Errorf("internal details shown: %q", body)
			}
			var calls []string
			if tt.call != "" {
				calls = []string{tt.call}
			}
			if strings.Join(s.f.calls, "|") != strings.Join(calls, "|") {
				t.Errorf("SetAdmin calls %q, want %q", s.f.calls, calls)
			}
			if tt.code == 303 && !strings.Contains(s.log.String(), `msg="Admin state changed"`) {
				t.Errorf("action not logged: %s", s.log)
			}
		})
	}
}

// TestPageFilter narrows the endpoint tables by pool and state, while
// the summary still counts every endpoint, and caps the rows of a large
// fleet.
func TestPageFilter(t *testing.T) {
	s := newServer()
	rows := regexp.MustCompile(`data-address="([^"]+)"`)
	listed := func(body string) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	const summary = `2 pools, 5 endpoints: 2 up, 1 down, 1 unknown, 1 drained or disabled; 2 in the answers.`
	for _, tt := range []struct {
		query  string
		listed []string
		has    []string
	}{
		{"", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::4", "198.51.100.1"}, nil},
		{"?state=down", []string{"192.0.2.2"}, []string{"1 of 5 endpoints match.", `<option value="down" selected>`}},
		{"?q=API", []string{"198.51.100.1"}, []string{`value="API"`, `<a href="/status">all endpoints</a>`}},
		{"?state=out", []string{"192.0.2.2", "192.0.2.3", "198.51.100.1"}, []string{"3 of 5 endpoints match."}},
		{"?q=www&state=drain", []string{"192.0.2.3"}, nil},
		{"?state=bogus", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::4", "198.51.100.1"}, nil},
		{"?q=nothing", nil, []string{"No endpoint matches the filter."}},
	} {
		body := readBody(t, s.do("GET", "/status"+tt.query, nil, "", nil))
		if got := listed(body); !slices.Equal(got, tt.listed) {
			t.Errorf("%q lists %v, want %v", tt.query, got, tt.listed)
		}
		for _, want := range append(tt.has, summary) {
			if !strings.Contains(body, want) {
				t.Errorf("%q: page lacks %q", tt.query, want)
			}
		}
	}

	// A pool larger than a page: the first maxRows endpoints are listed,
	// and the page says how to see the rest.
	big := postgres.OverviewPool{Zone: "example.net.", Name: "big.example.net.", Quorum: "any"}
	for i := range maxRows + 100 {
		big.Endpoints = append(big.Endpoints, postgres.OverviewEndpoint{
			Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Datacenter: "eu-west", Weight: 1, Health: zones.HealthUp})
	}
	s.f.mu.Lock()
	s.f.ov.Pools = append(s.f.ov.Pools, big)
	s.f.mu.Unlock()
	body := readBody(t, s.do("GET", "/status", nil, "", nil))
	if n := len(listed(body)); n != maxRows {
		t.Errorf("%d rows listed, want %d", n, maxRows)
	}
	for _, want := range []string{
		fmt.Sprintf("Listing the first %d of %d endpoints: narrow the filter", maxRows, maxRows+105),
		fmt.Sprintf("3 pools, %d endpoints", maxRows+105),
		fmt.Sprintf("· %d of %d endpoints in the answers · %d listed", maxRows+100, maxRows+100, maxRows-5),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("large fleet: page lacks %q", want)
		}
	}
}

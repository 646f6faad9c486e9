package agentapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Bits of FuzzAgentReport's mode argument.
const (
	fuzzAdmin      = 1 << iota // POST .../admin rather than .../report
	fuzzStoreDown              // the store fails with internal errors
	fuzzTokensDown             // so does its token check
)

var fuzzTokens = []string{fakeAgent, fakeOther, fakeOperator, "", "mrd_wrong", "hello"}

// leaks are what an error body must never contain: the fake store's
// secret and the marks of Go, JSON and SQL internals.
var leaks = []string{"SECRET", "SQLSTATE", "postgres", "json:", "runtime.", "goroutine", ".go:", "/srv/", "panic",
	"agentapi.", "reflect", "float64", "*int", "struct {"}

// FuzzAgentReport sends arbitrary report and admin bodies, on arbitrary
// pools and addresses, with each kind of token, through the real handler
// over fakeStore. Properties:
//
//   - no panic, and no 5xx unless the store itself fails;
//   - every answer is JSON; errors are {"error": "..."} and show nothing
//     internal, even when the store's errors hold secrets;
//   - a missing or wrong token gets 401, an agent token on admin or on
//     another pool 403, whatever the body;
//   - a refused request changes nothing; an accepted one changes exactly
//     one thing, with values in range and as the body said.
func FuzzAgentReport(f *testing.F) {
	seeds := []struct {
		mode          uint8
		token         uint8
		pool, address string
		body          string
	}{
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{0, 0, "WWW.api.example", "2001:db8::11", `{"status": "up 75% maxconn:50", "load": 0.3, "ttl": "45s"}`},
		{0, 2, "other.api.example.", "192.0.2.21", `{"status": "drain # deploy", "connections": 12, "capacity": 50}`},
		{0, 0, "www.api.example.", "::ffff:192.0.2.11", `{"status": "maint", "weight_percent": 0, "message": "m"}`},
		{0, 1, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{0, 3, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up", "load": 1e400}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up", "load": NaN}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up", "ttl": "9223372036854775807ns"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "75%", "weight_percent": 75, "capacity": 9223372036854775807}`},
		{0, 0, "www.api.example.", "fe80::1%eth0", `{"status": "up"}`},
		{0, 0, "www.api.example.", "192.0.2.99", `{"status": "up"}`},
		{0, 2, "nope.api.example.", "192.0.2.11", `{"status": "up"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up"} {"status": "down"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `[]`},
		{0, 0, "www.api.example.", "192.0.2.11", "\xff\xfe"},
		{fuzzStoreDown, 0, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{fuzzAdmin, 2, "www.api.example.", "192.0.2.11", `{"state": "drain", "reason": "rack move"}`},
		{fuzzAdmin, 2, "www.api.example.", "192.0.2.11", `{"state": "active", "reason": ""}`},
		{fuzzAdmin, 2, "www.api.example.", "192.0.2.11", `{"state": "disabled", "reason": "  "}`},
		{fuzzAdmin, 0, "www.api.example.", "192.0.2.11", `{"state": "drain", "reason": "x"}`},
		{fuzzTokensDown, 4, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{fuzzTokensDown, 3, "www.api.example.", "192.0.2.11", `{"status": "up"}`},
		{0, 0, "www.api.example./../x", "192.0.2.11", `{"status": "up"}`},
		{0, 0, "www/api", "192.0.2.11", `{"status": "up"}`},
		{fuzzAdmin | fuzzStoreDown, 2, "www.api.example.", "192.0.2.11", `{"state": "drain", "reason": "x"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up", "connections": 1.5, "load": "high"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "-0%"}`}, // once taken as 0%, drain
		{0, 2, "www.api.example.", "192.0.2.11", `{"status": "up maxconn:-0"}`},
		{0, 0, "www.api.example.", "192.0.2.11", `{"status": "up"}` + "\n\t "},
		{fuzzAdmin, 2, "www.api.example.", "192.0.2.11", `{"state": "drain", "reason": "` + strings.Repeat("x", 1025) + `"}`},
	}
	for _, s := range seeds {
		f.Add(s.mode, s.token, s.pool, s.address, []byte(s.body))
	}
	// One handler for all the inputs a worker runs (they run one at a
	// time), as a server has: building it costs more than a request.
	st := &fakeStore{}
	h := agentapi.New(st, nil)
	f.Fuzz(func(t *testing.T, mode, tokenSel uint8, pool, address string, body []byte) {
		st.reset(mode&fuzzStoreDown != 0, mode&fuzzTokensDown != 0)
		token := fuzzTokens[int(tokenSel)%len(fuzzTokens)]
		route := "report"
		if mode&fuzzAdmin != 0 {
			route = "admin"
		}
		path := "/v1/pools/" + url.PathEscape(pool) + "/endpoints/" + url.PathEscape(address) + "/" + route
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.URL.Path, r.URL.RawPath = pathUnescaped(path), path
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		code := w.Code
		if w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%d with Content-Type %q", code, w.Header().Get("Content-Type"))
		}
		if code >= 500 && !st.fail && !st.failToken {
			t.Fatalf("%d for %s %q: %s", code, path, body, w.Body)
		}
		if code >= 400 {
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d with body %q: not a JSON error", code, w.Body)
			}
			// Errors may quote the request; what it holds is no leak.
			asked := strings.ToLower(pool + " " + address + " " + string(body))
			for _, l := range leaks {
				if strings.Contains(e.Error, l) && !strings.Contains(asked, strings.ToLower(l)) {
					t.Fatalf("%d error %q shows %q", code, e.Error, l)
				}
			}
			if code >= 500 && e.Error != "internal error" {
				t.Fatalf("%d error %q, want internal error", code, e.Error)
			}
		}
		if code != http.StatusOK && st.changes() != 0 {
			t.Fatalf("%d, yet the store changed: %+v %+v", code, st.reports, st.admins)
		}

		// Authentication comes before anything the request says: the
		// answers that do not reach a handler (redirects to a clean path,
		// 404 and 405 of the mux) aside.
		mux := code/100 == 3 || code == http.StatusMethodNotAllowed ||
			code == http.StatusNotFound && strings.Contains(w.Body.String(), `"not found"`)
		canon := zones.CanonicalName(pool)
		switch {
		case mux:
		case st.failToken && token != "":
			if code != http.StatusInternalServerError {
				t.Fatalf("token check failing: %d %s, want 500", code, w.Body)
			}
		case token != fakeAgent && token != fakeOther && token != fakeOperator:
			if code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" ||
				!strings.Contains(w.Body.String(), `"missing or invalid token"`) {
				t.Fatalf("token %q: %d %s, want 401 with the challenge and the fixed message", token, code, w.Body)
			}
		case route == "admin" && token != fakeOperator,
			token == fakeAgent && canon != "www.api.example.",
			token == fakeOther && canon != "other.api.example.":
			if code != http.StatusForbidden {
				t.Fatalf("token %q on %s of %s: %d %s, want 403", token, route, canon, code, w.Body)
			}
		}
		if code != http.StatusOK {
			return
		}

		// Accepted: exactly one change, in range and as asked, from a
		// body within the limit.
		if len(body) > agentapi.MaxBody {
			t.Fatalf("200 for a body of %d bytes", len(body))
		}
		addr, err := netip.ParseAddr(address)
		if err != nil || addr.Zone() != "" {
			t.Fatalf("accepted address %q: %v", address, err)
		}
		addr = addr.Unmap()
		if st.changes() != 1 {
			t.Fatalf("200 with %d changes", st.changes())
		}
		if route == "admin" {
			a := st.admins[0]
			var resp agentapi.AdminResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if a.pool != canon || a.addr != addr || a.actor != "token:ops" ||
				(a.state != zones.AdminActive && strings.TrimSpace(a.reason) == "") || len(a.reason) > 1024 ||
				resp.Pool != canon || resp.Address != addr.String() || resp.State != a.state.String() {
				t.Fatalf("admin %+v, response %+v", a, resp)
			}
			return
		}
		rep := st.reports[0]
		if rep.pool != canon || rep.addr != addr {
			t.Fatalf("report stored for %s %s, asked for %s %s", rep.pool, rep.addr, canon, addr)
		}
		checkReport(t, rep.rep, body)
		var resp agentapi.ReportResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Pool != canon || resp.Address != addr.String() || (resp.Health != "up" && resp.Health != "down") ||
			(resp.Health == "up") != (rep.rep.Status == postgres.AgentUp) {
			t.Fatalf("response %+v to report %+v", resp, rep.rep)
		}
	})
}

// pathUnescaped is path with its escapes decoded, as a server sees it.
func pathUnescaped(path string) string {
	p, err := url.PathUnescape(path)
	if err != nil {
		return path
	}
	return p
}

// checkReport checks a stored report against the ranges of
// postgres.Report and against the body, decoded here on its own.
func checkReport(t *testing.T, r postgres.Report, body []byte) {
	t.Helper()
	if !slices.Contains([]string{postgres.AgentUp, postgres.AgentDown, postgres.AgentDrain}, r.Status) {
		t.Fatalf("status %q stored", r.Status)
	}
	switch {
	case r.Load != nil && (math.IsNaN(*r.Load) || *r.Load < 0 || *r.Load > 1),
		r.Connections != nil && *r.Connections < 0,
		r.Capacity != nil && *r.Capacity < 0,
		r.WeightPercent != nil && (*r.WeightPercent < 0 || *r.WeightPercent > 100000),
		r.TTL <= 0 || r.TTL > postgres.MaxReportTTL,
		len(r.Message) > 1024:
		t.Fatalf("report out of range stored: %+v", r)
	}
	var req struct {
		Status        string
		Load          *float64
		Connections   *int
		Capacity      *int
		WeightPercent *int `json:"weight_percent"`
		Message       string
		TTL           string
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("accepted body %q does not decode: %v", body, err)
	}
	// The status as the vocabulary's specification reads it, not as
	// ParseStatus does, so that this checks the handler end to end.
	st, ok := parseStatusSpec(req.Status)
	if !ok || st.State != r.Status {
		t.Fatalf("status %q stored as %q; the specification reads %s (valid %v)", req.Status, r.Status, fmtStatus(st), ok)
	}
	eq := func(a, b *int) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }
	if req.WeightPercent != nil && !eq(req.WeightPercent, r.WeightPercent) ||
		st.WeightPercent != nil && !eq(st.WeightPercent, r.WeightPercent) ||
		req.Capacity != nil && !eq(req.Capacity, r.Capacity) ||
		st.MaxConn != nil && !eq(st.MaxConn, r.Capacity) ||
		!eq(req.Connections, r.Connections) {
		t.Fatalf("body %q stored as %+v", body, r)
	}
	if req.Message != "" && r.Message != req.Message || req.Message == "" && r.Message != st.Note {
		t.Fatalf("message %q, note %q stored as %q", req.Message, st.Note, r.Message)
	}
	want := agentapi.DefaultTTL
	if req.TTL != "" {
		want, _ = time.ParseDuration(req.TTL)
	}
	if r.TTL != want {
		t.Fatalf("ttl %q stored as %s", req.TTL, r.TTL)
	}
}

// FuzzParseStatus checks ParseStatus against a second reading of HAProxy's
// agent-check vocabulary, written for the test from the documentation
// (parseStatusSpec). Properties:
//
//   - no panic;
//   - it accepts exactly what the specification accepts, and then says
//     the same: state, weight, maxconn and note;
//   - what it accepts is in range (a known state, 0 ≤ N% ≤ 100000,
//     0 ≤ maxconn < 2³¹) and round-trips: the status written back in
//     canonical words parses to the same;
//   - what it refuses comes with an error and a zero Status.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{
		"up", "UP", "ready", "down", "fail", "stopped # power off", "down#disk full", "drain", "maint",
		"maint # kernel update", "75%", "0%", "up 75%", "up,75%,maxconn:30", "up\t50%", "maxconn:30",
		"up ready", "up drain", "down ready", "down 50%", "up up", "150%", "100000%", "100001%",
		"maxconn:2147483647", "maxconn:2147483648", "0000000000000000000075%", "", "   ", "# only a note",
		"maybe", "up down", "ready drain", "drain maint", "-5%", "+5%", "-0%", "maxconn:-0", "maxconn:+3",
		"7.5%", "%", "50% 60%", "50% 050%", "maxconn:", "maxconn:x", "maxconn:99999999999", "ｕｐ", "up\n",
		"up\x00", "up #", "#", "up ## a # b ", "Drain,MAINT", "50%%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := agentapi.ParseStatus(s)
		want, ok := parseStatusSpec(s)
		if err != nil {
			if ok {
				t.Fatalf("ParseStatus(%q): %v; want %s", s, err, fmtStatus(want))
			}
			if st.State != "" || st.WeightPercent != nil || st.MaxConn != nil || st.Note != "" {
				t.Fatalf("ParseStatus(%q) refused (%v), yet returned %s", s, err, fmtStatus(st))
			}
			return
		}
		if !ok {
			t.Fatalf("ParseStatus(%q) = %s, want an error", s, fmtStatus(st))
		}
		if fmtStatus(st) != fmtStatus(want) {
			t.Fatalf("ParseStatus(%q) = %s, want %s", s, fmtStatus(st), fmtStatus(want))
		}
		switch {
		case !slices.Contains([]string{postgres.AgentUp, postgres.AgentDown, postgres.AgentDrain}, st.State),
			st.WeightPercent != nil && (*st.WeightPercent < 0 || *st.WeightPercent > 100000),
			st.MaxConn != nil && (*st.MaxConn < 0 || *st.MaxConn > math.MaxInt32):
			t.Fatalf("ParseStatus(%q) = %s: out of range", s, fmtStatus(st))
		}
		again, err := agentapi.ParseStatus(canonStatus(st))
		if err != nil || fmtStatus(again) != fmtStatus(st) {
			t.Fatalf("ParseStatus(%q) = %s, written %q, read again %s (%v)", s, fmtStatus(st), canonStatus(st), fmtStatus(again), err)
		}
	})
}

// parseStatusSpec is ParseStatus as docs/api.md and its doc comment
// describe it, written independently of it.
func parseStatusSpec(s string) (agentapi.Status, bool) {
	var st agentapi.Status
	before, note, hasNote := strings.Cut(s, "#")
	if hasNote {
		st.Note = strings.TrimSpace(note)
	}
	ops, adms := map[string]bool{}, map[string]bool{}
	weights, maxconns := map[int]bool{}, map[int]bool{}
	// num reads digits only, of any length, as a value up to max.
	num := func(d string, max int) (int, bool) {
		if d == "" || strings.Trim(d, "0123456789") != "" {
			return 0, false
		}
		d = strings.TrimLeft(d, "0")
		if len(d) > 12 {
			return 0, false
		}
		n := 0
		for _, c := range d {
			n = 10*n + int(c-'0')
		}
		return n, n <= max
	}
	words := strings.FieldsFunc(strings.ToLower(before), func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(words) == 0 {
		return agentapi.Status{}, false
	}
	for _, w := range words {
		switch {
		case w == "up":
			ops["up"] = true
		case w == "down" || w == "fail" || w == "stopped":
			ops["down"] = true
		case w == "ready" || w == "drain" || w == "maint":
			adms[w] = true
		case strings.HasSuffix(w, "%"):
			n, ok := num(strings.TrimSuffix(w, "%"), 100000)
			if !ok {
				return agentapi.Status{}, false
			}
			weights[n] = true
		case strings.HasPrefix(w, "maxconn:"):
			n, ok := num(strings.TrimPrefix(w, "maxconn:"), math.MaxInt32)
			if !ok {
				return agentapi.Status{}, false
			}
			maxconns[n] = true
		default:
			return agentapi.Status{}, false
		}
	}
	if len(ops) > 1 || len(adms) > 1 || len(weights) > 1 || len(maxconns) > 1 {
		return agentapi.Status{}, false
	}
	for n := range weights {
		st.WeightPercent = &n
	}
	for n := range maxconns {
		st.MaxConn = &n
	}
	switch {
	case ops["down"]:
		st.State = postgres.AgentDown
	case adms["drain"] || adms["maint"]:
		st.State = postgres.AgentDrain
	case ops["up"] || adms["ready"]:
		st.State = postgres.AgentUp
	case st.WeightPercent != nil && *st.WeightPercent == 0:
		st.State = postgres.AgentDrain
	default:
		st.State = postgres.AgentUp
	}
	if adms["maint"] && st.Note == "" {
		st.Note = "maint"
	}
	return st, true
}

// canonStatus writes st back in the vocabulary's canonical words.
func canonStatus(st agentapi.Status) string {
	s := st.State
	if st.WeightPercent != nil {
		s += fmt.Sprintf(" %d%%", *st.WeightPercent)
	}
	if st.MaxConn != nil {
		s += fmt.Sprintf(" maxconn:%d", *st.MaxConn)
	}
	if st.Note != "" {
		s += " # " + st.Note
	}
	return s
}

// fmtStatus shows st for comparison and messages.
func fmtStatus(st agentapi.Status) string {
	n := func(p *int) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{%s weight %s maxconn %s note %q}", st.State, n(st.WeightPercent), n(st.MaxConn), st.Note)
}

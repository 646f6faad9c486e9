package agentapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// serveReal serves h with NewServer, changed by tune, on a loopback
// port, and returns its address.
func serveReal(t *testing.T, h http.Handler, tune func(*http.Server)) string {
	t.Helper()
	s := agentapi.NewServer("127.0.0.1:0", h)
	if tune != nil {
		tune(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

func (s *fakeStore) checks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenChecks
}

func TestNewServerLimits(t *testing.T) {
	s := agentapi.NewServer("127.0.0.1:0", http.NotFoundHandler())
	if s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 10*time.Second || s.WriteTimeout != 10*time.Second ||
		s.IdleTimeout != 60*time.Second || s.MaxHeaderBytes != 16<<10 {
		t.Errorf("server %+v", s)
	}
}

// TestSlowHeaders: a client that opens a connection and sends its
// headers a line at a time, never finishing them (slowloris), is cut off
// when the header timeout runs out, though it keeps sending; the handler
// never runs.
func TestSlowHeaders(t *testing.T) {
	st := &fakeStore{}
	const timeout = 200 * time.Millisecond
	addr := serveReal(t, agentapi.New(st, nil), func(s *http.Server) { s.ReadHeaderTimeout = timeout })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: agents\r\nAuthorization: Bearer %s\r\n", report, fakeAgent)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte("X-Slow: 1\r\n")); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 512))
	took := time.Since(start)
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read %d bytes, %v: the server did not hang up", n, err)
	}
	if took < timeout*3/4 || took > 10*timeout {
		t.Errorf("cut off after %s, want about %s", took, timeout)
	}
	if st.checks() != 0 || st.changes() != 0 {
		t.Errorf("the handler ran: %d token checks, %d changes", st.checks(), st.changes())
	}
}

// TestSlowBody: a client that sends its headers, then its body a byte at
// a time, gets 408 when the read timeout runs out, and nothing changes.
func TestSlowBody(t *testing.T) {
	st := &fakeStore{}
	const timeout = 300 * time.Millisecond
	addr := serveReal(t, agentapi.New(st, nil), func(s *http.Server) { s.ReadTimeout = timeout })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"status": "up"}`
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: agents\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", report, fakeAgent, len(body)+100)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			b := byte(' ')
			if i < len(body) {
				b = body[i]
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request body too slow") {
		t.Errorf("%d %s, want 408", resp.StatusCode, b)
	}
	if st.changes() != 0 {
		t.Errorf("%d changes", st.changes())
	}
}

// TestLimitsOverTheNetwork: headers over MaxHeaderBytes get 431 before
// any handler runs; a body over MaxBody gets 413, sent with or without a
// length, changes nothing and closes the connection.
func TestLimitsOverTheNetwork(t *testing.T) {
	st := &fakeStore{}
	addr := serveReal(t, agentapi.New(st, nil), nil)
	url := "http://" + addr + report

	r, _ := http.NewRequest("POST", url, strings.NewReader(`{"status": "up"}`))
	r.Header.Set("Authorization", "Bearer "+fakeAgent)
	r.Header.Set("X-Padding", strings.Repeat("x", 32<<10))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || st.checks() != 0 {
		t.Errorf("large headers: %d, %d token checks; want 431 and none", resp.StatusCode, st.checks())
	}

	big := `{"status": "up", "message": "` + strings.Repeat("x", agentapi.MaxBody) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(body) // no length known: sent chunked
		}
		r, _ := http.NewRequest("POST", url, body)
		r.Header.Set("Authorization", "Bearer "+fakeAgent)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "request body over 65536 bytes") || !resp.Close {
			t.Errorf("chunked %v: %d %s, close %v", chunked, resp.StatusCode, b, resp.Close)
		}
	}
	if st.changes() != 0 {
		t.Errorf("%d changes", st.changes())
	}
}

// panicStore is fakeStore with every method that acts panicking, with
// the secret in the panic.
type panicStore struct{ *fakeStore }

func (panicStore) ReportAgent(context.Context, string, netip.Addr, postgres.Report) (zones.HealthState, bool, error) {
	panic("ReportAgent: " + secret)
}

func (panicStore) ListPools(context.Context) ([]postgres.PoolInfo, error) {
	var m map[string]int
	m["x"]++ // a runtime error, as a bug would make
	return nil, nil
}

// TestPanicRecovered: a panic in a handler answers 500 "internal error",
// its value and stack going to the log only; the server goes on.
func TestPanicRecovered(t *testing.T) {
	var log logbuf.Buffer
	st := &fakeStore{}
	addr := serveReal(t, agentapi.New(panicStore{st}, slog.New(slog.NewTextHandler(&log, nil))), nil)
	for _, r := range []struct{ method, path, body string }{
		{"POST", report, `{"status": "up"}`},
		{"GET", "/v1/pools", ""},
	} {
		req, _ := http.NewRequest(r.method, "http://"+addr+r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Bearer "+fakeOperator)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || string(b) != `{"error":"internal error"}`+"\n" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q", r.method, r.path, resp.StatusCode, b)
		}
	}
	if l := log.String(); !strings.Contains(l, "HTTP handler panicked") || !strings.Contains(l, "SECRET-7f3a") ||
		!strings.Contains(l, "assignment to entry in nil map") || !strings.Contains(l, "goroutine") {
		t.Errorf("log lacks the panics: %s", l)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("after the panics: %v %v", resp, err)
	}
}

// TestRecover checks Recover's other cases: headers set before the
// panic are dropped, a panic after the answer began cuts the connection,
// and http.ErrAbortHandler passes through.
func TestRecover(t *testing.T) {
	var log logbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	srv := httptest.NewServer(agentapi.Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/before":
			http.SetCookie(w, &http.Cookie{Name: "c", Value: "secret"})
			panic(errors.New("open /srv/meridian/x: permission denied"))
		case "/after":
			w.WriteHeader(200)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			panic("late")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
	}), logger, nil))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/before")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || string(b) != "internal error\n" || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("/before: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if !strings.Contains(log.String(), "permission denied") {
		t.Errorf("log %s", log.String())
	}

	resp, err = http.Get(srv.URL + "/after")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("/after: the answer ended normally; want it cut")
	}
	if !strings.Contains(log.String(), "panic=late") {
		t.Errorf("log %s", log.String())
	}

	before := log.String()
	if resp, err := http.Get(srv.URL + "/abort"); err == nil {
		resp.Body.Close()
		t.Errorf("/abort: %d, want the connection cut", resp.StatusCode)
	}
	if log.String() != before {
		t.Errorf("ErrAbortHandler logged: %s", strings.TrimPrefix(log.String(), before))
	}
}

// TestInternalErrors: whatever route meets a store error, the client
// gets 500 "internal error" and the log the details.
func TestInternalErrors(t *testing.T) {
	for _, failToken := range []bool{false, true} {
		for _, r := range []struct{ method, path, body string }{
			{"POST", report, `{"status": "up"}`},
			{"POST", admin, `{"state": "drain", "reason": "x"}`},
			{"GET", "/v1/pools", ""},
			{"GET", "/v1/pools/www.api.example./endpoints", ""},
		} {
			var log logbuf.Buffer
			st := &fakeStore{fail: true, failToken: failToken}
			h := agentapi.New(st, slog.New(slog.NewTextHandler(&log, nil)))
			req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
			req.Header.Set("Authorization", "Bearer "+fakeOperator)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 500 || w.Body.String() != `{"error":"internal error"}`+"\n" {
				t.Errorf("%s %s (token check failing %v): %d %s", r.method, r.path, failToken, w.Code, w.Body)
			}
			if !strings.Contains(log.String(), "SECRET-7f3a") {
				t.Errorf("%s %s: the log lacks the error: %s", r.method, r.path, log.String())
			}
			if st.changes() != 0 {
				t.Errorf("%s %s: %d changes", r.method, r.path, st.changes())
			}
		}
	}
}

// TestErrorMessages: what clients are told of a bad body names JSON's
// types and their own fields, never Go's types or the store's wording.
func TestErrorMessages(t *testing.T) {
	h := agentapi.New(&fakeStore{}, nil)
	for _, tt := range []struct{ body, want string }{
		{`[]`, "bad JSON: want an object"},
		{`"up"`, "bad JSON: want an object"},
		{`{"status": 5}`, `bad JSON: field "status": want a string`},
		{`{"status": "up", "load": "high"}`, `bad JSON: field "load": want a number`},
		{`{"status": "up", "connections": 1.5}`, `bad JSON: field "connections": want an integer`},
		{`{"status": "up", "capacity": 1e30}`, `bad JSON: field "capacity": want an integer`},
		{`{"status": "up", "load": 2}`, "bad agent report: load 2: want 0 to 1"},
	} {
		r := httptest.NewRequest("POST", report, strings.NewReader(tt.body))
		r.Header.Set("Authorization", "Bearer "+fakeAgent)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var e struct{ Error string }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 400 || e.Error != tt.want {
			t.Errorf("%s: %d %s, want 400 %q", tt.body, w.Code, w.Body, tt.want)
		}
	}
}

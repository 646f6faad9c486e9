package statuspage

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/store/postgres"
)

// TestFormLimits posts forms over the network: one over maxForm gets
// 413, sent with a length or chunked, and changes nothing (no cookie, no
// admin action), the connection closed after it; the origin is checked
// before the body is read, and the body before the token.
func TestFormLimits(t *testing.T) {
	s := newServer()
	srv := httptest.NewServer(s.h)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	big := strings.Repeat("x", maxForm)
	drain := func(reason string) string {
		return url.Values{"pool": {"www.example.net."}, "address": {"192.0.2.1"}, "action": {"drain"}, "reason": {reason}}.Encode()
	}
	tests := []struct {
		name, path, body, cookie, origin string
		chunked                          bool
		code                             int
		msg                              string
	}{
		{"login, token too large", "/status/login", url.Values{"token": {opToken + big}}.Encode(), "", "http://" + host, false, 413, "request body over 8192 bytes"},
		{"login, chunked", "/status/login", url.Values{"token": {opToken + big}}.Encode(), "", "http://" + host, true, 413, "request body over 8192 bytes"},
		{"admin, reason too large", "/status/admin", drain(big), opToken, "http://" + host, false, 413, "request body over 8192 bytes"},
		{"admin, chunked", "/status/admin", drain(big), opToken, "http://" + host, true, 413, "request body over 8192 bytes"},
		{"admin, too large, bad token", "/status/admin", drain(big), "mrd_revoked", "http://" + host, false, 413, "request body over 8192 bytes"},
		{"admin, too large, cross-origin", "/status/admin", drain(big), opToken, "http://evil.example", false, 403, "cross-origin"},
		{"admin, cross-origin, no token", "/status/admin", drain("x"), "", "http://evil.example", false, 403, "cross-origin"},
		{"admin, bad token", "/status/admin", drain("x"), "mrd_revoked", "http://" + host, false, 401, "missing or invalid token"},
		{"admin, no token", "/status/admin", drain("x"), "", "http://" + host, false, 401, "sign in"},
		{"logout, too large", "/status/logout", "x=" + big, opToken, "http://" + host, false, 413, "request body over 8192 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			r, _ := http.NewRequest("POST", srv.URL+tt.path, body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", tt.origin)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tt.cookie})
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b := readBody(t, resp)
			resp.Body.Close()
			if resp.StatusCode != tt.code || !strings.Contains(b, tt.msg) || !strings.Contains(b, "Nothing was changed") {
				t.Errorf("%d %s, want %d with %q", resp.StatusCode, b, tt.code, tt.msg)
			}
			if tt.code == 413 && !resp.Close {
				t.Error("413 without closing the connection")
			}
			if c := resp.Header.Get("Set-Cookie"); c != "" && !strings.Contains(c, "Max-Age=0") {
				t.Errorf("cookie set: %s", c)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Error("no security headers")
			}
			if len(s.f.calls) != 0 {
				t.Errorf("SetAdmin called: %q", s.f.calls)
			}
		})
	}
}

// panicSource panics where the fake would answer, with a secret in the
// panic.
type panicSource struct{ *fake }

const secret = "SECRET-91c: dial tcp 10.9.8.7:5432 /etc/meridian/pg.pass"

func (panicSource) Overview(context.Context) (*postgres.Overview, error) {
	panic(secret)
}

// TestPanicRecovered: a panic answers 500 "internal error" with the
// page's security headers, the details only in the log.
func TestPanicRecovered(t *testing.T) {
	s := newServer()
	s.h = New(panicSource{s.f}, "c1", s.h.logger)
	resp := s.do("GET", "/status", nil, opToken, nil)
	body := readBody(t, resp)
	if resp.StatusCode != 500 || !strings.Contains(body, "internal error") || strings.Contains(body, "SECRET") ||
		strings.Contains(body, "10.9.8.7") || resp.Header.Get("Content-Security-Policy") != csp ||
		resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	if !strings.Contains(s.log.String(), "HTTP handler panicked") || !strings.Contains(s.log.String(), "SECRET-91c") {
		t.Errorf("log: %s", s.log)
	}
}

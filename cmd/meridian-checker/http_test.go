package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	imetrics "github.com/meridiandns/meridian/internal/metrics"

	"github.com/meridiandns/meridian/internal/logbuf"
)

// TestHTTPWithoutDatabase serves the checker's HTTP handler over a
// database that does not answer: every route that needs it says
// "internal error" and nothing of the database (address, user, driver),
// which goes to the log instead; what needs no database still works, and
// an oversized form is refused before the token is checked.
func TestHTTPWithoutDatabase(t *testing.T) {
	db, err := pgxpool.New(context.Background(), "postgres://meridian-user:pw-SECRET@127.0.0.1:1/meridian-db?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var log logbuf.Buffer
	reg := imetrics.NewRegistry("test")
	srv := httptest.NewServer(httpHandler(db, "c1", reg, newCheckerMetrics(reg), slog.New(slog.NewTextHandler(&log, nil))))
	defer srv.Close()

	token := "mrd_" + strings.Repeat("A", 43)
	login := url.Values{"token": {token}}.Encode()
	tests := []struct {
		name, method, path, body string
		form                     bool
		code                     int
		msg                      string
	}{
		{"report", "POST", "/v1/pools/www.example./endpoints/192.0.2.1/report", `{"status": "up"}`, false, 500, `{"error":"internal error"}`},
		{"admin", "POST", "/v1/pools/www.example./endpoints/192.0.2.1/admin", `{"state": "drain", "reason": "x"}`, false, 500, `{"error":"internal error"}`},
		{"pools", "GET", "/v1/pools", "", false, 500, `{"error":"internal error"}`},
		{"page", "GET", "/status", "", false, 503, "internal error"},
		{"sign in", "POST", "/status/login", login, true, 500, "internal error"},
		{"sign in, too large", "POST", "/status/login", login + strings.Repeat("x", 10<<10), true, 413, "request body over"},
		{"metrics", "GET", "/metrics", "", false, 200, "meridian_checker_"},
		{"healthz", "GET", "/healthz", "", false, 200, `"ok"`},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		r.Header.Set("Authorization", "Bearer "+token)
		if tt.form {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", srv.URL)
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(string(b), tt.msg) {
			t.Errorf("%s: %d %.300s, want %d with %q", tt.name, resp.StatusCode, b, tt.code, tt.msg)
		}
		if tt.code >= 400 {
			for _, leak := range []string{"127.0.0.1:1", "meridian-user", "meridian-db", "SECRET", "dial", "connect", "pgx", "postgres"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("%s: the answer shows %q: %s", tt.name, leak, b)
				}
			}
		}
	}
	if !strings.Contains(log.String(), "127.0.0.1") {
		t.Errorf("the log lacks the database's error: %s", log.String())
	}
}

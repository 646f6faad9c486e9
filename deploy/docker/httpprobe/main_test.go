package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			io.WriteString(w, "ready\n")
		case "/slow":
			time.Sleep(time.Second)
		default:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{srv.URL + "/readyz"}, 0},
		{"503", []string{srv.URL + "/notready"}, 1},
		{"refused", []string{closed.URL + "/readyz"}, 1},
		{"timeout", []string{"--timeout", "100ms", srv.URL + "/slow"}, 1},
		{"no URL", nil, 2},
		{"two URLs", []string{srv.URL, srv.URL}, 2},
		{"bad flag", []string{"--nope", srv.URL}, 2},
		{"bad URL", []string{"http://[::1"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args, io.Discard); got != tt.want {
				t.Errorf("run(%q) = %d, want %d", tt.args, got, tt.want)
			}
		})
	}
}

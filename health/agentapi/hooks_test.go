package agentapi_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store/postgres"
)

// TestOnReport counts each request to the report route once, accepted
// only when the report was stored; other routes are not counted.
func TestOnReport(t *testing.T) {
	f := newFixture(t)
	var accepted, rejected int
	f.h.(*agentapi.Handler).OnReport(func(ok bool) {
		if ok {
			accepted++
		} else {
			rejected++
		}
	})
	tests := []struct {
		name, method, path, token, body string
		accepted, rejected              int // counts after the request
	}{
		{"stored", "POST", report, f.agent, `{"status": "up"}`, 1, 0},
		{"no token", "POST", report, "", `{"status": "up"}`, 1, 1},
		{"other pool", "POST", report, f.otherAgent, `{"status": "up"}`, 1, 2},
		{"bad status", "POST", report, f.agent, `{"status": "sideways"}`, 1, 3},
		{"unknown endpoint", "POST", "/v1/pools/www.api.example./endpoints/192.0.2.99/report", f.agent, `{"status": "up"}`, 1, 4},
		{"operator report", "POST", report, f.operator, `{"status": "drain"}`, 2, 4},
		{"admin is not a report", "POST", admin, f.operator, `{"state": "drain", "reason": "x"}`, 2, 4},
		{"listing is not a report", "GET", "/v1/pools", f.operator, "", 2, 4},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		f.h.ServeHTTP(httptest.NewRecorder(), r)
		if accepted != tt.accepted || rejected != tt.rejected {
			t.Errorf("%s: accepted %d rejected %d, want %d %d", tt.name, accepted, rejected, tt.accepted, tt.rejected)
		}
	}
}

func TestMayAdmin(t *testing.T) {
	const pool = "www.api.example."
	tests := []struct {
		name  string
		token postgres.TokenInfo
		pool  string
		want  error
	}{
		{"operator", postgres.TokenInfo{Kind: postgres.TokenOperator}, pool, nil},
		{"operator, any spelling", postgres.TokenInfo{Kind: postgres.TokenOperator}, "WWW.api.example", nil},
		{"agent of the pool", postgres.TokenInfo{Kind: postgres.TokenAgent, Pool: pool}, pool, agentapi.ErrNeedOperator},
		{"agent of another pool", postgres.TokenInfo{Kind: postgres.TokenAgent, Pool: "other.api.example."}, pool, agentapi.ErrNeedOperator},
		{"no kind", postgres.TokenInfo{}, pool, agentapi.ErrNeedOperator},
	}
	for _, tt := range tests {
		if err := agentapi.MayAdmin(tt.token, tt.pool); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

package postgres_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// TestTokens creates, checks, lists and revokes tokens.
func TestTokens(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()

	agent, agentID, err := postgres.CreateToken(ctx, conn, postgres.TokenAgent, "WWW.health.example", "lb-1")
	if err != nil {
		t.Fatal(err)
	}
	op, opID, err := postgres.CreateToken(ctx, conn, postgres.TokenOperator, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{agent, op} {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, postgres.TokenPrefix))
		if !strings.HasPrefix(tok, postgres.TokenPrefix) || err != nil || len(raw) != 32 {
			t.Errorf("token %q: want mrd_ and 32 bytes base64url", tok)
		}
	}

	// Only the hash is stored.
	var hashes [][]byte
	rows, err := conn.Query(ctx, "SELECT hash FROM api_tokens ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	ha, ho := sha256.Sum256([]byte(agent)), sha256.Sum256([]byte(op))
	if len(hashes) != 2 || !bytes.Equal(hashes[0], ha[:]) || !bytes.Equal(hashes[1], ho[:]) {
		t.Errorf("stored hashes %x", hashes)
	}
	var leaks int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM api_tokens t WHERE position(convert_to($1, 'UTF8') in t.hash) > 0 OR t.label LIKE '%' || $1 || '%'", agent[4:20]).Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("secret found in api_tokens: %d, %v", leaks, err)
	}

	checks := []struct {
		name  string
		token string
		want  postgres.TokenInfo // zero: ErrBadToken
	}{
		{"agent", agent, postgres.TokenInfo{ID: agentID, Kind: "agent", Pool: healthPool, Label: "lb-1"}},
		{"operator", op, postgres.TokenInfo{ID: opID, Kind: "operator"}},
		{"empty", "", postgres.TokenInfo{}},
		{"no prefix", strings.TrimPrefix(agent, "mrd_"), postgres.TokenInfo{}},
		{"one char off", agent[:len(agent)-1] + string(agent[len(agent)-1]^1), postgres.TokenInfo{}},
		{"too long", agent + strings.Repeat("x", 200), postgres.TokenInfo{}},
	}
	for _, c := range checks {
		got, err := postgres.CheckToken(ctx, conn, c.token)
		if c.want.ID == 0 {
			if !errors.Is(err, postgres.ErrBadToken) {
				t.Errorf("%s: CheckToken = %+v, %v; want ErrBadToken", c.name, got, err)
			}
			continue
		}
		if err != nil || got.ID != c.want.ID || got.Kind != c.want.Kind || got.Pool != c.want.Pool || got.Label != c.want.Label || got.Created.IsZero() {
			t.Errorf("%s: CheckToken = %+v, %v; want %+v", c.name, got, err, c.want)
		}
		if (got.PoolID != 0) != (c.want.Pool != "") {
			t.Errorf("%s: pool id %d", c.name, got.PoolID)
		}
	}

	// Scope: an agent token acts on its own pool only.
	ti, _ := postgres.CheckToken(ctx, conn, agent)
	oi, _ := postgres.CheckToken(ctx, conn, op)
	for _, c := range []struct {
		tok  postgres.TokenInfo
		pool string
		want bool
	}{{ti, healthPool, true}, {ti, "WWW.Health.Example", true}, {ti, "api.health.example.", false}, {oi, "anything.example.", true}} {
		if got := c.tok.MayAct(c.pool); got != c.want {
			t.Errorf("%s token MayAct(%s) = %v", c.tok.Kind, c.pool, got)
		}
	}
	if ti.Actor() != "token:lb-1" || oi.Actor() != "token:#2" {
		t.Errorf("actors %q %q", ti.Actor(), oi.Actor())
	}

	// Bad creations create nothing.
	for _, c := range []struct{ kind, pool string }{
		{"agent", ""}, {"operator", healthPool}, {"root", ""}, {"agent", "nope.health.example."},
	} {
		if _, _, err := postgres.CreateToken(ctx, conn, c.kind, c.pool, ""); err == nil {
			t.Errorf("CreateToken(%s, %q) succeeded", c.kind, c.pool)
		}
	}
	if _, _, err := postgres.CreateToken(ctx, conn, "agent", "nope.health.example.", ""); !errors.Is(err, postgres.ErrUnknownPool) {
		t.Errorf("unknown pool: %v", err)
	}

	// Revoke.
	if err := postgres.RevokeToken(ctx, conn, agentID); err != nil {
		t.Fatal(err)
	}
	if err := postgres.RevokeToken(ctx, conn, agentID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := postgres.RevokeToken(ctx, conn, 999); !errors.Is(err, postgres.ErrUnknownToken) {
		t.Errorf("revoke unknown: %v", err)
	}
	if _, err := postgres.CheckToken(ctx, conn, agent); !errors.Is(err, postgres.ErrBadToken) {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := postgres.CheckToken(ctx, conn, op); err != nil {
		t.Errorf("operator token after revoking the agent's: %v", err)
	}
	ts, err := postgres.ListTokens(ctx, conn)
	if err != nil || len(ts) != 2 || ts[0].Revoked.IsZero() || !ts[1].Revoked.IsZero() || ts[0].Pool != healthPool {
		t.Errorf("ListTokens = %+v, %v", ts, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestAgentReportPrecedence checks that a fresh agent report wins over
// the probe quorum, that endpoint_health is written only when the state
// or the kind of its reason changes, and the fallback to the quorum when
// the report expires.
func TestAgentReportPrecedence(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	mustRegister(t, conn, "c1", time.Minute)
	report := func(status, msg string, ttl time.Duration) (zones.HealthState, bool) {
		t.Helper()
		st, changed, err := postgres.ReportAgent(ctx, conn, healthPool, ep1, postgres.Report{
			Status: status, Message: msg, TTL: ttl, Load: ptr(0.5), Connections: ptr(3), Capacity: ptr(10), WeightPercent: ptr(75)})
		if err != nil {
			t.Fatalf("report %s: %v", status, err)
		}
		return st, changed
	}
	expire := func() {
		t.Helper()
		if _, err := conn.Exec(ctx, "UPDATE agent_reports SET reported_at = now() - interval '2 minutes', expires_at = now() - interval '1 minute'"); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		do     func() (zones.HealthState, bool)
		want   zones.HealthState
		reason string
		bump   bool // whether the data version moves
	}{
		{"checker says up", func() (zones.HealthState, bool) { return mustVerdict(t, conn, "c1", ep1, true, "200") },
			zones.HealthUp, "majority: 1 of 1 checkers say up: 200", true},
		{"agent drains", func() (zones.HealthState, bool) { return report("drain", "deploy", time.Minute) },
			zones.HealthDown, "agent: drain: deploy", true},
		{"agent drains again, other message", func() (zones.HealthState, bool) { return report("drain", "deploy 2", time.Minute) },
			zones.HealthDown, "agent: drain: deploy", false},
		{"checker verdict does not override the agent", func() (zones.HealthState, bool) { return mustVerdict(t, conn, "c1", ep1, false, "503") },
			zones.HealthDown, "agent: drain: deploy", false},
		{"agent up wins over checker down", func() (zones.HealthState, bool) { return report("up", "", time.Minute) },
			zones.HealthUp, "agent: up", true},
		{"report expires: quorum says down", func() (zones.HealthState, bool) {
			expire()
			n, err := postgres.ExpireReports(ctx, conn)
			if err != nil || n != 1 {
				t.Fatalf("ExpireReports = %d, %v", n, err)
			}
			return zones.HealthDown, true
		}, zones.HealthDown, "majority: 1 of 1 checkers say down: 503", true},
		{"nothing more to expire", func() (zones.HealthState, bool) {
			n, err := postgres.ExpireReports(ctx, conn)
			if err != nil || n != 0 {
				t.Fatalf("ExpireReports = %d, %v", n, err)
			}
			return zones.HealthDown, false
		}, zones.HealthDown, "majority: 1 of 1 checkers say down: 503", false},
		{"agent down agrees with quorum: reason kind changes", func() (zones.HealthState, bool) { return report("down", "disk full", time.Minute) },
			zones.HealthDown, "agent: down: disk full", true},
		{"checker up meanwhile", func() (zones.HealthState, bool) { return mustVerdict(t, conn, "c1", ep1, true, "200 again") },
			zones.HealthDown, "agent: down: disk full", false},
		{"report expires: quorum up, by the next recomputation", func() (zones.HealthState, bool) {
			expire()
			return mustVerdict(t, conn, "c1", ep1, true, "200 again")
		}, zones.HealthUp, "majority: 1 of 1 checkers say up: 200 again", true},
	}
	for _, s := range steps {
		v := healthVersion(t, conn)
		got, _ := s.do()
		st := mustStatus(t, conn, ep1)
		if got != s.want || st.State != s.want || st.Reason != s.reason {
			t.Errorf("%s: effective %s, stored %s %q; want %s %q", s.name, got, st.State, st.Reason, s.want, s.reason)
		}
		if moved := healthVersion(t, conn) != v; moved != s.bump {
			t.Errorf("%s: version moved %v, want %v", s.name, moved, s.bump)
		}
	}
	var status string
	var load float32
	var conns, capacity, weight int
	if err := conn.QueryRow(ctx, "SELECT status, load, connections, capacity, weight_percent FROM agent_reports").Scan(&status, &load, &conns, &capacity, &weight); err != nil ||
		status != "down" || load != 0.5 || conns != 3 || capacity != 10 || weight != 75 {
		t.Errorf("stored report %s %v %d %d %d, %v", status, load, conns, capacity, weight, err)
	}
	if got := mustStatus(t, conn, ep2); got.State != zones.HealthUnknown {
		t.Errorf("the other endpoint: %s", got.State)
	}
}

// TestAgentReportExpiryNoChecker checks a short TTL with no checker: the
// endpoint falls back to unknown.
func TestAgentReportExpiryNoChecker(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	st, changed, err := postgres.ReportAgent(ctx, conn, healthPool, ep2, postgres.Report{Status: "up", TTL: 300 * time.Millisecond})
	if err != nil || st != zones.HealthUp || !changed {
		t.Fatalf("ReportAgent = %s %v %v", st, changed, err)
	}
	if n, err := postgres.ExpireReports(ctx, conn); err != nil || n != 0 {
		t.Fatalf("ExpireReports before the TTL = %d, %v", n, err)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := postgres.ExpireReports(ctx, conn); err != nil || n != 1 {
		t.Fatalf("ExpireReports = %d, %v", n, err)
	}
	if got := mustStatus(t, conn, ep2); got.State != zones.HealthUnknown || got.Reason != "majority: no live checker has a verdict" {
		t.Errorf("after expiry: %s %q", got.State, got.Reason)
	}
}

// TestAgentReportErrors checks that bad reports are refused and change
// nothing.
func TestAgentReportErrors(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	good := postgres.Report{Status: "up", TTL: time.Minute}
	tests := []struct {
		name   string
		pool   string
		addr   string
		mod    func(r *postgres.Report)
		target error
	}{
		{"bad status", healthPool, "192.0.2.11", func(r *postgres.Report) { r.Status = "maybe" }, postgres.ErrBadReport},
		{"load over 1", healthPool, "192.0.2.11", func(r *postgres.Report) { r.Load = ptr(1.5) }, postgres.ErrBadReport},
		{"negative load", healthPool, "192.0.2.11", func(r *postgres.Report) { r.Load = ptr(-0.1) }, postgres.ErrBadReport},
		{"negative connections", healthPool, "192.0.2.11", func(r *postgres.Report) { r.Connections = ptr(-1) }, postgres.ErrBadReport},
		{"negative capacity", healthPool, "192.0.2.11", func(r *postgres.Report) { r.Capacity = ptr(-1) }, postgres.ErrBadReport},
		{"negative weight", healthPool, "192.0.2.11", func(r *postgres.Report) { r.WeightPercent = ptr(-5) }, postgres.ErrBadReport},
		{"zero ttl", healthPool, "192.0.2.11", func(r *postgres.Report) { r.TTL = 0 }, postgres.ErrBadReport},
		{"ttl over an hour", healthPool, "192.0.2.11", func(r *postgres.Report) { r.TTL = time.Hour + time.Second }, postgres.ErrBadReport},
		{"unknown pool", "nope.health.example.", "192.0.2.11", nil, postgres.ErrUnknownPool},
		{"unknown endpoint", healthPool, "192.0.2.99", nil, postgres.ErrUnknownEndpoint},
	}
	v := healthVersion(t, conn)
	for _, tt := range tests {
		r := good
		if tt.mod != nil {
			tt.mod(&r)
		}
		addr := netipMust(tt.addr)
		if _, _, err := postgres.ReportAgent(ctx, conn, tt.pool, addr, r); !errors.Is(err, tt.target) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.target)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM agent_reports").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d reports stored, %v", n, err)
	}
	if healthVersion(t, conn) != v {
		t.Error("the data version moved")
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// TestToken creates, lists and revokes tokens with meridianctl.
func TestToken(t *testing.T) {
	db := ctlDB(t)
	mustCtl(t, append([]string{"apply", "--database", db}, examples...)...)
	tokenRE := regexp.MustCompile(`^mrd_[A-Za-z0-9_-]{43}\n$`)

	agent := mustCtl(t, "token", "create", "--database", db, "--pool", "www.example.net", "--label", "lb-1")
	op := mustCtl(t, "token", "create", "--database", db, "--operator")
	if !tokenRE.MatchString(agent) || !tokenRE.MatchString(op) || agent == op {
		t.Fatalf("tokens %q %q", agent, op)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ti, err := postgres.CheckToken(ctx, conn, strings.TrimSpace(agent))
	if err != nil || ti.Kind != "agent" || ti.Pool != "www.example.net." || ti.Label != "lb-1" {
		t.Errorf("agent token: %+v, %v", ti, err)
	}

	out := mustCtl(t, "token", "list", "--database", db)
	if strings.Contains(out, strings.TrimSpace(agent)) || strings.Contains(out, strings.TrimSpace(op)[4:]) {
		t.Errorf("token list shows a secret:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^1 +agent +www\.example\.net\. +lb-1 +\S.* -$`).MatchString(lines[1]) ||
		!regexp.MustCompile(`^2 +operator +- +- +\S.* -$`).MatchString(lines[2]) {
		t.Errorf("token list:\n%s", out)
	}

	// An API token carries its scopes, canonical, and is listed with them.
	api := mustCtl(t, "token", "create", "--database", db, "--api", "--scope", "read", "--scope", "zone:Example.NET", "--label", "ci")
	ai, err := postgres.CheckToken(ctx, conn, strings.TrimSpace(api))
	if err != nil || ai.Kind != "api" || strings.Join(ai.Scopes, " ") != "read zone:example.net." {
		t.Errorf("api token: %+v, %v", ai, err)
	}
	if out := mustCtl(t, "token", "list", "--database", db); !regexp.MustCompile(`\n3 +api +read,zone:example\.net\. +ci +`).MatchString(out) {
		t.Errorf("token list with an api token:\n%s", out)
	}
	if out := mustCtl(t, "token", "revoke", "--database", db, "1"); out != "token 1 revoked\n" {
		t.Errorf("revoke: %q", out)
	}
	if _, err := postgres.CheckToken(ctx, conn, strings.TrimSpace(agent)); !errors.Is(err, postgres.ErrBadToken) {
		t.Errorf("revoked token: %v", err)
	}
	if out := mustCtl(t, "token", "list", "--database", db); !regexp.MustCompile(`\n1 +agent .* lb-1 +\S.* \d{4}-\S+.*\n`).MatchString(out) {
		t.Errorf("token list after revoke:\n%s", out)
	}

	errs := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"token"}, 2, "Usage: meridianctl token"},
		{[]string{"token", "frob"}, 2, `unknown command "frob"`},
		{[]string{"token", "create", "--database", db}, 2, "give one of --pool, --operator or --api"},
		{[]string{"token", "create", "--database", db, "--pool", "www.example.net", "--operator"}, 2, "give one of --pool, --operator or --api"},
		{[]string{"token", "create", "--database", db, "--api"}, 2, "--scope goes with --api"},
		{[]string{"token", "create", "--database", db, "--operator", "--scope", "read"}, 2, "--scope goes with --api"},
		{[]string{"token", "create", "--database", db, "--api", "--scope", "write"}, 2, `unknown scope "write"`},
		{[]string{"token", "create", "--database", db, "--pool", "nope.example.net"}, 1, "unknown pool"},
		{[]string{"token", "create", "--database", db, "--operator", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"token", "revoke", "--database", db}, 2, "Usage: meridianctl token revoke ID"},
		{[]string{"token", "revoke", "--database", db, "x"}, 2, `"x" is no token id`},
		{[]string{"token", "revoke", "--database", db, "99"}, 1, "unknown token"},
		{[]string{"token", "list", "--database", db, "--bogus"}, 2, "unknown flag"},
	}
	for _, e := range errs {
		code, stdout, stderr := ctl(t, e.args...)
		if code != e.code || !strings.Contains(stderr, e.msg) || strings.Contains(stdout, "mrd_") {
			t.Errorf("meridianctl %s: exit %d, stdout %q, stderr %q; want %d with %q", strings.Join(e.args, " "), code, stdout, stderr, e.code, e.msg)
		}
	}
	if out := mustCtl(t, "token", "list", "--database", db); strings.Count(out, "\n") != 4 {
		t.Errorf("failed commands created tokens:\n%s", out)
	}
}

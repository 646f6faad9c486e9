package main

import (
	"context"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// TestCheckers lists checkers and removes a retired one, which only a
// sweep's finding it dead allows.
func TestCheckers(t *testing.T) {
	db := ctlDB(t)
	mustCtl(t, append([]string{"apply", "--database", db}, examples...)...)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := postgres.RegisterChecker(ctx, conn, "eu-1", "eu", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := postgres.RegisterChecker(ctx, conn, "old-1", "", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.RecordVerdict(ctx, conn, "old-1", "www.example.net.", netip.MustParseAddr("198.51.100.11"), true, "http 200"); err != nil {
		t.Fatal(err)
	}

	out := mustCtl(t, "checkers", "--database", db)
	if !regexp.MustCompile(`(?m)^ID +REGION +LIVE .*\neu-1 +eu +yes +\S+ +\S+ +1h0m0s\nold-1 +- +yes +`).MatchString(out) {
		t.Errorf("checkers:\n%s", out)
	}
	// Live, then expired but not yet swept: both refused.
	code, _, stderr := ctl(t, "checkers", "remove", "--database", db, "old-1")
	if code != 1 || !strings.Contains(stderr, "live or not yet found dead") {
		t.Errorf("remove a live checker: exit %d, %q", code, stderr)
	}
	time.Sleep(200 * time.Millisecond)
	code, _, stderr = ctl(t, "checkers", "remove", "--database", db, "old-1")
	if code != 1 || !strings.Contains(stderr, "not yet found dead") {
		t.Errorf("remove an unswept checker: exit %d, %q", code, stderr)
	}
	if out := mustCtl(t, "checkers", "--database", db); !regexp.MustCompile(`\nold-1 +- +no `).MatchString(out) {
		t.Errorf("expired checker listed as live:\n%s", out)
	}
	// eu-1's heartbeat sweeps old-1; then it may go, with its verdicts.
	if dead, err := postgres.Heartbeat(ctx, conn, "eu-1", time.Hour); err != nil || len(dead) != 1 || dead[0] != "old-1" {
		t.Fatalf("heartbeat: %v, %v", dead, err)
	}
	if out := mustCtl(t, "checkers", "remove", "--database", db, "old-1"); out != "checker old-1 removed\n" {
		t.Errorf("remove: %q", out)
	}
	var verdicts int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM probe_verdicts WHERE checker_id = 'old-1'").Scan(&verdicts); err != nil || verdicts != 0 {
		t.Errorf("verdicts of a removed checker: %d, %v", verdicts, err)
	}
	if out := mustCtl(t, "checkers", "--database", db); strings.Contains(out, "old-1") || !strings.Contains(out, "eu-1") {
		t.Errorf("checkers after remove:\n%s", out)
	}

	errs := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"checkers", "remove", "--database", db}, 2, "Usage: meridianctl checkers remove ID"},
		{[]string{"checkers", "remove", "--database", db, "old-1"}, 1, "unknown checker"},
		{[]string{"checkers", "remove", "--database", db, "eu-1"}, 1, "live or not yet found dead"},
		{[]string{"checkers", "--database", db, "extra"}, 2, `unexpected argument "extra"`},
	}
	for _, e := range errs {
		code, _, stderr := ctl(t, e.args...)
		if code != e.code || !strings.Contains(stderr, e.msg) {
			t.Errorf("meridianctl %s: exit %d, stderr %q; want %d with %q", strings.Join(e.args, " "), code, stderr, e.code, e.msg)
		}
	}
}

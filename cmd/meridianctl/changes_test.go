package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestChanges shows the change log and prunes it by hand.
func TestChanges(t *testing.T) {
	db := ctlDB(t)
	out := mustCtl(t, "changes", "--database", db)
	if !regexp.MustCompile(`(?m)^VERSION +ROWS +OLDEST +OLDEST AT +PRUNED THROUGH +PRUNED AT\n0 +0 +- +- +0 +-\n$`).MatchString(out) {
		t.Errorf("changes of an empty database:\n%s", out)
	}
	mustCtl(t, append([]string{"apply", "--database", db}, examples...)...)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Changes from a month ago, below the version the apply gave.
	if _, err := conn.Exec(ctx, `INSERT INTO changes (version, zone_id, at)
		SELECT (extract(epoch FROM now() - interval '30 days') * 1000000)::bigint + g, 1, now() - interval '30 days'
		FROM generate_series(1, 3) g`); err != nil {
		t.Fatal(err)
	}
	out = mustCtl(t, "changes", "--database", db)
	if !regexp.MustCompile(`(?m)^\d{16} +5 +\d{16} +\S+ +0 +-\n$`).MatchString(out) {
		t.Errorf("changes before the prune:\n%s", out)
	}

	tests := []struct {
		name string
		args []string
		code int
		out  string // a regexp for standard output
		err  string // a substring of standard error
	}{
		{"default window", []string{"changes", "prune"}, 0, `^pruned 3 rows; changes through version \d{16} are gone\n$`, ""},
		{"nothing left", []string{"changes", "prune", "--keep", "24h"}, 0, `^pruned 0 rows;`, ""},
		{"zero", []string{"changes", "prune", "--keep", "0s"}, 2, `^$`, "--keep must be positive, got 0s"},
		{"negative", []string{"changes", "prune", "--keep", "-1h"}, 2, `^$`, "--keep must be positive, got -1h0m0s"},
		{"not a duration", []string{"changes", "prune", "--keep", "week"}, 2, `^$`, `invalid argument "week"`},
		{"extra argument", []string{"changes", "prune", "now"}, 2, `^$`, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := ctl(t, append(tt.args, "--database", db)...)
			if code != tt.code || !regexp.MustCompile(tt.out).MatchString(out) || !strings.Contains(errOut, tt.err) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
		})
	}
	out = mustCtl(t, "changes", "--database", db)
	if !regexp.MustCompile(`(?m)^\d{16} +2 +\d{16} +\S+ +[1-9]\d{15} +\S+Z\n$`).MatchString(out) {
		t.Errorf("changes after the prune:\n%s", out)
	}
}

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestZoneStatus breaks zones by hand, as manual SQL edits can, and
// checks that "zones" and "check" show which zone is invalid and why,
// that "export" does not write a zone it cannot read whole, and that a
// fixed zone is ok again.
func TestZoneStatus(t *testing.T) {
	db := ctlDB(t)
	mustCtl(t, append([]string{"apply", "--database", db}, examples...)...)
	okRow := regexp.MustCompile(`(?m)^example\.net\.\s+.*\sok$`)
	if out := mustCtl(t, "zones", "--database", db); !strings.Contains(out, "STATUS") || !regexp.MustCompile(`(?m)^example\.com\.\s+.*\sok$`).MatchString(out) || !okRow.MatchString(out) {
		t.Errorf("zones of valid data:\n%s", out)
	}
	if out := mustCtl(t, "check", "--database", db); out != "example.com.: ok\nexample.net.: ok\n" {
		t.Errorf("check of valid data:\n%s", out)
	}

	tests := []struct {
		name   string
		breaks string
		reason string // in the status of example.com.
		fix    string
	}{
		{"a record that does not parse",
			"UPDATE records SET rdata = 'not-an-address' WHERE name = 'www.example.com.' AND type = 'A'",
			`invalid: postgres: zone example.com.: record www.example.com. A "not-an-address"`,
			"UPDATE records SET rdata = '192.0.2.10' WHERE name = 'www.example.com.' AND type = 'A'"},
		{"a CNAME beside other data",
			"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT zone_id, name, 'CNAME', 300, 'elsewhere.example.' FROM records WHERE name = 'www.example.com.' AND type = 'A'",
			"invalid: postgres:example.com.: CNAME and other data at www.example.com.",
			"DELETE FROM records WHERE name = 'www.example.com.' AND type = 'CNAME'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			execSQL(t, db, tc.breaks)
			out := mustCtl(t, "zones", "--database", db)
			row := regexp.MustCompile(`(?m)^example\.com\..*$`).FindString(out)
			if !strings.Contains(row, tc.reason) || !okRow.MatchString(out) {
				t.Errorf("zones: example.com. row %q, want it to say %q; the other zone ok:\n%s", row, tc.reason, out)
			}
			code, out, errOut := ctl(t, "check", "--database", db)
			if code != 1 || !strings.Contains(out, "example.com.: "+tc.reason) || !strings.Contains(out, "example.net.: ok\n") {
				t.Errorf("check: exit %d\n%s%s", code, out, errOut)
			}
			if code, out, _ := ctl(t, "check", "--database", db, "--zone", "example.net"); code != 0 || out != "example.net.: ok\n" {
				t.Errorf("check --zone example.net: exit %d\n%s", code, out)
			}
			execSQL(t, db, tc.fix)
			if code, out, errOut := ctl(t, "check", "--database", db); code != 0 {
				t.Errorf("check after the fix: exit %d\n%s%s", code, out, errOut)
			}
		})
	}

	// Export writes the zones it can read whole and says which it could not.
	execSQL(t, db, "UPDATE records SET rdata = 'not-an-address' WHERE name = 'www.example.com.' AND type = 'A'")
	dir := t.TempDir()
	code, out, errOut := ctl(t, "export", "--database", db, "-o", dir)
	if code != 1 || !strings.Contains(out, "example.net.yaml") || strings.Contains(out, "example.com.yaml") ||
		!strings.Contains(errOut, "zone example.com. not written: it cannot be read whole") {
		t.Errorf("export of a broken zone: exit %d\n%s%s", code, out, errOut)
	}
}

// execSQL runs a statement on the database at url.
func execSQL(t *testing.T, url, stmt string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// ctl runs meridianctl with args and returns its exit code and output.
func ctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustCtl runs meridianctl and fails the test unless it succeeds.
func mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := ctl(t, args...)
	if code != 0 {
		t.Fatalf("meridianctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// ctlDB returns the URL of a fresh database with the schema.
func ctlDB(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	return url
}

var examples = []string{"-f", "../../examples/example.com.zone", "-f", "../../examples/example.net.yaml"}

// TestApplyExport applies the examples with --dry-run and for real,
// exports them and applies the export, which changes nothing.
func TestApplyExport(t *testing.T) {
	db := ctlDB(t)
	out := mustCtl(t, append([]string{"apply", "--database", db, "--dry-run"}, examples...)...)
	for _, want := range []string{
		"+ zone example.com.\n+ example.com. 3600 IN SOA ",
		"+ zone example.net.\n",
		"+ endpoint www.example.net. 198.51.100.42 (eu-central, admin drain)\n",
		"88 added, 0 removed, 0 changed\n",
		"dry run: nothing applied (version 0)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply --dry-run output lacks %q:\n%s", want, out)
		}
	}
	if out := mustCtl(t, "zones", "--database", db); strings.Count(out, "\n") != 1 {
		t.Errorf("zones after a dry run:\n%s", out)
	}

	t.Setenv(envDatabase, db) // from here on, the environment names it
	// Versions come from the clock (store/postgres migration 007).
	applied := regexp.MustCompile(`applied: version (\d+)\n$`).FindStringSubmatch(mustCtl(t, append([]string{"apply"}, examples...)...))
	if applied == nil {
		t.Fatal("apply did not say which version it applied")
	}
	if out := mustCtl(t, append([]string{"apply"}, examples...)...); out != "no changes (version "+applied[1]+")\n" {
		t.Errorf("second apply output %q, want no changes at version %s", out, applied[1])
	}

	dir := t.TempDir()
	out = mustCtl(t, "export", "-o", dir)
	if want := fmt.Sprintf("wrote %s\nwrote %s\n", filepath.Join(dir, "example.com.yaml"), filepath.Join(dir, "example.net.yaml")); out != want {
		t.Errorf("export output %q, want %q", out, want)
	}
	exported, err := os.ReadFile(filepath.Join(dir, "example.net.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(exported), "health: down") {
		t.Error("the export holds health, which would override the checkers when applied")
	}
	if out := mustCtl(t, "apply", "-f", dir, "--prune", "--dry-run"); !strings.HasPrefix(out, "no changes (version") {
		t.Errorf("applying the export changes:\n%s", out)
	}

	one := t.TempDir()
	mustCtl(t, "export", "-o", one, "--zone", "example.com")
	if entries, _ := os.ReadDir(one); len(entries) != 1 || entries[0].Name() != "example.com.yaml" {
		t.Errorf("export --zone wrote %v", entries)
	}
	if code, _, errOut := ctl(t, "export", "-o", one, "--zone", "nope.example."); code != 1 || !strings.Contains(errOut, "no zone nope.example.") {
		t.Errorf("export of an unknown zone: exit %d, %q", code, errOut)
	}
}

// TestApplyRefusals checks the exit code and messages of refused and
// invalid applies, and that they change nothing.
func TestApplyRefusals(t *testing.T) {
	t.Setenv(envDatabase, ctlDB(t))
	mustCtl(t, append([]string{"apply"}, examples...)...)

	noPool := t.TempDir()
	src, err := os.ReadFile("../../examples/example.net.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	write(t, filepath.Join(noPool, "example.net.yaml"), text[:strings.Index(text, "\npools:")])
	code, out, errOut := ctl(t, "apply", "-f", noPool)
	if code != 1 || !strings.Contains(errOut, "deletes pool www.example.net. (18 endpoints)") || !strings.Contains(errOut, "--force") {
		t.Errorf("deleting a pool: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "- pool www.example.net.\n") {
		t.Errorf("a refusal should show the diff:\n%s", out)
	}

	bad := t.TempDir()
	write(t, filepath.Join(bad, "a.yaml"), strings.Replace(text, "datacenter: sa-east}", "datacenter: mars}", 1))
	write(t, filepath.Join(bad, "b.zone"), "$ORIGIN b.example.\n@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ 3600 IN NS ns1\nns1 3600 IN A 192.0.2.1\nwww 3600 IN CNAME ns1\nwww 3600 IN TXT \"beside\"\n")
	write(t, filepath.Join(bad, "notes.txt"), "not a zone: ignored in a directory")
	code, _, errOut = ctl(t, "apply", "-f", bad)
	if code != 1 {
		t.Errorf("invalid files: exit %d", code)
	}
	for _, want := range []string{"a.yaml:", `unknown datacenter "mars"`, "b.zone:6: CNAME and other data at www.b.example.", "Nothing was changed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("invalid files: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if out := mustCtl(t, "zones"); strings.Contains(out, "b.example.") || !regexp.MustCompile(`example.net.\s+2024060101\s+9\s+6\s+1\s+18`).MatchString(out) {
		t.Errorf("zones after refusals:\n%s", out)
	}
	if out := mustCtl(t, append([]string{"apply", "--dry-run"}, examples...)...); !strings.HasPrefix(out, "no changes (version") {
		t.Errorf("the database changed:\n%s", out)
	}
	if out := mustCtl(t, "apply", "-f", noPool, "--force"); !strings.Contains(out, "applied: version ") {
		t.Errorf("forced apply:\n%s", out)
	}
}

// TestAdmin drains and enables an endpoint and checks the listings and the
// audit log.
func TestAdmin(t *testing.T) {
	t.Setenv(envDatabase, ctlDB(t))
	mustCtl(t, append([]string{"apply"}, examples...)...)

	out := mustCtl(t, "drain", "--pool", "www.example.net.", "--address", "198.51.100.11", "--reason", "disk swap", "--actor", "alice")
	if out != "www.example.net. 198.51.100.11: active -> drain\n" {
		t.Errorf("drain output %q", out)
	}
	out = mustCtl(t, "endpoints", "--pool", "www.example.net")
	lines := strings.Split(out, "\n")
	if len(lines) != 20 || !strings.HasPrefix(lines[0], "POOL ") {
		t.Fatalf("endpoints listing:\n%s", out)
	}
	for _, re := range []string{
		`(?m)^www\.example\.net\.\s+198\.51\.100\.11\s+us-east\s+100\s+drain\s+unknown\s+no\s+\S+\s+admin: disk swap$`,
		`(?m)^www\.example\.net\.\s+198\.51\.100\.52\s+ap-southeast\s+100\s+active\s+down\s+no\s+\S+\s+health: zone file$`,
		`(?m)^www\.example\.net\.\s+198\.51\.100\.12\s+us-east\s+100\s+active\s+unknown\s+yes\s+`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("endpoints listing does not match %s:\n%s", re, out)
		}
	}
	if out := mustCtl(t, "pools"); !regexp.MustCompile(`www\.example\.net\.\s+30\s+4\s+nearest\s+fail_open\s+18\s+16\s+0\s+1\s+15\n`).MatchString(out) {
		t.Errorf("pools listing:\n%s", out)
	}

	code, _, errOut := ctl(t, "disable", "--pool", "www.example.net.", "--address", "198.51.100.12")
	if code != 2 || !strings.Contains(errOut, "--reason is required") {
		t.Errorf("disable without a reason: exit %d, %q", code, errOut)
	}
	code, _, errOut = ctl(t, "drain", "--pool", "www.example.net.", "--address", "203.0.113.1", "--reason", "x")
	if code != 1 || !strings.Contains(errOut, "pool www.example.net. has no endpoint 203.0.113.1") {
		t.Errorf("drain of an unknown endpoint: exit %d, %q", code, errOut)
	}
	t.Setenv("USER", "bob")
	if out := mustCtl(t, "enable", "--pool", "www.example.net.", "--address", "198.51.100.11"); out != "www.example.net. 198.51.100.11: drain -> active\n" {
		t.Errorf("enable output %q", out)
	}
	out = mustCtl(t, "audit", "--limit", "5")
	for _, re := range []string{`(?m)^AT\s+ACTOR`, `(?m)^\S+Z\s+bob\s+www\.example\.net\.\s+198\.51\.100\.11\s+drain -> active\s+-$`,
		`(?m)^\S+Z\s+alice\s+www\.example\.net\.\s+198\.51\.100\.11\s+active -> drain\s+disk swap$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("audit log does not match %s:\n%s", re, out)
		}
	}
	if strings.Index(out, "bob") > strings.Index(out, "alice") {
		t.Errorf("audit log not newest first:\n%s", out)
	}
	// The apply of the examples is in the log of configuration changes,
	// under the user who ran it, with its diff.
	out = mustCtl(t, "audit", "--changes", "--zone", "example.net")
	if !regexp.MustCompile(`(?m)^\S+Z  \S+  example\.net\.  version \d+\n    \+ zone example\.net\.\n(    \+ .*\n)+`).MatchString(out) || strings.Contains(out, "example.com.") {
		t.Errorf("audit --changes:\n%s", out)
	}
}

// TestDatabaseErrors checks the messages for a database that cannot be
// used.
func TestDatabaseErrors(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("postgres://postgres@%s/meridian?sslmode=disable&connect_timeout=5", l.Addr())
	l.Close()
	t.Setenv(envDatabase, "")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unreachable", []string{"zones", "--database", closed}, 1, []string{"meridianctl zones: postgres: connect:", l.Addr().String(), "refused"}},
		{"no schema", []string{"endpoints", "--database", pgtest.NewDB(t)}, 1, []string{"meridianctl endpoints: ", "no Meridian schema", "meridian migrate"}},
		{"no database", []string{"pools"}, 1, []string{"no database: give --database URL or set MERIDIAN_STORE_DATABASE"}},
		{"bad URL", []string{"audit", "--database", "postgres://x:y@[bad"}, 1, []string{"meridianctl audit: database URL:"}},
		{"apply without files", []string{"apply"}, 2, []string{"Usage: meridianctl apply"}},
		{"missing file", []string{"apply", "-f", "no-such-file.yaml", "--database", closed}, 1, []string{"no-such-file.yaml: no such file"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "Commands:"}},
		{"no command", nil, 2, []string{"Usage: meridianctl <command>"}},
		{"unexpected argument", []string{"zones", "extra"}, 2, []string{`unexpected argument "extra"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := ctl(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
	if code, out, _ := ctl(t, "--help"); code != 0 || !strings.Contains(out, "drain") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

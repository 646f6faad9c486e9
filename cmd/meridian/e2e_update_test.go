package main

// Dynamic updates (RFC 2136) with real nsupdate against the real binary:
// in zone-file mode an ACME DNS-01 TXT record added and deleted, a
// prerequisite that fails, a key outside its policy, a bad TSIG, an
// unsigned update, and the journal replayed by a restart; with
// PostgreSQL, a change reaching a second server.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

const (
	acmeSecret  = "YWNtZSBrZXkgb2YgdGhlIGUyZSB1cGRhdGUgdGVzdCE="
	otherSecret = "b3RoZXIga2V5IG9mIHRoZSBlMmUgdXBkYXRlIHRlc3Q="
)

// nsupdate runs nsupdate with key ("" for none) on script, sent to m,
// and returns its output and whether it succeeded.
func (m *meridian) nsupdate(t *testing.T, key, script string, tcp bool) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var args []string
	if key != "" {
		args = append(args, "-y", key)
	}
	if tcp {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, "nsupdate", args...)
	cmd.Stdin = strings.NewReader(fmt.Sprintf("server 127.0.0.1 %s\nzone example.com.\n%s\nsend\n", m.port, script))
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("nsupdate timed out: %s", out)
	}
	return string(out), err == nil
}

func TestE2EUpdate(t *testing.T) {
	requireDig(t)
	if _, err := exec.LookPath("nsupdate"); err != nil {
		t.Fatal("nsupdate not found: install bind9-dnsutils (scripts/test.sh does)")
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.com.zone")
	zone := `$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster 10 7200 3600 1209600 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
`
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`dns:
  listen: ["127.0.0.1:0"]
zones:
  files: [%q]
health:
  checks: false
transfer:
  tsig_keys:
    - {name: acme-key, algorithm: hmac-sha256, secret: %q}
    - {name: other-key, algorithm: hmac-sha256, secret: %q}
update:
  policy:
    - {key: acme-key, zones: [example.com.], names: [_acme-challenge, "*._acme-challenge"], types: [TXT]}
    - {key: other-key, zones: [example.com.], names: [host], types: [A]}
`, zoneFile, acmeSecret, otherSecret)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", confFile)
	acme := "hmac-sha256:acme-key:" + acmeSecret
	txt := func(r *digResult) []string { return data(r.Answer, "TXT") }
	serial := func() string {
		r := m.mustDig(t, "example.com", "SOA")
		if len(r.Answer) != 1 {
			t.Fatalf("no SOA:\n%s", r.Raw)
		}
		return strings.Fields(r.Answer[0].Data)[2]
	}

	// Add the challenge, over UDP; dig sees it and the serial is one up.
	if out, ok := m.nsupdate(t, acme, `update add _acme-challenge.example.com. 60 TXT "token-1"`, false); !ok {
		t.Fatalf("add: %s", out)
	}
	m.waitDig(t, "the TXT record is served", func(r *digResult) bool {
		return slices.Equal(txt(r), []string{`"token-1"`})
	}, "_acme-challenge.example.com", "TXT")
	if s := serial(); s != "11" {
		t.Errorf("serial after one update = %s, want 11", s)
	}

	// A prerequisite that fails (the RRset must not exist) changes
	// nothing: YXRRSET.
	out, ok := m.nsupdate(t, acme, "prereq nxrrset _acme-challenge.example.com. TXT\nupdate add _acme-challenge.example.com. 60 TXT \"token-2\"", false)
	if ok || !strings.Contains(out, "YXRRSET") {
		t.Errorf("nxrrset prerequisite on an existing RRset: ok=%v, want YXRRSET:\n%s", ok, out)
	}
	// One that holds, over TCP: the value-dependent prerequisite.
	out, ok = m.nsupdate(t, acme, "prereq yxrrset _acme-challenge.example.com. TXT \"token-1\"\nupdate add _acme-challenge.example.com. 60 TXT \"token-2\"", true)
	if !ok {
		t.Fatalf("yxrrset prerequisite that holds: %s", out)
	}
	m.waitDig(t, "both TXT records are served", func(r *digResult) bool {
		got := txt(r)
		slices.Sort(got)
		return slices.Equal(got, []string{`"token-1"`, `"token-2"`})
	}, "_acme-challenge.example.com", "TXT")

	// Outside the key's policy: another type, another name, another key's
	// name. REFUSED, nothing changes.
	for _, script := range []string{
		`update add _acme-challenge.example.com. 60 HINFO "pc" "linux"`,
		`update add www.example.com. 60 TXT "no"`,
		"update delete www.example.com. A",
	} {
		out, ok := m.nsupdate(t, acme, script, false)
		if ok || !strings.Contains(out, "REFUSED") {
			t.Errorf("%s: ok=%v, want REFUSED:\n%s", script, ok, out)
		}
	}
	// Unsigned: REFUSED. Bad secret: NOTAUTH.
	if out, ok := m.nsupdate(t, "", `update add _acme-challenge.example.com. 60 TXT "x"`, false); ok || !strings.Contains(out, "REFUSED") {
		t.Errorf("unsigned: ok=%v, want REFUSED:\n%s", ok, out)
	}
	if out, ok := m.nsupdate(t, "hmac-sha256:acme-key:"+otherSecret, `update add _acme-challenge.example.com. 60 TXT "x"`, false); ok || !strings.Contains(out, "NOTAUTH") {
		t.Errorf("bad secret: ok=%v, want NOTAUTH:\n%s", ok, out)
	}
	if s := serial(); s != "12" {
		t.Errorf("serial after two updates and refusals = %s, want 12", s)
	}
	if r := m.mustDig(t, "www.example.com", "A"); !slices.Equal(data(r.Answer, "A"), []string{"192.0.2.1"}) {
		t.Errorf("www changed:\n%s", r.Raw)
	}

	// The other key may add host A, and nothing else.
	if out, ok := m.nsupdate(t, "hmac-sha256:other-key:"+otherSecret, "update add host.example.com. 60 A 192.0.2.77", false); !ok {
		t.Fatalf("other key, host A: %s", out)
	}
	m.waitDig(t, "host A is served", func(r *digResult) bool {
		return slices.Equal(data(r.Answer, "A"), []string{"192.0.2.77"})
	}, "host.example.com", "A")

	// A restart replays the journal.
	m.stop(t)
	m = startMeridian(t, dir, nil, "--config", confFile)
	if r := m.mustDig(t, "_acme-challenge.example.com", "TXT"); len(txt(r)) != 2 {
		t.Errorf("after restart, TXT records:\n%s", r.Raw)
	}

	// Delete the challenge: dig no longer sees it.
	if out, ok := m.nsupdate(t, acme, "update delete _acme-challenge.example.com. TXT", false); !ok {
		t.Fatalf("delete: %s", out)
	}
	m.waitDig(t, "the TXT records are gone", func(r *digResult) bool {
		return r.Status == "NXDOMAIN"
	}, "_acme-challenge.example.com", "TXT")
	if s := serial(); s != "14" {
		t.Errorf("serial after four updates = %s, want 14", s)
	}
}

// TestE2EPostgresUpdate sends UPDATEs to one of two servers on one
// database: the other learns each change through the change log.
func TestE2EPostgresUpdate(t *testing.T) {
	requireDig(t)
	if _, err := exec.LookPath("nsupdate"); err != nil {
		t.Fatal("nsupdate not found: install bind9-dnsutils (scripts/test.sh does)")
	}
	url := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, meridianBinary(t), "migrate", "--database", url).CombinedOutput(); err != nil {
		t.Fatalf("meridian migrate: %v\n%s", err, out)
	}
	applyExamples(t, url, nil)
	dir := t.TempDir()
	conf := fmt.Sprintf(`transfer:
  tsig_keys:
    - {name: acme-key, algorithm: hmac-sha256, secret: %q}
update:
  policy:
    - {key: acme-key, zones: [example.com.], names: [_acme-challenge], types: [TXT]}
`, acmeSecret)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startMeridian(t, dir, nil, "--config", confFile, "--listen", "127.0.0.1:0", "--database", url)
	b := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	acme := "hmac-sha256:acme-key:" + acmeSecret
	q := []string{"_acme-challenge.example.com", "TXT"}

	if out, ok := a.nsupdate(t, acme, `update add _acme-challenge.example.com. 60 TXT "token-pg"`, false); !ok {
		t.Fatalf("add: %s", out)
	}
	for _, m := range []*meridian{a, b} {
		m.waitDig(t, "the TXT record is served", func(r *digResult) bool {
			return slices.Equal(data(r.Answer, "TXT"), []string{`"token-pg"`})
		}, q...)
	}
	out, ok := a.nsupdate(t, acme, "prereq nxdomain _acme-challenge.example.com.\nupdate add _acme-challenge.example.com. 60 TXT \"second\"", false)
	if ok || !strings.Contains(out, "YXDOMAIN") {
		t.Errorf("nxdomain prerequisite on a name in use: ok=%v, want YXDOMAIN:\n%s", ok, out)
	}
	if out, ok := a.nsupdate(t, acme, `update add www.example.com. 60 TXT "no"`, false); ok || !strings.Contains(out, "REFUSED") {
		t.Errorf("outside the policy: ok=%v, want REFUSED:\n%s", ok, out)
	}
	// In the database, as meridianctl sees it.
	exportDir := t.TempDir()
	meridianctl(t, url, "export", "--zone", "example.com.", "-o", exportDir)
	if export, err := os.ReadFile(filepath.Join(exportDir, "example.com.yaml")); err != nil || !strings.Contains(string(export), "token-pg") {
		t.Errorf("meridianctl export lacks the record (%v):\n%s", err, export)
	}
	if out, ok := a.nsupdate(t, acme, "update delete _acme-challenge.example.com. TXT", true); !ok {
		t.Fatalf("delete: %s", out)
	}
	for _, m := range []*meridian{a, b} {
		m.waitDig(t, "the TXT record is gone", func(r *digResult) bool {
			return len(data(r.Answer, "TXT")) == 0
		}, q...)
	}
}

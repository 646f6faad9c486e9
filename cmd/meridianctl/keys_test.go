package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store/postgres"
)

// TestKeys generates, lists and rolls keys end to end, and checks that
// the DS printed is the one of the key servers load.
func TestKeys(t *testing.T) {
	db := ctlDB(t)
	t.Setenv(envDatabase, db)
	mustCtl(t, append([]string{"apply"}, examples...)...)
	t.Setenv(envKeySecret, "")
	t.Setenv(envKeyOldSecrets, "")

	// No secret: refused before anything is written.
	code, _, errOut := ctl(t, "keys", "generate", "--zone", "example.com")
	if code != 1 || !strings.Contains(errOut, "no key secret: set MERIDIAN_STORE_KEY_SECRET") {
		t.Errorf("generate without a secret: exit %d, %q", code, errOut)
	}
	t.Setenv(envKeySecret, "not base64!")
	if code, _, errOut := ctl(t, "keys", "generate", "--zone", "example.com"); code != 1 || !strings.Contains(errOut, "MERIDIAN_STORE_KEY_SECRET: keyseal: the secret is not base64") {
		t.Errorf("generate with a bad secret: exit %d, %q", code, errOut)
	}
	if out := mustCtl(t, "keys", "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("refused generates left keys:\n%s", out)
	}

	secret := keyseal.NewSecret()
	t.Setenv(envKeySecret, secret)
	out := mustCtl(t, "keys", "generate", "--zone", "example.com", "--actor", "alice")
	m := regexp.MustCompile(`^example\.com\.: added CSK (\d+) \(ECDSAP256SHA256\)\napplied: version \d+\nDS for the parent: (example\.com\.\s+\d+\s+IN\s+DS\s+(\d+) 13 2 [0-9A-F]+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("generate output:\n%s", out)
	}
	if m[1] != m[3] {
		t.Errorf("the DS names key %s, the key is %s", m[3], m[1])
	}
	if ds := mustCtl(t, "keys", "ds", "--zone", "example.com."); ds != m[2]+"\n" {
		t.Errorf("keys ds = %q, generate printed %q", ds, m[2])
	}
	// The DS is the one of the key a server loads.
	ring, err := keyring()
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.New(postgres.Options{URL: db, Keys: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range d.Zones {
		if z.Origin == "example.com." {
			if z.Keys == nil || len(z.Keys.Keys) != 1 || z.Keys.Keys[0].DS().String() != m[2] {
				t.Errorf("the server loads keys %v (invalid %v), want the key of DS %s", z.Keys, z.Invalid, m[2])
			}
		}
	}

	if code, _, errOut := ctl(t, "keys", "generate", "--zone", "example.com"); code != 1 || !strings.Contains(errOut, "already has DNSSEC keys (CSK "+m[1]+"); use a rollover") {
		t.Errorf("a second generate: exit %d, %q", code, errOut)
	}
	if code, _, errOut := ctl(t, "keys", "generate", "--zone", "example.net", "--algorithm", "rsasha1"); code != 2 || !strings.Contains(errOut, "want ecdsap256sha256 or ed25519") {
		t.Errorf("generate with RSASHA1: exit %d, %q", code, errOut)
	}
	out = mustCtl(t, "keys", "generate", "--zone", "example.net", "--algorithm", "ed25519", "--split")
	if !regexp.MustCompile(`^example\.net\.: added KSK \d+ \(ED25519\)\nexample\.net\.: added ZSK \d+ \(ED25519\)\napplied: version \d+\nDS for the parent: example\.net\.\s.* 15 2 `).MatchString(out) {
		t.Errorf("generate --split output:\n%s", out)
	}

	out = mustCtl(t, "keys", "rollover", "start", "--zone", "example.com")
	next := regexp.MustCompile(`^example\.com\.: added CSK (\d+) `).FindStringSubmatch(out)
	if next == nil || !strings.Contains(out, "Replace the DS at the parent") {
		t.Fatalf("rollover start output:\n%s", out)
	}
	if ds := mustCtl(t, "keys", "ds", "--zone", "example.com"); strings.Count(ds, "\n") != 2 {
		t.Errorf("during a rollover, keys ds prints:\n%s", ds)
	}
	code, _, errOut = ctl(t, "keys", "rollover", "finish", "--zone", "example.com")
	if code != 1 || !strings.Contains(errOut, "rollover finished too soon: key "+next[1]+" has been published for") || !strings.Contains(errOut, "--force") {
		t.Errorf("finish at once: exit %d, %q", code, errOut)
	}
	if out := mustCtl(t, "keys", "rollover", "finish", "--zone", "example.com", "--force"); !strings.HasPrefix(out, "example.com.: retired CSK "+m[1]+"\napplied: version ") {
		t.Errorf("finish --force output:\n%s", out)
	}
	if code, _, errOut := ctl(t, "keys", "rollover", "start", "--zone", "example.net"); code != 1 || !strings.Contains(errOut, "say which to roll") {
		t.Errorf("rollover of a split pair without --role: exit %d, %q", code, errOut)
	}
	if out := mustCtl(t, "keys", "rollover", "start", "--zone", "example.net", "--role", "zsk"); !strings.Contains(out, "added ZSK") || !strings.Contains(out, "--role zsk) after ") {
		t.Errorf("ZSK rollover start:\n%s", out)
	}

	out = mustCtl(t, "keys", "list", "--all")
	for _, re := range []string{
		`(?m)^ZONE\s+TAG\s+ROLE\s+ALGORITHM\s+STATE\s+CREATED\s+RETIRED\s+SECRET$`,
		`(?m)^example\.com\.\s+` + next[1] + `\s+CSK\s+ECDSAP256SHA256\s+active\s+\S+Z\s+-\s+[0-9a-f]{8}$`,
		`(?m)^example\.com\.\s+` + m[1] + `\s+CSK\s+ECDSAP256SHA256\s+retired\s+\S+Z\s+\S+Z\s+[0-9a-f]{8}$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("keys list --all does not match %s:\n%s", re, out)
		}
	}
	if out := mustCtl(t, "keys", "list", "--zone", "example.net"); strings.Count(out, "\n") != 4 || strings.Contains(out, "example.com") {
		t.Errorf("keys list --zone example.net:\n%s", out)
	}
	out = mustCtl(t, "keys", "audit")
	for _, re := range []string{`(?m)^\S+Z\s+alice\s+example\.com\.\s+generate keys\s+added CSK ` + m[1], `(?m)finish rollover\s+retired CSK ` + m[1] + `$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("keys audit does not match %s:\n%s", re, out)
		}
	}

	// Rotating the secret: reseal with the new one, the old one beside it.
	t.Setenv(envKeyOldSecrets, secret)
	t.Setenv(envKeySecret, keyseal.NewSecret())
	if out := mustCtl(t, "keys", "reseal"); !regexp.MustCompile(`^5 keys resealed with secret [0-9a-f]{8}\n$`).MatchString(out) {
		t.Errorf("reseal output %q", out)
	}
	t.Setenv(envKeyOldSecrets, "")
	if out := mustCtl(t, "keys", "reseal"); !strings.HasPrefix(out, "0 keys resealed") {
		t.Errorf("a second reseal: %q", out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"keys"}, 2, "Usage: meridianctl keys <command>"},
		{[]string{"keys", "frob"}, 2, `unknown command "frob"`},
		{[]string{"keys", "rollover"}, 2, "Usage: meridianctl keys rollover start|finish"},
		{[]string{"keys", "ds"}, 2, "Usage: meridianctl keys ds --zone ZONE"},
		{[]string{"keys", "ds", "--zone", "nope.example"}, 1, "no zone nope.example."},
		{[]string{"keys", "rollover", "finish", "--zone", "example.com"}, 1, "no rollover in progress"},
	} {
		code, _, errOut := ctl(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

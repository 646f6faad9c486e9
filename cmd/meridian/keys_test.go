package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
)

// keysRun runs "meridian keys ARGS" and returns its exit code and output.
func keysRun(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"keys"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeysCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, out, errOut := keysRun("generate", "--dir", dir, "--zone", "Example.COM", "--ksk")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), filepath.Join(dir, "Kexample.com.+013+")) {
		t.Fatalf("generate --ksk: %d %q %q", code, out, errOut)
	}
	code, out, errOut = keysRun("generate", "--dir", dir, "--zone", "example.com", "--zsk")
	if code != 0 || errOut != "" {
		t.Fatalf("generate --zsk: %d %q %q", code, out, errOut)
	}
	backdate(t, strings.TrimSpace(out))
	if code, out, errOut = keysRun("generate", "--dir", dir, "--zone", "example.net", "--algorithm", "ED25519"); code != 0 {
		t.Fatalf("generate a CSK: %d %q %q", code, out, errOut)
	}

	code, out, _ = keysRun("list", "--dir", dir)
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, " KSK ") || !strings.Contains(out, " ZSK ") || !strings.Contains(out, " CSK ") || !strings.Contains(out, "ED25519") {
		t.Errorf("list:\n%s", out)
	}
	code, out, _ = keysRun("list", "--dir", dir, "--zone", "example.net.")
	if code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "example.com") {
		t.Errorf("list --zone example.net.:\n%s", out)
	}

	code, out, _ = keysRun("ds", "--dir", dir, "--zone", "example.com")
	rr, err := dns.NewRR(strings.TrimSpace(out))
	if code != 0 || err != nil {
		t.Fatalf("ds: %d %q %v", code, out, err)
	}
	kfs, _ := signing.ReadKeyDir(dir)
	var ksk *signing.KeyFile
	for _, kf := range kfs {
		if kf.DNSKEY.Hdr.Name == "example.com." && kf.KSK() {
			ksk = kf
		}
	}
	if ds, ok := rr.(*dns.DS); !ok || ds.KeyTag != ksk.Tag() || ds.DigestType != dns.SHA256 || !strings.EqualFold(ds.Digest, ksk.DS().Digest) {
		t.Errorf("ds printed %s, want the SHA-256 DS of key %d", rr, ksk.Tag())
	}

	// A rollover of the ZSK: start, refused twice, finish.
	if code, _, errOut = keysRun("rollover", "start", "--dir", dir, "--zone", "example.com"); code != 2 || !strings.Contains(errOut, "give --ksk or --zsk") {
		t.Errorf("rollover without a role in a KSK+ZSK zone: %d %q", code, errOut)
	}
	if code, out, errOut = keysRun("rollover", "start", "--dir", dir, "--zone", "example.com", "--zsk"); code != 0 {
		t.Fatalf("rollover start: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = keysRun("rollover", "start", "--dir", dir, "--zone", "example.com", "--zsk"); code != 1 || !strings.Contains(errOut, "under way") {
		t.Errorf("second rollover start: %d %q", code, errOut)
	}
	if code, _, errOut = keysRun("rollover", "finish", "--dir", dir, "--zone", "example.com", "--zsk"); code != 1 || !strings.Contains(errOut, "old") {
		t.Errorf("early rollover finish: %d %q", code, errOut)
	}
	code, out, errOut = keysRun("rollover", "finish", "--dir", dir, "--zone", "example.com", "--zsk", "--min-age", "0")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), filepath.Join(dir, signing.RetiredDir)) {
		t.Fatalf("rollover finish: %d %q %q", code, out, errOut)
	}
	// The CSK zone needs no role flag.
	if code, out, errOut = keysRun("rollover", "start", "--dir", dir, "--zone", "example.net"); code != 0 || !strings.Contains(errOut, "publish the new DS") {
		t.Errorf("CSK rollover start: %d %q %q", code, out, errOut)
	}
	if kfs, _ := signing.ReadKeyDir(dir); len(kfs) != 4 {
		t.Errorf("%d keys after the rollovers, want 4 (KSK, new ZSK, two CSKs)", len(kfs))
	}
}

// backdate makes the key whose files are base a day older, so that a
// rollover in the same second can tell it from its successor.
func backdate(t *testing.T, base string) {
	t.Helper()
	b, err := os.ReadFile(base + ".private")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "Created: "); ok {
			c, err := time.Parse("20060102150405", v)
			if err != nil {
				t.Fatal(err)
			}
			lines[i] = "Created: " + c.Add(-24*time.Hour).Format("20060102150405")
		}
	}
	if err := os.WriteFile(base+".private", []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeysCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: meridian keys"},
		{[]string{"frob"}, 2, "unknown command"},
		{[]string{"generate", "--zone", "example.com"}, 2, "--dir is required"},
		{[]string{"generate", "--dir", dir}, 2, "--zone is required"},
		{[]string{"generate", "--dir", dir, "--zone", "exa mple..com"}, 2, "not a domain name"},
		{[]string{"generate", "--dir", dir, "--zone", "example.com", "--algorithm", "rsasha256"}, 2, "not supported"},
		{[]string{"generate", "--dir", dir, "--zone", "example.com", "--ksk", "--zsk"}, 2, "give one of"},
		{[]string{"generate", "--dir", dir, "--zone", "example.com", "extra"}, 2, "unexpected argument"},
		{[]string{"generate", "--bogus"}, 2, "bogus"},
		{[]string{"ds", "--dir", dir, "--zone", "example.com"}, 1, "has no key signing key"},
		{[]string{"list", "--dir", filepath.Join(dir, "none")}, 1, "none"},
		{[]string{"list", "--dir", dir, "--zone", "example.com"}, 1, "no keys for example.com."},
		{[]string{"rollover"}, 2, "start|finish"},
		{[]string{"rollover", "begin"}, 2, "start|finish"},
		{[]string{"rollover", "start", "--dir", dir, "--zone", "example.com"}, 2, "has no keys"},
	}
	for _, tc := range tests {
		code, _, errOut := keysRun(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("keys %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	// A key directory with a broken key: every command names the file.
	if code, out, _ := keysRun("generate", "--dir", dir, "--zone", "example.com"); code != 0 {
		t.Fatal(out)
	}
	kfs, _ := signing.ReadKeyDir(dir)
	os.Remove(kfs[0].PublicFile())
	for _, args := range [][]string{{"list", "--dir", dir}, {"ds", "--dir", dir, "--zone", "example.com"}, {"generate", "--dir", dir, "--zone", "example.com"}} {
		if code, _, errOut := keysRun(args...); code != 1 || !strings.Contains(errOut, kfs[0].PrivateFile()) {
			t.Errorf("keys %v with a lone .private: exit %d, %q", args, code, errOut)
		}
	}
	if code, out, _ := keysRun("--help"); code != 0 || !strings.Contains(out, "rollover") {
		t.Errorf("keys --help: %d %q", code, out)
	}
}

func TestCheckKeyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "good.zone"), []byte(checkGoodZone), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("zones:\n  files: [good.zone]\ndnssec:\n  key_dir: keys\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := keysRun("generate", "--dir", filepath.Join(dir, "keys"), "--zone", "good.example"); code != 0 {
		t.Fatal(out, errOut)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"check", "--config", cfg}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "signed with 1 keys") {
		t.Errorf("check: %d %q %q", code, out.String(), errOut.String())
	}
	kfs, _ := signing.ReadKeyDir(filepath.Join(dir, "keys"))
	os.WriteFile(kfs[0].PrivateFile(), []byte("Private-key-format: v1.3\n"), 0o600)
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"check", "--config", cfg}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), kfs[0].PrivateFile()) {
		t.Errorf("check with a broken key: %d %q %q", code, out.String(), errOut.String())
	}
}

package signing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func writeKey(t *testing.T, dir, zone string, alg uint8, flags uint16, now time.Time) *KeyFile {
	t.Helper()
	kf, err := WriteKeyFiles(dir, mustKey(t, zone, alg, flags), now)
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

func TestKeyDirRoundTrip(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	ksk := writeKey(t, dir, "example.com.", dns.ECDSAP256SHA256, FlagKSK, now)
	zsk := writeKey(t, dir, "example.com.", dns.ECDSAP256SHA256, FlagZSK, now.Add(time.Minute))
	csk := writeKey(t, dir, "Example.NET", dns.ED25519, FlagKSK, now)
	// Other files and retired keys are not read.
	os.WriteFile(filepath.Join(dir, "README"), []byte("keys"), 0o644)
	os.Mkdir(filepath.Join(dir, RetiredDir), 0o700)
	if _, err := WriteKeyFiles(filepath.Join(dir, RetiredDir), mustKey(t, "example.com.", dns.ECDSAP256SHA256, FlagKSK), now); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(ksk.PrivateFile()); st.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", ksk.PrivateFile(), st.Mode())
	}

	all, err := ReadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	by := ByZone(all)
	if len(all) != 3 || len(by["example.com."]) != 2 || len(by["example.net."]) != 1 {
		t.Fatalf("read %d keys by zone %v", len(all), by)
	}
	for _, want := range []*KeyFile{ksk, zsk, csk} {
		var got *KeyFile
		for _, kf := range all {
			if kf.Tag() == want.Tag() {
				got = kf
			}
		}
		if got == nil || got.Base != want.Base || !got.Created.Equal(want.Created) || got.DNSKEY.PublicKey != want.DNSKEY.PublicKey {
			t.Errorf("key %s read back as %+v", want.Base, got)
		}
	}
	roles := map[uint16]string{}
	for z, kfs := range by {
		for _, kf := range kfs {
			roles[kf.Tag()] = Role(kf.Key, Keys(by[z]))
		}
	}
	if roles[ksk.Tag()] != "KSK" || roles[zsk.Tag()] != "ZSK" || roles[csk.Tag()] != "CSK" {
		t.Errorf("roles %v", roles)
	}
	if err := CheckAlgorithms(by["example.com."]); err != nil {
		t.Error(err)
	}
	if err := CheckAlgorithms([]*KeyFile{ksk, csk}); err == nil || !strings.Contains(err.Error(), "one algorithm") {
		t.Errorf("mixed algorithms: %v", err)
	}
	if _, err := WriteKeyFiles(dir, ksk.Key, now); err == nil {
		t.Error("existing key files overwritten")
	}
}

// A .key file as dnssec-keygen writes it, with comments and no TTL.
func TestReadBINDKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t, "example.org.", dns.ECDSAP256SHA256, FlagKSK)
	rr := k.DNSKEY.String()
	// "example.org.\t3600\tIN\tDNSKEY\t..." without the TTL.
	f := strings.Split(rr, "\t")
	public := "; This is a key-signing key, keyid 1, for example.org.\n; Created: 20260101000000 (Thu Jan  1 00:00:00 2026)\n; Publish: 20260101000000\n" + f[0] + " IN DNSKEY " + strings.Join(f[4:], " ") + "\n"
	private := k.PrivateString() + "Created: 20260101000000\nPublish: 20260101000000\nActivate: 20260101000000\n"
	base := filepath.Join(dir, k.FileBase())
	os.WriteFile(base+".key", []byte(public), 0o644)
	os.WriteFile(base+".private", []byte(private), 0o600)
	kf, err := ReadKeyFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if kf.Tag() != k.Tag() || !kf.Created.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("read tag %d created %v", kf.Tag(), kf.Created)
	}
}

func TestKeyDirErrors(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string, kf, other *KeyFile)
		want  string // in the error, with %s for kf's base
	}{
		{"no private file", func(t *testing.T, dir string, kf, _ *KeyFile) {
			os.Remove(kf.PrivateFile())
		}, "%s.key has no private key"},
		{"no public file", func(t *testing.T, dir string, kf, _ *KeyFile) {
			os.Remove(kf.PublicFile())
		}, "%s.private has no public key file"},
		{"another key's private half", func(t *testing.T, dir string, kf, other *KeyFile) {
			b, _ := os.ReadFile(other.PrivateFile())
			os.WriteFile(kf.PrivateFile(), b, 0o600)
		}, "%s.private: the private key is not the one of the DNSKEY"},
		{"broken private file", func(t *testing.T, dir string, kf, _ *KeyFile) {
			os.WriteFile(kf.PrivateFile(), []byte("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: !!!\n"), 0o600)
		}, "%s.private: private key"},
		{"empty public file", func(t *testing.T, dir string, kf, _ *KeyFile) {
			os.WriteFile(kf.PublicFile(), []byte("; nothing\n"), 0o644)
		}, "%s.key: no DNSKEY record"},
		{"files of another key", func(t *testing.T, dir string, kf, other *KeyFile) {
			for _, ext := range []string{".key", ".private"} {
				b, _ := os.ReadFile(other.Base + ext)
				os.WriteFile(kf.Base+ext, b, 0o600)
			}
		}, "%s.key: holds key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			kf := writeKey(t, dir, "example.com.", dns.ECDSAP256SHA256, FlagKSK, now)
			other := writeKey(t, t.TempDir(), "example.com.", dns.ECDSAP256SHA256, FlagKSK, now)
			tc.spoil(t, dir, kf, other)
			_, err := ReadKeyDir(dir)
			want := strings.ReplaceAll(tc.want, "%s", kf.Base)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ReadKeyDir: %v, want an error with %q", err, want)
			}
		})
	}
	if _, err := ReadKeyDir(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing directory read")
	}
}

func TestRollover(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	ksk := writeKey(t, dir, "example.com.", dns.ED25519, FlagKSK, t0)
	zsk := writeKey(t, dir, "example.com.", dns.ED25519, FlagZSK, t0)

	if _, err := FinishRollover(dir, "example.com.", "ZSK", t0, 0); err == nil || !strings.Contains(err.Error(), "no rollover to finish") {
		t.Errorf("finish without a start: %v", err)
	}
	if _, err := StartRollover(dir, "example.com.", "CSK", t0); err == nil || !strings.Contains(err.Error(), "no CSK key") {
		t.Errorf("CSK rollover of a KSK+ZSK zone: %v", err)
	}
	t1 := t0.Add(24 * time.Hour)
	r, err := StartRollover(dir, "example.com.", "zsk", t1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Old.Tag() != zsk.Tag() || r.New.DNSKEY.Flags != FlagZSK || r.New.DNSKEY.Algorithm != dns.ED25519 {
		t.Errorf("rollover %d -> %s", r.Old.Tag(), r.New)
	}
	if _, err := StartRollover(dir, "example.com.", "ZSK", t1); err == nil || !strings.Contains(err.Error(), "under way") {
		t.Errorf("second start: %v", err)
	}
	all, _ := ReadKeyDir(dir)
	if len(all) != 3 {
		t.Fatalf("%d keys during the rollover, want 3", len(all))
	}
	ks, err := NewKeyset("example.com.", Keys(all), DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	a := &dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}}
	if sigs, _ := ks.Sign([]dns.RR{a}, 0, 1); len(sigs) != 2 {
		t.Errorf("%d signatures during a ZSK rollover, want 2 (double signature)", len(sigs))
	}

	if _, err := FinishRollover(dir, "example.com.", "ZSK", t1.Add(time.Minute), time.Hour); err == nil || !strings.Contains(err.Error(), "only 1m0s old") {
		t.Errorf("early finish: %v", err)
	}
	r, err = FinishRollover(dir, "example.com.", "ZSK", t1.Add(2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Old.Tag() != zsk.Tag() || filepath.Dir(r.Old.Base) != filepath.Join(dir, RetiredDir) {
		t.Errorf("retired %s, want %d in retired/", r.Old.Base, zsk.Tag())
	}
	all, _ = ReadKeyDir(dir)
	if len(all) != 2 || (all[0].Tag() != ksk.Tag() && all[1].Tag() != ksk.Tag()) {
		t.Errorf("keys after the rollover: %v", all)
	}
	if _, err := os.Stat(r.Old.PrivateFile()); err != nil {
		t.Errorf("retired private key: %v", err)
	}

	// A rollover started within the second its predecessor was made
	// stamps the successor a second later, so finishing it retires the
	// predecessor.
	r, err = StartRollover(dir, "example.com.", "KSK", t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Second); !r.New.Created.Equal(want) {
		t.Errorf("successor made at %s, want %s", r.New.Created, want)
	}
	if r, err = FinishRollover(dir, "example.com.", "KSK", t1.Add(2*time.Hour), time.Hour); err != nil || r.Old.Tag() != ksk.Tag() {
		t.Fatalf("finish of a rollover started in its predecessor's second: %v", err)
	}

	// Two keys of one role made in one second by other means: which one
	// is old cannot be told.
	writeKey(t, dir, "example.com.", dns.ED25519, FlagKSK, r.New.Created)
	if _, err := FinishRollover(dir, "example.com.", "KSK", t1.Add(2*time.Hour), time.Hour); err == nil || !strings.Contains(err.Error(), "same second") {
		t.Errorf("finish with keys of one second: %v", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]uint8{"ecdsap256sha256": 13, "ED25519": 15, "13": 13, "15": 15} {
		if got, err := ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"rsasha256", "8", "", "300"} {
		if _, err := ParseAlgorithm(in); err == nil {
			t.Errorf("ParseAlgorithm(%q) accepted", in)
		}
	}
}

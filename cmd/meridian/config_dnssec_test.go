package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/signing"
)

// TestConfigDNSSEC checks the dnssec section: defaults, a key directory
// relative to the config file, the environment, and the refused values.
func TestConfigDNSSEC(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	c, err := parseConfig(t, "--zone-file", "a.zone")
	if err != nil {
		t.Fatal(err)
	}
	if c.DNSSEC.KeyDir != "" || c.DNSSEC.policy() != signing.DefaultPolicy() {
		t.Errorf("defaults: %+v, want no key directory and the default policy", c.DNSSEC)
	}

	good := write("good.yaml", "zones:\n  files: [a.zone]\ndnssec:\n  key_dir: keys\n  signature_validity: 72h\n  signature_refresh: 24h\n")
	c, err = parseConfig(t, "--config", good)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "keys"); c.DNSSEC.KeyDir != want {
		t.Errorf("key_dir = %q, want %q (relative to the config file)", c.DNSSEC.KeyDir, want)
	}
	if p := c.DNSSEC.policy(); p.Validity != 72*time.Hour || p.Refresh != 24*time.Hour || p.RefreshAt(time.Unix(0, 0)) != time.Unix(0, 0).Add(48*time.Hour) {
		t.Errorf("policy %+v, want 72h valid, made again after 48h", p)
	}
	t.Setenv("MERIDIAN_DNSSEC_KEY_DIR", "elsewhere")
	if c, err = parseConfig(t, "--config", good); err != nil || c.DNSSEC.KeyDir != "elsewhere" {
		t.Errorf("key_dir from the environment = %q, %v; want elsewhere, as written", c.DNSSEC.KeyDir, err)
	}
	t.Setenv("MERIDIAN_DNSSEC_KEY_DIR", "")

	for _, tc := range []struct{ text, want string }{
		{"store:\n  database: postgres://db/x\ndnssec:\n  key_dir: keys\n", "dnssec.key_dir is set with store.database"},
		{"zones:\n  files: [a.zone]\ndnssec:\n  signature_validity: 24h\n  signature_refresh: 48h\n", "the refresh shorter than it"},
		{"zones:\n  files: [a.zone]\ndnssec:\n  signature_validity: 30m\n  signature_refresh: 10m\n", "at least an hour"},
		{"zones:\n  files: [a.zone]\ndnssec:\n  signature_validity: 1209600\n", "dnssec.signature_validity: 1.2096ms is less than a second"},
		{"zones:\n  files: [a.zone]\ndnssec:\n  key_dirr: keys\n", "key_dirr"},
	} {
		p := write("bad.yaml", tc.text)
		if _, err := parseConfig(t, "--config", p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.text, err, tc.want)
		}
	}
}

package main

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/dnsserver"
)

// parseConfig runs loadConfig on args as "meridian serve" would.
func parseConfig(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	fs := newServeFlags()
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse flags %q: %v", args, err)
	}
	return loadConfig(fs)
}

func TestLoadConfig(t *testing.T) {
	def := dnsserver.DefaultConfig()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c *config)
	}{
		{
			name: "flags only",
			args: []string{"--listen", "127.0.0.1:5399", "--zone-file", "a.zone", "--zone-file", "b.zone"},
			check: func(t *testing.T, c *config) {
				eq(t, "listen", c.DNS.Listen, []string{"127.0.0.1:5399"})
				eq(t, "files", c.Zones.Files, []string{"a.zone", "b.zone"})
				eq(t, "idle timeout", c.DNS.TCPIdleTimeout, def.TCPIdleTimeout)
				eq(t, "max conns", c.DNS.TCPMaxConnections, def.TCPMaxConns)
				eq(t, "log", c.Log, logConfig{Level: "info", Format: "text"})
				eq(t, "change log retention", c.Store.ChangeLogRetention, 168*time.Hour)
			},
		},
		{
			name: "change log pruning off",
			args: []string{"--database", "postgres://db.internal/meridian"},
			env:  map[string]string{"MERIDIAN_STORE_CHANGE_LOG_RETENTION": "0"},
			check: func(t *testing.T, c *config) {
				eq(t, "change log retention", c.Store.ChangeLogRetention, time.Duration(0))
			},
		},
		{
			name: "default listen",
			args: []string{"--zone-file", "a.zone"},
			check: func(t *testing.T, c *config) {
				eq(t, "listen", c.DNS.Listen, def.Listen)
			},
		},
		{
			name: "repeated listen",
			args: []string{"--listen", "127.0.0.1:1", "--listen", "[::1]:2", "--zone-file", "a.zone"},
			check: func(t *testing.T, c *config) {
				eq(t, "listen", c.DNS.Listen, []string{"127.0.0.1:1", "[::1]:2"})
			},
		},
		{
			name: "config file",
			args: []string{"--config", "testdata/good.yaml"},
			check: func(t *testing.T, c *config) {
				eq(t, "server", c.server(), dnsserver.Config{
					Listen:         []string{"127.0.0.1:5300", "127.0.0.2:5300"},
					NSID:           "file-nsid",
					UDPWorkers:     2,
					TCPIdleTimeout: 30 * time.Second,
					TCPMaxConns:    50,
					TCPMaxQueries:  100,
					RRL: dnsserver.RRLConfig{
						ResponsesPerSecond: 15, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1 << 16,
						Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
					},
					SignatureCache: dnsserver.DefaultSignatureCache,
				})
				// Relative to the config file's directory.
				eq(t, "files", c.Zones.Files, []string{filepath.Join("testdata", "zones", "a.zone"), "/abs/b.yaml"})
				eq(t, "log", c.Log, logConfig{Level: "debug", Format: "json"})
			},
		},
		{
			name: "env overrides file",
			args: []string{"--config", "testdata/good.yaml"},
			env: map[string]string{
				"MERIDIAN_DNS_NSID":             "env-nsid",
				"MERIDIAN_DNS_TCP_IDLE_TIMEOUT": "3s",
				"MERIDIAN_DNS_LISTEN":           "127.0.0.9:1,127.0.0.9:2",
				"MERIDIAN_LOG_LEVEL":            "warn",
			},
			check: func(t *testing.T, c *config) {
				eq(t, "nsid", c.DNS.NSID, "env-nsid")
				eq(t, "idle timeout", c.DNS.TCPIdleTimeout, 3*time.Second)
				eq(t, "listen", c.DNS.Listen, []string{"127.0.0.9:1", "127.0.0.9:2"})
				eq(t, "level", c.Log.Level, "warn")
				eq(t, "udp workers", c.DNS.UDPWorkers, 2)
			},
		},
		{
			name: "flags override env and file",
			args: []string{"--config", "testdata/good.yaml", "--nsid", "flag-nsid", "--listen", "127.0.0.1:7", "--log-format", "text"},
			env:  map[string]string{"MERIDIAN_DNS_NSID": "env-nsid"},
			check: func(t *testing.T, c *config) {
				eq(t, "nsid", c.DNS.NSID, "flag-nsid")
				eq(t, "listen", c.DNS.Listen, []string{"127.0.0.1:7"})
				eq(t, "format", c.Log.Format, "text")
			},
		},
		{
			name: "zone files from flags are relative to the working directory",
			args: []string{"--config", "testdata/good.yaml", "--zone-file", "x.zone"},
			check: func(t *testing.T, c *config) {
				eq(t, "files", c.Zones.Files, []string{"x.zone"})
			},
		},
		{
			name: "zone files from env",
			args: []string{"--config", "testdata/good.yaml"},
			env:  map[string]string{"MERIDIAN_ZONES_FILES": "x.zone,y.yaml"},
			check: func(t *testing.T, c *config) {
				eq(t, "files", c.Zones.Files, []string{"x.zone", "y.yaml"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := parseConfig(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// TestBadConfigs pairs each testdata/*.bad.yaml with a substring of the
// error it must give.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown-key.bad.yaml", "nsidd"},
		{"unknown-section.bad.yaml", "geoip"},
		{"bad-duration.bad.yaml", "dns.tcp_idle_timeout"},
		{"bad-listen.bad.yaml", "must be an IP address"},
		{"bad-log-format.bad.yaml", `log.format: want text or json, got "xml"`},
		{"bad-log-level.bad.yaml", `log.level`},
		{"bad-rrl-exempt.bad.yaml", `dns.rrl.exempt: "192.0.2.1/40" is not a network`},
		{"bad-rrl-slip.bad.yaml", `rrl slip`},
		{"bad-cookie-secret.bad.yaml", `dns.cookies.secret: a cookie secret is 32 hexadecimal digits`},
		{"cookie-accept-without-secret.bad.yaml", `dns.cookies.accept_secrets: set dns.cookies.secret too`},
		{"bare-duration.bad.yaml", `store.poll_interval: 5ns is less than a millisecond`},
		{"negative-retention.bad.yaml", `store.change_log_retention: must not be negative (0 turns pruning off), got -24h0m0s`},
		{"bad-key-secret.bad.yaml", `store.key_secret: keyseal: the secret is 12 octets, want 32`},
		{"key-secret-without-database.bad.yaml", `store.key_secret is set without store.database`},
		{"no-zones.bad.yaml", "no zone files"},
		{"transfer-allow-anyone.bad.yaml", "transfer: allow rule 1 names neither addresses nor keys"},
		{"transfer-bad-from.bad.yaml", "transfer.allow[0].from"},
		{"transfer-unknown-key.bad.yaml", "notify entry 1 names TSIG key k2, which is not defined"},
		{"transfer-bad-algorithm.bad.yaml", `algorithm "hmac-md5" is not hmac-sha256 or hmac-sha512`},
		{"secondary-unknown-key.bad.yaml", "secondary: zone example.net. names TSIG key nokey, which is not defined"},
		{"secondary-bad-primary.bad.yaml", `secondary: zone example.net.: primary "192.0.2.10" is not IP:port`},
		{"not-yaml.bad.yaml", "not-yaml.bad.yaml"},
		{"does-not-exist.yaml", "does-not-exist.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := parseConfig(t, "--config", path)
			if err == nil {
				t.Fatal("loadConfig succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file %q", err, path)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--zone-file", "a.zone", "--listen", "nope"}, "nope"},
		{[]string{"--zone-file", "a.zone", "--log-format", "xml"}, "log.format"},
		{[]string{"--listen", "127.0.0.1:53"}, "no zone files"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseConfig(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadConfig = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestConfigWarnings checks that a misspelt MERIDIAN_ variable, which
// would otherwise be ignored without a word, is reported.
func TestConfigWarnings(t *testing.T) {
	t.Setenv("MERIDIAN_DNS_NSDI", "typo")
	t.Setenv("MERIDIAN_DNS_NSID", "fine")
	c, err := parseConfig(t, "--zone-file", "a.zone")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 1 || !strings.Contains(c.warnings[0], "MERIDIAN_DNS_NSDI") {
		t.Errorf("warnings %q, want one about MERIDIAN_DNS_NSDI", c.warnings)
	}
	if c.DNS.NSID != "fine" {
		t.Errorf("nsid %q from the environment", c.DNS.NSID)
	}
}

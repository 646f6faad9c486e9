package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkGoodZone = `$ORIGIN good.example.
$TTL 300
@   SOA ns1 hostmaster 1 7200 3600 1209600 60
@   NS  ns1
ns1 A   192.0.2.1
`

const checkPoolZone = `origin: pools.example.
ttl: 300
soa: {ns: ns1, mbox: hostmaster, serial: 1, refresh: 7200, retry: 3600, expire: 1209600, minimum: 60}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.1}
datacenters:
  - {name: ams, lat: 52.37, lon: 4.90}
pools:
  - name: www
    endpoints:
      - {address: 192.0.2.10, datacenter: ams}
      - {address: 192.0.2.11, datacenter: nowhere}
`

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.zone", checkGoodZone)
	syntax := write("syntax.zone", checkGoodZone+"www A 999.1.1.1\n")
	pool := write("pool.yaml", checkPoolZone)
	twice := write("twice.zone", checkGoodZone)
	noSOA := write("nosoa.zone", "$ORIGIN x.example.\n$TTL 60\n@ NS ns1\n")
	cfgGood := write("good.yaml", "zones:\n  files: [good.zone]\n")
	cfgBadKey := write("badkey.yaml", "zones:\n  files: [good.zone]\ndns:\n  lisen: [\"127.0.0.1:53\"]\n")
	cfgMissing := write("missing.yaml", "zones:\n  files: [absent.zone]\n")
	write("corrupt.mmdb", "not a database")
	cfgGeo := write("geo.yaml", "zones:\n  files: [good.zone]\ngeo:\n  database: corrupt.mmdb\n")

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
		stderr []string
	}{
		{"good files", []string{good, good}, 0, []string{"zone good.example.: 3 records", "OK"}, nil},
		{"syntax error with line", []string{good, syntax}, 1, []string{"good.zone: zone good.example."}, []string{syntax + ":6:", "1 problem(s)"}},
		{"pool with unknown datacenter", []string{pool}, 1, nil, []string{pool + `:13: pool www.pools.example.: endpoint 192.0.2.11: unknown datacenter "nowhere"`}},
		{"zone defined twice", []string{good, twice}, 1, nil, []string{"defined twice"}},
		{"no SOA", []string{noSOA}, 1, nil, []string{"nosoa.zone", "SOA"}},
		{"missing file", []string{filepath.Join(dir, "absent.zone")}, 1, nil, []string{"absent.zone", "no such file"}},
		{"config and its zones", []string{"--config", cfgGood}, 0, []string{cfgGood + ": valid", "zone good.example.", "OK"}, nil},
		{"config and extra files", []string{"--config", cfgGood, pool}, 1, []string{"zone good.example."}, []string{"nowhere"}},
		{"unknown config key", []string{"--config", cfgBadKey}, 1, nil, []string{"lisen"}},
		{"config naming a missing zone file", []string{"--config", cfgMissing}, 1, []string{cfgMissing + ": valid"}, []string{"absent.zone"}},
		{"corrupt GeoIP database", []string{"--config", cfgGeo}, 1, nil, []string{"corrupt.mmdb"}},
		{"bad flag", []string{"--no-such-flag"}, 2, nil, []string{"unknown flag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"check"}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, s := range tc.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
			if code != 0 && strings.Contains(out.String(), "\nOK") {
				t.Error("OK printed despite problems")
			}
		})
	}
}

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/geo/geotest"
)

// dcOfExample maps the example pool's addresses to their datacenters
// (examples/example.net.yaml: 198.51.100.N1 and ::N1 are datacenter N).
func dcOfExample(addr string) string {
	names := map[string]string{"1": "us-east", "2": "us-west", "3": "eu-west", "4": "eu-central", "5": "ap-southeast", "6": "sa-east"}
	i := strings.LastIndexAny(addr, ".:")
	if i < 0 || len(addr) < i+3 {
		return "?" + addr
	}
	if dc, ok := names[addr[i+1:i+2]]; ok {
		return dc
	}
	return "?" + addr
}

// TestE2EPools runs the example configuration with a GeoIP database and
// asks for the example pool with dig, as the README does.
func TestE2EPools(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	db := filepath.Join(dir, "city.mmdb")
	if err := geotest.Write(db, geotest.World); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, []string{"MERIDIAN_GEO_RELOAD_INTERVAL=100ms"},
		"--listen", "127.0.0.1:0",
		"--zone-file", filepath.Join(dir, "example.com.zone"),
		"--zone-file", filepath.Join(dir, "example.net.yaml"),
		"--geoip", db)
	m.waitDig(t, "server answers", isNOERROR, "www.example.net", "A")

	tests := []struct {
		subnet, qtype string
		first         string // datacenter of the first answer
		scope         string // ECS scope in the reply
	}{
		{"81.2.69.0/24", "A", "eu-west", "/24"},
		{"193.99.144.0/24", "A", "eu-central", "/24"},
		{"128.30.2.0/24", "AAAA", "us-east", "/24"},
		{"171.64.0.0/16", "A", "us-west", "/14"}, // the database network is a /14
		{"203.116.1.0/24", "A", "ap-southeast", "/24"},
		{"200.147.67.0/24", "AAAA", "sa-east", "/24"},
	}
	for _, tc := range tests {
		t.Run(tc.subnet+"/"+tc.qtype, func(t *testing.T) {
			r := m.mustDig(t, "www.example.net", tc.qtype, "+subnet="+tc.subnet)
			got := data(r.Answer, tc.qtype)
			if len(got) != 4 || !r.hasFlag("aa") {
				t.Fatalf("want 4 %s records with AA, got flags %v:\n%s", tc.qtype, r.Flags, r.Raw)
			}
			if dc := dcOfExample(got[0]); dc != tc.first {
				t.Errorf("first answer %s is in %s, want %s", got[0], dc, tc.first)
			}
			for _, a := range got {
				if a == "198.51.100.42" || a == "198.51.100.52" {
					t.Errorf("answer holds %s, which is drained or down", a)
				}
			}
			if !strings.Contains(r.Raw, "CLIENT-SUBNET: "+tc.subnet+tc.scope) {
				t.Errorf("reply ECS is not %s with scope %s:\n%s", tc.subnet, tc.scope, r.Raw)
			}
		})
	}

	// meridian explain shows the same order, and why endpoints are left out.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, meridianBinary(t), "explain", "www.example.net", "--client", "203.116.1.0/24",
		"--zone-file", filepath.Join(dir, "example.com.zone"), "--zone-file", filepath.Join(dir, "example.net.yaml"),
		"--geoip", db).CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	for _, want := range []string{"1. ap-southeast", "198.51.100.51", "198.51.100.52", "down", "198.51.100.42", "drain"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}

	// A database replaced on disk (as geoipupdate does it) is taken without a
	// restart: move 81.2.69.0/24 to Singapore.
	moved := append([]geotest.Network(nil), geotest.World...)
	moved[0].Lat, moved[0].Lon, moved[0].Country, moved[0].Continent = 1.29, 103.85, "SG", "AS"
	tmp := filepath.Join(dir, "city.mmdb.tmp")
	if err := geotest.Write(tmp, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		t.Fatal(err)
	}
	m.waitDig(t, "new database used", func(r *digResult) bool {
		a := data(r.Answer, "A")
		return len(a) > 0 && dcOfExample(a[0]) == "ap-southeast"
	}, "www.example.net", "A", "+subnet=81.2.69.0/24")

	// A corrupt file swapped in is refused; the last database stays.
	if err := os.WriteFile(tmp, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		t.Fatal(err)
	}
	m.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return strings.Contains(l.Msg, "GeoIP database not reloaded") })
	r := m.mustDig(t, "www.example.net", "A", "+subnet=81.2.69.0/24")
	if a := data(r.Answer, "A"); len(a) == 0 || dcOfExample(a[0]) != "ap-southeast" {
		t.Errorf("after a corrupt file, answer %v; want the last good database (ap-southeast first)", a)
	}
	m.stop(t)
}

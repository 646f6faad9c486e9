package postgres_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// TestInvalidZoneDoesNotBlockOthers breaks one zone by hand, as a manual
// SQL edit can, and checks that the load still succeeds: that zone comes
// back Invalid with the reason, and is served at its last good version by
// zones.Rebuild, while another zone's change made at the same time is
// loaded and served; fixing the zone brings it back. Loads both
// incremental and whole are checked, and the cache file never holds a
// part of the broken zone.
func TestInvalidZoneDoesNotBlockOthers(t *testing.T) {
	pool := func(rules, bias string) []string {
		return []string{
			"INSERT INTO datacenters (zone_id, name, lat, lon) SELECT id, 'dc', 1, 2 FROM zones WHERE origin = 'b.test.'",
			"INSERT INTO pools (zone_id, name, rules, bias) SELECT id, 'pool.b.test.', '" + rules + "', '" + bias + "' FROM zones WHERE origin = 'b.test.'",
			"INSERT INTO endpoints (pool_id, address, datacenter) SELECT id, '192.0.2.80', 'dc' FROM pools WHERE name = 'pool.b.test.'",
		}
	}
	tests := []struct {
		name   string
		before []string // run before the first load: valid
		breaks []string
		reason string // part of the reason given
		fix    []string
	}{
		{"a record's rdata", nil,
			[]string{"UPDATE records SET rdata = 'not-an-address' WHERE name = 'www.b.test.'"},
			`www.b.test. A "not-an-address"`,
			[]string{"UPDATE records SET rdata = '192.0.2.22' WHERE name = 'www.b.test.'"}},
		{"a pool's CIDR", pool(`[]`, `{}`),
			[]string{`UPDATE pools SET rules = '[{"cidr": ["10.0.0.0/33"], "datacenters": ["dc"]}]'`},
			`pool pool.b.test.: bad CIDR "10.0.0.0/33"`,
			[]string{`UPDATE pools SET rules = '[]'`, "UPDATE records SET rdata = '192.0.2.22' WHERE name = 'www.b.test.'"}},
		{"a pool's rules of the wrong shape", pool(`[]`, `{}`),
			[]string{`UPDATE pools SET rules = '[{"cidr": 5}]'`},
			"pool pool.b.test.: rules:",
			[]string{`UPDATE pools SET rules = '[]'`, "UPDATE records SET rdata = '192.0.2.22' WHERE name = 'www.b.test.'"}},
		{"a pool's bias of the wrong shape", pool(`[]`, `{}`),
			[]string{`UPDATE pools SET bias = '{"dc": "near"}'`},
			"pool pool.b.test.: bias:",
			[]string{`UPDATE pools SET bias = '{}'`, "UPDATE records SET rdata = '192.0.2.22' WHERE name = 'www.b.test.'"}},
		{"an endpoint's health check of the wrong shape", pool(`[]`, `{}`),
			[]string{`UPDATE endpoints SET health_check = '{"port": "http"}'`},
			"endpoint 192.0.2.80:",
			[]string{`UPDATE endpoints SET health_check = NULL`, "UPDATE records SET rdata = '192.0.2.22' WHERE name = 'www.b.test.'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := newSchema(t)
			addZone(t, url, "a.test.", "192.0.2.1")
			addZone(t, url, "b.test.", "192.0.2.2")
			if tc.before != nil {
				exec(t, url, tc.before...)
			}
			cache := filepath.Join(t.TempDir(), "cache")
			s := newStore(t, postgres.Options{URL: url, CacheFile: cache})
			d1 := loadData(t, s)
			snap, err := zones.Rebuild(nil, d1.Zones, d1.Version)
			if err != nil || len(snap.Invalid()) != 0 {
				t.Fatalf("first build: %v, invalid %v", err, snap.Invalid())
			}

			// b is broken and a changes, in one transaction.
			exec(t, url, append(tc.breaks, "UPDATE records SET rdata = '192.0.2.11' WHERE name = 'www.a.test.'")...)
			d2 := loadData(t, s)
			if b := zoneOf(d2, "b.test."); b == nil || b.Invalid == nil || !strings.Contains(b.Invalid.Error(), tc.reason) {
				t.Fatalf("broken zone: %+v, want Invalid saying %q", b, tc.reason)
			}
			if z := zoneOf(d2, "a.test."); z.Invalid != nil || wwwOf(d2, "a.test.") != "192.0.2.11" {
				t.Errorf("the other zone: invalid %v, www %s", z.Invalid, wwwOf(d2, "a.test."))
			}
			snap, _ = zones.Rebuild(snap, d2.Zones, d2.Version)
			if got := servedWWW(t, snap, "a.test."); got != "192.0.2.11" {
				t.Errorf("a.test. serves %s, want its change", got)
			}
			if got := servedWWW(t, snap, "b.test."); got != "192.0.2.2" {
				t.Errorf("b.test. serves %s, want its last good version", got)
			}
			if inv := snap.Invalid(); len(inv) != 1 || inv[0].Origin != "b.test." || inv[0].KeptVersion != d1.Version {
				t.Errorf("invalid %+v, want b.test. kept at version %d", inv, d1.Version)
			}

			// A whole load (a server starting now) gets the same, and
			// leaves b out: it has no last good version.
			d := loadData(t, newStore(t, postgres.Options{URL: url}))
			if b := zoneOf(d, "b.test."); b == nil || b.Invalid == nil {
				t.Errorf("whole load: b.test. %+v, want Invalid", b)
			}
			fresh, err := zones.Rebuild(nil, d.Zones, d.Version)
			if err != nil || servedWWW(t, fresh, "a.test.") != "192.0.2.11" || servedWWW(t, fresh, "b.test.") != "" {
				t.Errorf("whole load: %v; a serves %q, b %q", err, servedWWW(t, fresh, "a.test."), servedWWW(t, fresh, "b.test."))
			}

			// The cache holds b's last good version, never a part of it.
			waitCache(t, cache, d2.Version)
			b, err := os.ReadFile(cache)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "192.0.2.2") {
				t.Errorf("cache file lost b.test.'s last good version:\n%s", b)
			}

			exec(t, url, tc.fix...)
			d3 := loadData(t, s)
			if b := zoneOf(d3, "b.test."); b.Invalid != nil {
				t.Fatalf("fixed zone still invalid: %v", b.Invalid)
			}
			snap, _ = zones.Rebuild(snap, d3.Zones, d3.Version)
			if got := servedWWW(t, snap, "b.test."); got != "192.0.2.22" || len(snap.Invalid()) != 0 {
				t.Errorf("fixed: b.test. serves %s, invalid %v", got, snap.Invalid())
			}
		})
	}
}

// TestInvalidZoneCache checks that a server started from a cache file
// written while a zone had never been read whole leaves that zone out and
// serves the others.
func TestInvalidZoneCache(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.test.", "192.0.2.1")
	addZone(t, url, "b.test.", "192.0.2.2")
	exec(t, url, "UPDATE records SET rdata = 'not-an-address' WHERE name = 'www.b.test.'")
	cache := filepath.Join(t.TempDir(), "cache")
	s := newStore(t, postgres.Options{URL: url, CacheFile: cache})
	d := loadData(t, s)
	s.Close()
	if !strings.Contains(readFile(t, cache), `"invalid"`) {
		t.Fatalf("cache file without the invalid zone marked:\n%s", readFile(t, cache))
	}
	// The database is away: the cache is served.
	c := newStore(t, postgres.Options{URL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", CacheFile: cache})
	cd := loadData(t, c)
	if cd.Version != d.Version {
		t.Errorf("cache version %d, want %d", cd.Version, d.Version)
	}
	snap, err := zones.Rebuild(nil, cd.Zones, cd.Version)
	if err != nil {
		t.Fatal(err)
	}
	if servedWWW(t, snap, "a.test.") != "192.0.2.1" || servedWWW(t, snap, "b.test.") != "" {
		t.Errorf("from the cache: a serves %q, b %q", servedWWW(t, snap, "a.test."), servedWWW(t, snap, "b.test."))
	}
	if inv := snap.Invalid(); len(inv) != 1 || !strings.Contains(inv[0].Err.Error(), "not-an-address") {
		t.Errorf("invalid %v", inv)
	}
}

// loadData loads s, failing the test on error; unlike load, it does not
// require every zone to be valid.
func loadData(t *testing.T, s store.Store) *store.Data {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// servedWWW returns the address snap answers for www.<origin>, "" when it
// does not serve the zone.
func servedWWW(t *testing.T, snap *zones.Snapshot, origin string) string {
	t.Helper()
	w, err := zones.WireName("www." + origin)
	if err != nil {
		t.Fatal(err)
	}
	a := snap.Lookup(w, 1)
	if a == nil || len(a.Answer) == 0 {
		return ""
	}
	f := strings.Fields(a.Answer[0].String())
	return f[len(f)-1]
}

// waitCache waits until the cache file holds version v.
func waitCache(t *testing.T, path string, v uint64) {
	t.Helper()
	want := `"version":` + strconv.FormatUint(v, 10)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(readFile(t, path), want); {
		if time.Now().After(deadline) {
			t.Fatalf("cache file never held version %d", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

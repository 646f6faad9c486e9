package geo_test

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/internal/logbuf"
)

func openWorld(t testing.TB) *geo.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "world.mmdb")
	if err := geotest.Write(path, geotest.World); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	db := openWorld(t)
	for _, tc := range []struct {
		addr      string
		country   string
		continent string
		coords    bool
		prefix    string
	}{
		{"81.2.69.160", "GB", "EU", true, "81.2.69.0/24"},
		{"193.99.144.80", "DE", "EU", true, "193.99.144.0/24"},
		{"193.99.130.1", "DE", "EU", true, "193.99.128.0/20"},
		{"171.67.1.1", "US", "NA", true, "171.64.0.0/14"},
		{"2a00:1450:4001:80b::200e", "DE", "EU", true, "2a00:1450:4001::/48"},
		{"5.0.1.1", "FR", "EU", false, "5.0.0.0/16"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			i, p := db.Lookup(netip.MustParseAddr(tc.addr))
			if i == geo.NoLocation {
				t.Fatal("not found")
			}
			loc := db.Location(i)
			if loc.Country != tc.country || loc.Continent != tc.continent || loc.HasCoords != tc.coords {
				t.Errorf("location %+v, want %s/%s coords %v", loc, tc.country, tc.continent, tc.coords)
			}
			if p.String() != tc.prefix {
				t.Errorf("network %s, want %s", p, tc.prefix)
			}
		})
	}
	if i, p := db.Lookup(netip.MustParseAddr("192.0.2.1")); i != geo.NoLocation || !p.IsValid() {
		t.Errorf("documentation address located at %d (%s)", i, p)
	}
	if !db.HasCoords() || db.Len() != len(geotest.World) {
		t.Errorf("HasCoords %v Len %d, want true and %d", db.HasCoords(), db.Len(), len(geotest.World))
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mmdb")
	if err := geotest.Write(good, geotest.World); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"empty":      nil,
		"garbage":    []byte("this is not a MaxMind database"),
		"truncated":  data[:len(data)/2],
		"middle cut": append(append([]byte{}, data[:len(data)/3]...), data[2*len(data)/3:]...),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".mmdb")
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
			if db, err := geo.Open(p); err == nil {
				db.Close()
				t.Error("opened without error")
			}
		})
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		km                     float64
	}{
		{"London-Frankfurt", 51.5074, -0.1278, 50.1109, 8.6821, 637},
		{"Ashburn-San Jose", 39.0438, -77.4874, 37.3382, -121.8863, 3820},
		{"same point", 10, 10, 10, 10, 0},
		{"antipodes", 0, 0, 0, 180, math.Pi * 6371},
	} {
		if got := geo.Distance(tc.lat1, tc.lon1, tc.lat2, tc.lon2); math.Abs(got-tc.km) > tc.km*0.01+1 {
			t.Errorf("%s: %.0f km, want %.0f", tc.name, got, tc.km)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	db := openWorld(b)
	addr := netip.MustParseAddr("193.99.144.80")
	b.ReportAllocs()
	for b.Loop() {
		if i, _ := db.Lookup(addr); i == geo.NoLocation {
			b.Fatal("not found")
		}
	}
}

func TestWatchReloadsReplacedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "city.mmdb")
	if err := geotest.Write(path, geotest.World[:1]); err != nil {
		t.Fatal(err)
	}
	first, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf logbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	got := make(chan *geo.DB, 4)
	failed := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		geo.Watch(ctx, path, 20*time.Millisecond, first, func(db *geo.DB, err error) {
			if err != nil {
				failed <- err
				return
			}
			got <- db
		}, logger)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	// A corrupt file swapped in is refused, and the refusal is logged.
	bad := filepath.Join(dir, "bad.tmp")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	if err := os.Rename(bad, path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(buf.String(), "keeping the one in use") {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the refused file; log: %s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case db := <-got:
		t.Fatalf("corrupt file accepted (%d locations)", db.Len())
	case err := <-failed:
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("refusal reported as %v, want an error naming %s", err, path)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("refusal of the corrupt file not reported to the caller")
	}

	// A good file renamed into place, as geoipupdate does, is taken.
	tmp := filepath.Join(dir, "new.tmp")
	if err := geotest.Write(tmp, geotest.World); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case db := <-got:
		if i, _ := db.Lookup(netip.MustParseAddr("203.116.1.1")); i == geo.NoLocation || db.Location(i).Country != "SG" {
			t.Errorf("reloaded database does not place 203.116.1.1 in SG")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("replaced file not reloaded within 3s")
	}
}

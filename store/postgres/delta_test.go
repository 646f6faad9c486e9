package postgres_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// TestLoadDelta checks what a load after a change says of it: the data
// set's Delta names the zones changed and removed since the load before,
// the zones list is sorted and whole, and the lists returned before are
// left as they were.
func TestLoadDelta(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	mustApply(t, conn, exampleZones(t), postgres.ApplyOptions{})
	s, err := postgres.New(postgres.Options{URL: url, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	origins := func(zs []*zones.Zone) []string {
		var out []string
		for _, z := range zs {
			out = append(out, z.Origin)
		}
		return out
	}
	d1, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Delta != nil || !slices.Equal(origins(d1.Zones), []string{"example.com.", "example.net."}) {
		t.Fatalf("first load: delta %+v, zones %v", d1.Delta, origins(d1.Zones))
	}
	first := slices.Clone(d1.Zones)

	// A drain changes example.net. only.
	if _, err := postgres.SetAdmin(ctx, conn, "www.example.net.", netip.MustParseAddr("198.51.100.11"), zones.AdminDrain, "test", "test"); err != nil {
		t.Fatal(err)
	}
	d2, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Delta == nil || d2.Delta.From != d1.Version || len(d2.Delta.Removed) != 0 || len(d2.Delta.Changed) != 1 || d2.Delta.Changed[0].Origin != "example.net." {
		t.Fatalf("after a drain: delta %+v", d2.Delta)
	}
	if d2.Zones[0] != d1.Zones[0] || d2.Zones[1] != d2.Delta.Changed[0] || !slices.Equal(d1.Zones, first) {
		t.Error("zones list: the unchanged zone is not shared, the changed one not in it, or the list before was modified")
	}

	// A new zone, and example.com. deleted.
	z := yamlZone(t, "origin: a.example.\nsoa: {ns: ns1, mbox: hostmaster, serial: 1}\nrecords:\n  - {name: \"@\", type: NS, data: ns1}\n  - {name: ns1, type: A, data: 192.0.2.53}\n")
	mustApply(t, conn, []*zones.Zone{z, d2.Zones[1]}, postgres.ApplyOptions{Prune: true, Force: true})
	d3, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d3.Delta == nil || d3.Delta.From != d2.Version || !slices.Equal(d3.Delta.Removed, []string{"example.com."}) || !slices.Equal(origins(d3.Delta.Changed), []string{"a.example."}) {
		t.Fatalf("after an add and a delete: delta %+v", d3.Delta)
	}
	if got := origins(d3.Zones); !slices.Equal(got, []string{"a.example.", "example.net."}) {
		t.Errorf("zones %v", got)
	}
}

package postgres_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// envInt reads a benchmark size from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkScale loads a large data set (by default 10,000 zones with 10
// pools of 10 endpoints each: 100,000 pools, 1,000,000 endpoints) and
// measures the first load, the snapshot build, its publication to a DNS
// server with a GeoIP database, and the memory; then, per iteration, one
// endpoint change, as a server follows it: from the start of its commit
// to the new snapshot served (change), and of that the server's own
// work, zones.Patch and Publish, without the database's (apply). Sizes:
// MERIDIAN_BENCH_ZONES, MERIDIAN_BENCH_POOLS, MERIDIAN_BENCH_ENDPOINTS.
//
//	go test -run '^$' -bench Scale -benchtime 200x ./store/postgres/
func BenchmarkScale(b *testing.B) {
	nz := envInt("MERIDIAN_BENCH_ZONES", 10000)
	np := envInt("MERIDIAN_BENCH_POOLS", 10)
	ne := envInt("MERIDIAN_BENCH_ENDPOINTS", 10)
	ctx := context.Background()
	url := newSchemaB(b)

	start := time.Now()
	populate(b, url, nz, np, ne)
	populateS := time.Since(start).Seconds()

	s, err := postgres.New(postgres.Options{URL: url, PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv, err := dnsserver.New(dnsserver.DefaultConfig(), nil) // never listens: only published to
	if err != nil {
		b.Fatal(err)
	}
	mmdb := filepath.Join(b.TempDir(), "world.mmdb")
	if err := geotest.Write(mmdb, geotest.World); err != nil {
		b.Fatal(err)
	}
	db, err := geo.Open(mmdb)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	srv.SetGeo(db)
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start = time.Now()
	d, err := s.Load(ctx)
	if err != nil {
		b.Fatal(err)
	}
	loadS := time.Since(start).Seconds()
	start = time.Now()
	snap, err := zones.Build(d.Zones, d.Version)
	if err != nil {
		b.Fatal(err)
	}
	buildS := time.Since(start).Seconds()
	start = time.Now()
	srv.Publish(snap)
	publishS := time.Since(start).Seconds()
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	heapMB := float64(m1.HeapAlloc-m0.HeapAlloc) / (1 << 20)

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	addr := netip.MustParseAddr("10.0.0.0")
	var pool string
	if err := conn.QueryRow(ctx, "SELECT p.name FROM pools p JOIN endpoints e ON e.pool_id = p.id WHERE e.address = $1", addr).Scan(&pool); err != nil {
		b.Fatal(err)
	}
	var lat, apply []time.Duration
	patched := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		state := zones.AdminDrain
		if i%2 == 1 {
			state = zones.AdminActive
		}
		t0 := time.Now()
		if _, err := postgres.SetAdmin(ctx, conn, pool, addr, state, "bench", "bench"); err != nil {
			b.Fatal(err)
		}
		d, err := s.Load(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if d.Delta != nil && d.Delta.From == snap.Version {
			snap, err = zones.Patch(snap, d.Delta.Changed, d.Delta.Removed, d.Version)
			patched++
		} else {
			snap, err = zones.Rebuild(snap, d.Zones, d.Version)
		}
		if err != nil {
			b.Fatal(err)
		}
		srv.Publish(snap)
		t2 := time.Now()
		lat = append(lat, t2.Sub(t0))
		apply = append(apply, t2.Sub(t1))
	}
	b.StopTimer()
	if patched != len(lat) {
		b.Errorf("%d of %d changes patched", patched, len(lat))
	}
	// Reported after the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(populateS, "populate-s")
	b.ReportMetric(loadS, "load-s")
	b.ReportMetric(buildS, "build-s")
	b.ReportMetric(publishS, "publish-s")
	b.ReportMetric(heapMB, "heap-MB")
	ms := func(ds []time.Duration, q int) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, len(ds)*q/100)].Microseconds()) / 1000
	}
	b.ReportMetric(ms(lat, 50), "change-p50-ms")
	b.ReportMetric(ms(lat, 99), "change-p99-ms")
	b.ReportMetric(ms(apply, 50), "apply-p50-ms")
	b.ReportMetric(ms(apply, 99), "apply-p99-ms")
	runtime.KeepAlive(snap)
}

func newSchemaB(b *testing.B) string {
	b.Helper()
	url := pgtest.NewDB(b)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		b.Fatal(err)
	}
	return url
}

// populate writes the data set with set-based SQL, triggers off (one
// version for all of it), as a bulk import would.
func populate(b *testing.B, url string, nz, np, ne int) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	stmts := []string{
		"SET session_replication_role = replica",
		fmt.Sprintf("INSERT INTO zones (origin) SELECT 'z' || i || '.example.' FROM generate_series(0, %d) i", nz-1),
		`INSERT INTO records (zone_id, name, type, ttl, rdata)
			SELECT id, origin, 'SOA', 300, 'ns1.' || origin || ' hostmaster.' || origin || ' 1 7200 3600 1209600 60' FROM zones
			UNION ALL SELECT id, origin, 'NS', 300, 'ns1.' || origin FROM zones
			UNION ALL SELECT id, 'ns1.' || origin, 'A', 300, '192.0.2.53' FROM zones`,
		`INSERT INTO datacenters (zone_id, name, lat, lon)
			SELECT z.id, d.name, d.lat, d.lon FROM zones z, (VALUES ('us-east', 39.04, -77.49), ('us-west', 37.34, -121.89),
			('eu-west', 51.51, -0.13), ('eu-central', 50.11, 8.68), ('ap-southeast', 1.35, 103.82), ('sa-east', -23.55, -46.63)) d(name, lat, lon)`,
		fmt.Sprintf("INSERT INTO pools (zone_id, name) SELECT z.id, 'p' || i || '.' || z.origin FROM zones z, generate_series(0, %d) i", np-1),
		fmt.Sprintf(`INSERT INTO endpoints (pool_id, address, datacenter)
			SELECT p.id, '10.0.0.0'::inet + ((p.id - 1) * %d + j), (ARRAY['us-east', 'us-west', 'eu-west', 'eu-central', 'ap-southeast', 'sa-east'])[j %% 6 + 1]
			FROM pools p, generate_series(0, %d) j`, ne, ne-1),
		// One version for the whole import, in the change log as an
		// apply would leave it (a server that loaded it follows changes
		// from there).
		"UPDATE meridian_version SET version = GREATEST(version + 1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
		"INSERT INTO changes (version, zone_id) SELECT v.version, z.id FROM meridian_version v, zones z",
		"SET session_replication_role = origin",
		"ANALYZE",
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
}

package postgres_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// BenchmarkStandbyPoll measures what following a hot standby costs, on a
// standby holding MERIDIAN_BENCH_ZONES zones (10,000 by default, each
// with one pool of two endpoints): per iteration, one poll as the watch
// loop runs it every store.standby_poll_interval (the round trip over
// loopback); then the standby's own execution time of that query
// (EXPLAIN ANALYZE), and, for a change of one endpoint committed on the
// primary, the time until the standby has replayed it and an incremental
// Load from the standby has read it (polled without pause, so that the
// interval does not count).
//
//	go test -run '^$' -bench StandbyPoll -benchtime 2000x ./store/postgres/
func BenchmarkStandbyPoll(b *testing.B) {
	nz := envInt("MERIDIAN_BENCH_ZONES", 10000)
	ctx := context.Background()
	pair := pgtest.OwnPair(b)
	primaryURL, standbyURL := pair.DB(b)
	if _, _, err := postgres.Migrate(ctx, primaryURL); err != nil {
		b.Fatal(err)
	}
	populate(b, primaryURL, nz, 1, 2)
	pair.WaitReplayed(b)

	conn, err := pgx.Connect(ctx, standbyURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		version              int64
		standby, all, stream bool
		now                  time.Time
		replayed             *time.Time
	)
	poll := func() {
		if err := conn.QueryRow(ctx, postgres.ReplicaPoll).Scan(&version, &standby, &now, &replayed, &all, &stream); err != nil {
			b.Fatal(err)
		}
	}
	poll()
	if !standby {
		b.Fatal("the standby is not in recovery")
	}
	b.ResetTimer()
	for b.Loop() {
		poll()
	}
	b.StopTimer()

	// The standby's own time for the poll, without the round trip.
	var serverUS []float64
	for range 50 {
		var plan []map[string]any
		if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+postgres.ReplicaPoll).Scan(&plan); err != nil {
			b.Fatal(err)
		}
		raw, _ := json.Marshal(plan[0]["Execution Time"])
		var ms float64
		_ = json.Unmarshal(raw, &ms)
		serverUS = append(serverUS, ms*1000)
	}
	slices.Sort(serverUS)

	// A change on the primary, through the standby, into a Load.
	s, err := postgres.New(postgres.Options{URL: standbyURL, PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Load(ctx); err != nil {
		b.Fatal(err)
	}
	pc, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close(ctx)
	addr := netip.MustParseAddr("10.0.0.0")
	var pool string
	if err := pc.QueryRow(ctx, "SELECT p.name FROM pools p JOIN endpoints e ON e.pool_id = p.id WHERE e.address = $1", addr).Scan(&pool); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for i := range 20 {
		state := zones.AdminDrain
		if i%2 == 1 {
			state = zones.AdminActive
		}
		t0 := time.Now()
		if _, err := postgres.SetAdmin(ctx, pc, pool, addr, state, "bench", "bench"); err != nil {
			b.Fatal(err)
		}
		var want int64
		if err := pc.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&want); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			poll()
			if version >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the standby did not replay the change in 10s")
			}
		}
		d, err := s.Load(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if int64(d.Version) != want {
			b.Fatalf("loaded version %d, want %d", d.Version, want)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(nz), "zones")
	b.ReportMetric(serverUS[len(serverUS)/2], "poll-server-us")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "change-p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "change-max-ms")
}

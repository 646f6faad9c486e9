package main

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// BenchmarkPropagation measures, per iteration, the time from the start
// of a committed endpoint change (a drain or enable in PostgreSQL) to the
// first answer at the DNS port that reflects it, with the real binary.
//
//	go test -run '^$' -bench Propagation -benchtime 200x ./cmd/meridian/
func BenchmarkPropagation(b *testing.B) {
	url := pgtest.NewDB(b)
	ctx := context.Background()
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		b.Fatal(err)
	}
	applyExamples(b, url, nil)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	dir := b.TempDir()
	db := filepath.Join(dir, "city.mmdb")
	if err := geotest.Write(db, geotest.World); err != nil {
		b.Fatal(err)
	}
	m := startMeridian(b, dir, nil, "--listen", "127.0.0.1:0", "--database", url, "--geoip", db)

	q := new(dns.Msg)
	q.SetQuestion("www.example.net.", dns.TypeA)
	q.SetEdns0(1232, false)
	o := q.IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("81.2.69.0").To4()})
	c := &dns.Client{Timeout: time.Second}
	target := netip.MustParseAddr("198.51.100.31")
	has := func() bool {
		r, _, err := c.Exchange(q, "127.0.0.1:"+m.port)
		if err != nil {
			b.Fatal(err)
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.Equal(net.IP(target.AsSlice())) {
				return true
			}
		}
		return false
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		state, want := zones.AdminDrain, false
		if i%2 == 1 {
			state, want = zones.AdminActive, true
		}
		t0 := time.Now()
		if _, err := postgres.SetAdmin(ctx, conn, "www.example.net.", target, state, "bench", "bench"); err != nil {
			b.Fatal(err)
		}
		for has() != want {
			if time.Since(t0) > 10*time.Second {
				b.Fatal("change not seen within 10s")
			}
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	m.stop(b)
}

package zones

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scaleZones builds nz zones with pp pools of ep endpoints each, over six
// shared datacenters: the shape of a large multi-tenant deployment.
func scaleZones(tb testing.TB, nz, pp, ep int) []*Zone {
	tb.Helper()
	dcs := []Datacenter{
		{Name: "us-east", Lat: 39.04, Lon: -77.49}, {Name: "us-west", Lat: 37.34, Lon: -121.89},
		{Name: "eu-west", Lat: 51.51, Lon: -0.13}, {Name: "eu-central", Lat: 50.11, Lon: 8.68},
		{Name: "ap-southeast", Lat: 1.35, Lon: 103.82}, {Name: "sa-east", Lat: -23.55, Lon: -46.63},
	}
	var out []*Zone
	n := 0
	for zi := 0; zi < nz; zi++ {
		origin := fmt.Sprintf("z%d.example.", zi)
		z := &Zone{Origin: origin, Source: "bench", Datacenters: dcs}
		for _, s := range []string{
			origin + " 300 IN SOA ns1." + origin + " hostmaster." + origin + " 1 7200 3600 1209600 60",
			origin + " 300 IN NS ns1." + origin,
			"ns1." + origin + " 300 IN A 192.0.2.53",
		} {
			rr, err := dns.NewRR(s)
			if err != nil {
				tb.Fatal(err)
			}
			z.Records = append(z.Records, Record{RR: rr})
		}
		for pi := 0; pi < pp; pi++ {
			p := NewPool(fmt.Sprintf("p%d.%s", pi, origin))
			for ei := 0; ei < ep; ei++ {
				n++
				a := netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
				p.Endpoints = append(p.Endpoints, Endpoint{Addr: a, Datacenter: dcs[ei%len(dcs)].Name, Weight: DefaultWeight})
			}
			z.Pools = append(z.Pools, p)
		}
		out = append(out, z)
	}
	return out
}

// BenchmarkRebuildOneZone measures a rebuild after one zone of many
// changed (sizes: 2,000 zones of 10 pools of 100 endpoints), against a
// full build of the same data: the rebuild should cost one zone.
func BenchmarkRebuildOneZone(b *testing.B) {
	zs := scaleZones(b, 2000, 10, 100)
	start := time.Now()
	snap, err := Build(zs, 1)
	if err != nil {
		b.Fatal(err)
	}
	full := time.Since(start)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		changeOne(zs, i)
		if snap, err = Rebuild(snap, zs, uint64(i+2)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(snap)
	b.ReportMetric(float64(full.Milliseconds()), "full-build-ms")
}

// BenchmarkPatchOneZone is BenchmarkRebuildOneZone given only the zone
// that changed (Patch), as the PostgreSQL store hands it: the cost should
// not depend on the number of zones. Sizes: 10,000 zones of 10 pools of
// 10 endpoints (1,000,000 endpoints in 100,000 pools).
func BenchmarkPatchOneZone(b *testing.B) {
	zs := scaleZones(b, 10000, 10, 10)
	start := time.Now()
	snap, err := Build(zs, 1)
	if err != nil {
		b.Fatal(err)
	}
	full := time.Since(start)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c := changeOne(zs, i)
		if snap, err = Patch(snap, []*Zone{c}, nil, uint64(i+2)); err != nil {
			b.Fatal(err)
		}
	}
	runtime.KeepAlive(snap)
	b.ReportMetric(float64(full.Milliseconds()), "full-build-ms")
}

// changeOne drains or enables (by i's parity) the first endpoint of zone
// i of zs, in a new *Zone, as a store hands out, and returns it.
func changeOne(zs []*Zone, i int) *Zone {
	c := *zs[i%len(zs)]
	c.Pools = append([]Pool(nil), c.Pools...)
	c.Pools[0].Endpoints = append([]Endpoint(nil), c.Pools[0].Endpoints...)
	c.Pools[0].Endpoints[0].Admin = AdminActive + AdminState(i%2)
	zs[i%len(zs)] = &c
	return &c
}

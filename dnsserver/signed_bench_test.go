package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// benchKeyset returns a combined signing key for zone.
func benchKeyset(b testing.TB, zone string, alg uint8) *signing.Keyset {
	b.Helper()
	k, err := signing.Generate(zone, alg, signing.FlagKSK)
	if err != nil {
		b.Fatal(err)
	}
	ks, err := signing.NewKeyset(zone, []*signing.Key{k}, signing.DefaultPolicy())
	if err != nil {
		b.Fatal(err)
	}
	return ks
}

// BenchmarkRespondSignedPool compares a pool answer with ECS and the DO
// bit from an unsigned zone with the same answer from a signed zone whose
// signature cache is warm (issue 15: within 1.2x). The ECS subnets cycle
// through several locations, so that several subsets are in the cache.
func BenchmarkRespondSignedPool(b *testing.B) {
	db := worldDB(b)
	subnets := []string{"193.99.144.0", "81.2.69.0", "8.8.8.0", "1.1.1.0", "202.12.27.0"}
	for _, signed := range []bool{false, true} {
		zs := poolSnapshotZones(b, testPool("www.svc.example."))
		name := "unsigned"
		if signed {
			zs[0].Keys = benchKeyset(b, "svc.example.", dns.ECDSAP256SHA256)
			name = "signed-warm"
		}
		snap, err := zones.Build(zs, 1)
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.Publish(snap)
		s.SetGeo(db)
		var pkts [][]byte
		for _, sn := range subnets {
			ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP(sn).To4()}
			pkt, err := withEDNS(newQuery("www.svc.example.", dns.TypeA), 1232, true, ecs).Pack()
			if err != nil {
				b.Fatal(err)
			}
			pkts = append(pkts, pkt)
		}
		src := netip.MustParseAddrPort("81.2.69.1:53000")
		b.Run(name, func(b *testing.B) {
			var q query
			out := make([]byte, 0, advertisedUDPSize)
			for _, pkt := range pkts { // warm the cache
				s.handle(&q, out[:0], pkt, false, src, nanotime())
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := s.handle(&q, out[:0], pkts[i%len(pkts)], false, src, nanotime())
				if r == nil {
					b.Fatal("no reply")
				}
				i++
			}
			if signed {
				hits, misses := s.sigs.Stats()
				b.ReportMetric(float64(misses)/float64(hits+misses), "miss-ratio")
			}
		})
	}
}

// BenchmarkSignCold is the rate of signing on a cache miss: one RRset of
// four A records per operation, per core.
func BenchmarkSignCold(b *testing.B) {
	for _, alg := range []uint8{dns.ECDSAP256SHA256, dns.ED25519} {
		ks := benchKeyset(b, "svc.example.", alg)
		var rrs []dns.RR
		for i := range 4 {
			rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: "www.svc.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
				A: net.IPv4(192, 0, 2, byte(i+1))})
		}
		inc, exp := ks.Policy.Window(time.Now())
		b.Run(dns.AlgorithmToString[alg], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ks.Sign(rrs, inc, exp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignatureCacheMemory fills a server's signature cache with the
// signatures of 100k pool answers (one subset each, as 100k pools would)
// and reports the heap it holds per entry and in all.
func BenchmarkSignatureCacheMemory(b *testing.B) {
	const pools = 100_000
	ks := benchKeyset(b, "svc.example.", dns.ECDSAP256SHA256)
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		s := &Server{sigs: signing.NewCache(DefaultSignatureCache)}
		for i := range pools {
			name := fmt.Sprintf("p%d.svc.example.", i)
			rr := &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 1)}
			// The key a pool answer is kept under: keyset, owner, type,
			// TTL and one address (see poolSigs).
			key := []byte(fmt.Sprintf("%016x%s\x00\x01\x00\x00\x00\x1e%016x", ks.ID, name, i))
			if s.signAndKeep(key, []dns.RR{rr}, ks) == nil {
				b.Fatal("signing failed")
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(held/(1<<20), "MiB")
		b.ReportMetric(held/float64(s.sigs.Len()), "B/entry")
		b.ReportMetric(float64(s.sigs.Len()), "entries")
		runtime.KeepAlive(s)
		b.StartTimer()
	}
}

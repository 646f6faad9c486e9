package dnsserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

type benchCase struct {
	name string
	m    *dns.Msg
}

// BenchmarkRespond measures the query path from packet to reply, without
// sockets: parse, snapshot lookup and reply assembly.
func BenchmarkRespond(b *testing.B) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.Publish(testSnapshot(b, 1))
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("193.99.144.0").To4()}
	runBench(b, s, []benchCase{
		{"static-A", newQuery("www.example.com.", dns.TypeA)},
		{"static-A-edns-ecs", withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, ecs)},
		{"nxdomain", newQuery("nx12345.example.com.", dns.TypeA)},
		{"wildcard", newQuery("foo.wild.example.com.", dns.TypeA)},
		{"referral", newQuery("a.b.sub.example.com.", dns.TypeA)},
	})
}

// BenchmarkRespondPool measures a geo pool answer with ECS against a
// static answer on the same server.
func BenchmarkRespondPool(b *testing.B) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.Publish(poolSnapshot(b, testPool("www.svc.example.")))
	s.SetGeo(worldDB(b))
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("193.99.144.0").To4()}
	runBench(b, s, []benchCase{
		{"static-A-ecs", withEDNS(newQuery("ns1.svc.example.", dns.TypeA), 1232, false, ecs)},
		{"pool-A-ecs", withEDNS(newQuery("www.svc.example.", dns.TypeA), 1232, false, ecs)},
		{"pool-A-no-ecs", newQuery("www.svc.example.", dns.TypeA)},
	})
}

func runBench(b *testing.B, s *Server, cases []benchCase) {
	src := netip.MustParseAddrPort("81.2.69.1:53000")
	for _, bc := range cases {
		pkt, err := bc.m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			var q query
			q.geo = new(geoCache) // as a UDP loop has
			out := make([]byte, 0, advertisedUDPSize)
			b.ReportAllocs()
			for b.Loop() {
				if s.handle(&q, out[:0], pkt, false, src, nanotime()) == nil {
					b.Fatal("no reply")
				}
			}
		})
	}
}

package dnsserver

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkRespond measures the query path from packet to reply, without
// sockets: parse, snapshot lookup and reply assembly.
func BenchmarkRespond(b *testing.B) {
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.Publish(testSnapshot(b, 1))
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("193.99.144.0").To4()}
	for _, bc := range []struct {
		name string
		m    *dns.Msg
	}{
		{"static-A", newQuery("www.example.com.", dns.TypeA)},
		{"static-A-edns-ecs", withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, ecs)},
		{"nxdomain", newQuery("nx12345.example.com.", dns.TypeA)},
		{"wildcard", newQuery("foo.wild.example.com.", dns.TypeA)},
		{"referral", newQuery("a.b.sub.example.com.", dns.TypeA)},
	} {
		pkt, err := bc.m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			var q query
			out := make([]byte, 0, advertisedUDPSize)
			b.ReportAllocs()
			for b.Loop() {
				if s.handle(&q, out[:0], pkt, false, netip.Addr{}) == nil {
					b.Fatal("no reply")
				}
			}
		})
	}
}

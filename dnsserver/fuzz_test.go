package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzRespond feeds arbitrary packets to the responder. It calls respond
// directly, not through the recover in handle, so that any panic fails the
// fuzzer. Every reply must unpack, echo the id and fit its transport; a
// UDP reply is never larger than the client asked for (512 octets without
// EDNS, RFC 1035 section 4.2.1; its OPT's size with it, RFC 6891 section
// 6.2.5), so that no query buys more than its answer; a response (QR set)
// gets no reply at all; recursion is never offered (RA clear); and the
// question comes back as asked.
func FuzzRespond(f *testing.F) {
	seeds := []*dns.Msg{
		newQuery("www.example.com.", dns.TypeA),
		newQuery("WWW.example.COM.", dns.TypeAAAA),
		newQuery("nothere.example.com.", dns.TypeA),
		newQuery("big.example.com.", dns.TypeTXT),
		newQuery("host.sub.example.com.", dns.TypeA),
		newQuery("x.cwild.example.com.", dns.TypeA),
		withEDNS(newQuery("www.example.com.", dns.TypeA), 4096, true, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}),
		withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false,
			&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("81.2.69.0").To4()}),
	}
	for _, m := range seeds {
		p, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, false)
		f.Add(p, true)
	}
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, NSID: "fuzz", TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
	if err != nil {
		f.Fatal(err)
	}
	s.Publish(testSnapshot(f, 1))
	var q query
	out := make([]byte, 0, maxTCPSize)
	f.Fuzz(func(t *testing.T, pkt []byte, tcp bool) {
		reply := s.respond(&q, out[:0], pkt, tcp, netip.MustParseAddr("198.51.100.7"))
		if reply == nil {
			return
		}
		if len(pkt) > 2 && pkt[2]&0x80 != 0 {
			// A response is never answered: two servers would bounce
			// replies between them, or a spoofed one reflect off us.
			t.Fatalf("reply %x to a response %x", reply, pkt)
		}
		if !tcp && len(reply) > advertisedUDPSize {
			t.Fatalf("UDP reply of %d octets", len(reply))
		}
		var m dns.Msg
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply %x to %x does not unpack: %v", reply, pkt, err)
		}
		if m.Id != binary.BigEndian.Uint16(pkt) || !m.Response {
			t.Fatalf("reply id %d QR %v to query id %d", m.Id, m.Response, binary.BigEndian.Uint16(pkt))
		}
		if m.RecursionAvailable {
			t.Fatalf("reply %v offers recursion", &m)
		}
		var in dns.Msg
		if in.Unpack(pkt) != nil {
			if !tcp && len(reply) > minUDPSize {
				t.Fatalf("UDP reply of %d octets to a malformed query", len(reply))
			}
			return
		}
		if !tcp {
			limit := minUDPSize
			if opt := in.IsEdns0(); opt != nil {
				limit = max(minUDPSize, min(int(opt.UDPSize()), advertisedUDPSize))
			}
			if len(reply) > limit {
				t.Fatalf("UDP reply of %d octets, the client allows %d", len(reply), limit)
			}
		}
		if in.Opcode == dns.OpcodeQuery && len(in.Question) == 1 && m.Rcode != dns.RcodeFormatError &&
			(len(m.Question) != 1 || m.Question[0] != in.Question[0]) {
			t.Fatalf("question %v answered as %v", in.Question, m.Question)
		}
	})
}

package transfer

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzTransfer feeds arbitrary queries to both entry points: whatever
// comes, no panic, and every reply unpacks with the query's ID.
func FuzzTransfer(f *testing.F) {
	for _, m := range []*dns.Msg{
		new(dns.Msg).SetAxfr("example.com."),
		new(dns.Msg).SetIxfr("example.com.", 10, "a.", "b."),
		new(dns.Msg).SetIxfr("example.com.", 12, "a.", "b."),
		new(dns.Msg).SetQuestion("example.com.", dns.TypeIXFR),
		new(dns.Msg).SetAxfr("other."),
	} {
		b, _ := m.Pack()
		f.Add(b)
		s := m.Copy()
		s.SetTsig("k512.", dns.HmacSHA512, 300, time.Now().Unix())
		if b, _, err := dns.TsigGenerate(s, secret2, "", false); err == nil {
			f.Add(b)
		}
	}
	x, err := New(testConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	v1 := snapshot(f, 1, nil, zoneText(10, 1, 20))
	x.Publish(v1)
	x.Publish(snapshot(f, 2, v1, zoneText(11, 2, 20)))
	client := netip.MustParseAddrPort("127.0.0.1:5300")
	f.Fuzz(func(t *testing.T, query []byte) {
		check := func(reply []byte) {
			if reply == nil {
				return
			}
			var m dns.Msg
			if err := m.Unpack(reply); err != nil && len(reply) > 12 {
				t.Fatalf("reply %x to %x does not unpack: %v", reply, query, err)
			}
			if len(query) >= 2 && (reply[0] != query[0] || reply[1] != query[1]) {
				t.Fatalf("reply ID %x, query ID %x", reply[:2], query[:2])
			}
		}
		check(x.ServeUDP(query, client))
		x.ServeTCP(context.Background(), query, client, func(msg []byte) error {
			check(msg)
			return nil
		})
	})
}

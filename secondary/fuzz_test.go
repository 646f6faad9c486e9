package secondary

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzServeNotify feeds arbitrary messages to ServeNotify, as a client
// on the network can: it must not panic, and a reply must unpack.
func FuzzServeNotify(f *testing.F) {
	m, err := New(Config{
		Zones: []Zone{
			{Origin: "example.net.", Primaries: []string{"127.0.0.1:53"}, Key: "xfr-key"},
			{Origin: "example.org.", Primaries: []string{"127.0.0.1:53"}},
		},
		Keys: []Key{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: testSecret}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, zone := range []string{"example.net.", "example.org.", "other."} {
		q := new(dns.Msg)
		q.SetNotify(zone)
		b, _ := q.Pack()
		f.Add(b)
		q.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
		if b, _, err := dns.TsigGenerate(q, testSecret, "", false); err == nil {
			f.Add(b)
		}
	}
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, query []byte) {
		r := m.ServeNotify(query, client)
		if r == nil {
			return
		}
		if err := new(dns.Msg).Unpack(r); err != nil {
			t.Fatalf("the reply does not unpack: %v", err)
		}
	})
}

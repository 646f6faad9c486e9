package dnsserver

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// fakeUpdater answers every UPDATE for example.com. with NOERROR and
// gives no reply for any other zone.
type fakeUpdater struct {
	mu   sync.Mutex
	seen []netip.Addr
}

func (f *fakeUpdater) ServeUpdate(query []byte, client netip.AddrPort) []byte {
	f.mu.Lock()
	f.seen = append(f.seen, client.Addr())
	f.mu.Unlock()
	m := new(dns.Msg)
	if m.Unpack(query) != nil || len(m.Question) != 1 || m.Question[0].Name != "example.com." {
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(m)
	out, _ := r.Pack()
	return out
}

func TestUpdater(t *testing.T) {
	u := &fakeUpdater{}
	_, addr := startServerWith(t, Config{}, testSnapshot(t, 1), func(s *Server) { s.SetUpdater(u) })
	for _, network := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetUpdate("example.com.")
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeUpdate {
			t.Errorf("%s: UPDATE reply %v", network, r)
		}
		q.SetUpdate("garbage.")
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeFormatError {
			t.Errorf("%s: UPDATE without a reply from the Updater: %v", network, r)
		}
		q.SetNotify("example.com.")
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("%s: NOTIFY without a Notifier: %v", network, r)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) != 4 || u.seen[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the Updater saw %v", u.seen)
	}
}

package dnsserver

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

func TestIsTransfer(t *testing.T) {
	pack := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeAXFR)
		edit(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	axfr := pack(func(*dns.Msg) {})
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"AXFR", axfr, true},
		{"IXFR", pack(func(m *dns.Msg) { m.SetIxfr("example.com.", 1, "a.", "b.") }), true},
		{"A", pack(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeA }), false},
		{"a response", pack(func(m *dns.Msg) { m.Response = true }), false},
		{"NOTIFY", pack(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), false},
		{"two questions", pack(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), false},
		{"cut in the name", axfr[:15], false},
		{"cut in the type", axfr[:len(axfr)-3], false},
		{"header only", axfr[:12], false},
		{"root", pack(func(m *dns.Msg) { m.Question[0].Name = "." }), true},
	} {
		if got := isTransfer(c.pkt); got != c.want {
			t.Errorf("%s: isTransfer = %v, want %v", c.name, got, c.want)
		}
	}
}

// fakeNotifier answers every NOTIFY with NOERROR and AA, and nothing
// for a NOTIFY for "garbage.".
type fakeNotifier struct {
	mu   sync.Mutex
	seen []netip.Addr
}

func (f *fakeNotifier) ServeNotify(query []byte, client netip.AddrPort) []byte {
	m := new(dns.Msg)
	if m.Unpack(query) != nil || m.Question[0].Name == "garbage." {
		return nil
	}
	f.mu.Lock()
	f.seen = append(f.seen, client.Addr())
	f.mu.Unlock()
	r := new(dns.Msg)
	r.SetReply(m)
	r.Authoritative = true
	b, _ := r.Pack()
	return b
}

// TestNotifier checks that NOTIFY goes to the Notifier when one is set,
// over UDP and TCP, and that what it cannot answer gets FORMERR; UPDATE
// stays NOTIMP.
func TestNotifier(t *testing.T) {
	n := &fakeNotifier{}
	_, addr := startServerWith(t, Config{}, testSnapshot(t, 1), func(s *Server) { s.SetNotifier(n) })
	for _, network := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetNotify("example.com.")
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify {
			t.Errorf("%s: NOTIFY reply %v", network, r)
		}
		q.SetNotify("garbage.")
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeFormatError {
			t.Errorf("%s: NOTIFY without a reply from the Notifier: %v", network, r)
		}
		q.SetQuestion("example.com.", dns.TypeSOA)
		q.Opcode = dns.OpcodeUpdate
		if r := exchange(t, network, addr, q); r.Rcode != dns.RcodeNotImplemented {
			t.Errorf("%s: UPDATE: %v", network, r)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.seen) != 2 || n.seen[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the Notifier saw %v", n.seen)
	}
}

package dnsserver

import (
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

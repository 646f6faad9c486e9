package dnsserver

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLimiterNetworks(t *testing.T) {
	cfg := DefaultRRL()
	cfg.ResponsesPerSecond = 10
	cfg.Slip = 0
	cfg.Exempt = []netip.Prefix{netip.MustParsePrefix("192.0.2.128/25")}
	for _, tc := range []struct {
		name string
		a, b string // b shares a's budget when same is true
		same bool
	}{
		{"same /24", "198.51.100.1", "198.51.100.254", true},
		{"next /24", "198.51.100.1", "198.51.101.1", false},
		{"same /56", "2001:db8:0:ab01::1", "2001:db8:0:abff::2", true},
		{"next /56", "2001:db8:0:ab01::1", "2001:db8:0:ac01::1", false},
		{"IPv4 and IPv6", "198.51.100.1", "::ffff:c633:6402", false}, // not unmapped here: a different family
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(cfg)
			a, b := netip.MustParseAddr(tc.a), netip.MustParseAddr(tc.b)
			for i := range 10 {
				if v := l.check(a); v != rrlSend {
					t.Fatalf("reply %d of the burst limited", i+1)
				}
			}
			if v := l.check(a); v != rrlDrop {
				t.Fatalf("reply 11 within a second: %v, want drop", v)
			}
			want := rrlSend
			if tc.same {
				want = rrlDrop
			}
			if v := l.check(b); v != want {
				t.Errorf("%s after %s's burst: %v, want %v", tc.b, tc.a, v, want)
			}
		})
	}
	l := newLimiter(cfg)
	exempt := netip.MustParseAddr("192.0.2.200")
	for i := range 100 {
		if l.check(exempt) != rrlSend {
			t.Fatalf("exempt client limited at reply %d", i+1)
		}
	}
}

// TestLimiterRate checks the steady rate: after the burst, about one reply
// per interval gets through.
func TestLimiterRate(t *testing.T) {
	cfg := DefaultRRL()
	cfg.ResponsesPerSecond = 50
	cfg.Slip = 0
	l := newLimiter(cfg)
	a := netip.MustParseAddr("203.0.113.9")
	sent := 0
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if l.check(a) == rrlSend {
			sent++
		}
		time.Sleep(time.Millisecond)
	}
	// 50 in the burst, then 50/s for 0.5 s: 75. Sleeps only make it fewer.
	if sent < 60 || sent > 76 {
		t.Errorf("%d replies sent in 0.5 s at 50/s with a burst of 50, want about 75", sent)
	}
}

func TestLimiterSlip(t *testing.T) {
	cfg := DefaultRRL()
	cfg.ResponsesPerSecond = 1
	cfg.Slip = 2
	l := newLimiter(cfg)
	a := netip.MustParseAddr("203.0.113.9")
	l.check(a)
	var got []rrlVerdict
	for range 6 {
		got = append(got, l.check(a))
	}
	want := []rrlVerdict{rrlDrop, rrlSlip, rrlDrop, rrlSlip, rrlDrop, rrlSlip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("limited replies %v, want %v", got, want)
		}
	}
	if l.dropped.Load() != 3 || l.slipped.Load() != 3 {
		t.Errorf("counted %d dropped, %d slipped", l.dropped.Load(), l.slipped.Load())
	}
}

// TestRRLServer floods one client's replies over UDP and checks that the
// burst is answered, the rest dropped or slipped (TC, empty, the question
// echoed), and TCP unaffected.
func TestRRLServer(t *testing.T) {
	cfg := Config{RRL: DefaultRRL()}
	cfg.RRL.ResponsesPerSecond = 5
	s, addr := startServer(t, cfg, testSnapshot(t, 1))
	// 25 queries sent at once, then whatever comes back within a bound:
	// waiting for each would let the budget refill.
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 25 {
		m := newQuery("www.example.com.", dns.TypeA)
		m.Id = uint16(i + 1)
		pkt, _ := m.Pack()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	var answered, slipped int
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 2048)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated {
			slipped++
			if len(r.Answer) != 0 || len(r.Question) != 1 || r.Question[0].Name != "www.example.com." {
				t.Errorf("slipped reply %v", &r)
			}
		} else {
			answered++
		}
	}
	dropped := 25 - answered - slipped
	if answered != 5 || slipped != 10 || dropped != 10 {
		t.Errorf("25 queries at once: %d answered, %d slipped, %d dropped; want the burst of 5 answered and the other 20 split evenly", answered, slipped, dropped)
	}
	for range 20 {
		if r := exchange(t, "tcp", addr, newQuery("www.example.com.", dns.TypeA)); r.Truncated || len(r.Answer) == 0 {
			t.Fatalf("TCP reply limited: %v", r)
		}
	}
	got := scrape(t, s)
	if got[`meridian_dns_rrl_limited_total{action=drop}`] != float64(dropped) || got[`meridian_dns_rrl_limited_total{action=slip}`] != float64(slipped) {
		t.Errorf("metrics %v, %v; saw %d dropped, %d slipped", got[`meridian_dns_rrl_limited_total{action=drop}`], got[`meridian_dns_rrl_limited_total{action=slip}`], dropped, slipped)
	}
}

func TestRRLConfig(t *testing.T) {
	for _, c := range []RRLConfig{
		{ResponsesPerSecond: -1},
		{ResponsesPerSecond: 10, Slip: -1, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1},
		{ResponsesPerSecond: 10, IPv4Prefix: 33, IPv6Prefix: 56, TableSize: 1},
		{ResponsesPerSecond: 10, IPv4Prefix: 24, IPv6Prefix: 8, TableSize: 1},
		{ResponsesPerSecond: 10, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 0},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if d := DefaultRRL(); d.validate() != nil || (RRLConfig{}).validate() != nil {
		t.Error("default or zero RRL config refused")
	}
}

// TestRRLDecidesBeforeAnswering floods a pool name: the limited queries
// are judged before an answer is chosen, so the pool counts only the
// answers sent, and the zone's statistics only the queries answered.
func TestRRLDecidesBeforeAnswering(t *testing.T) {
	cfg := Config{RRL: DefaultRRL()}
	cfg.RRL.ResponsesPerSecond, cfg.RRL.Slip = 5, 0
	s, addr := startServer(t, cfg, poolSnapshot(t, testPool("www.svc.example.")))
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 40 {
		m := newQuery("www.svc.example.", dns.TypeA)
		m.Id = uint16(i + 1)
		pkt, _ := m.Pack()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	answered := 0
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 2048)
	for {
		if _, err := conn.Read(buf); err != nil {
			break
		}
		answered++
	}
	got := scrape(t, s)
	var pool float64
	for k, v := range got {
		if strings.HasPrefix(k, "meridian_pool_answers_total{") {
			pool += v
		}
	}
	if answered != 5 || pool != 5 || got[`meridian_dns_rrl_limited_total{action=drop}`] != 35 {
		t.Errorf("40 queries at once at 5/s: %d answered, %v pool answers chosen, %v dropped; want 5, 5, 35", answered, pool, got[`meridian_dns_rrl_limited_total{action=drop}`])
	}
	if zone := got[`meridian_dns_responses_total{rcode=NOERROR,zone=svc.example.}`]; zone != 5 {
		t.Errorf("zone svc.example. counted %v replies, want the 5 answered", zone)
	}
}

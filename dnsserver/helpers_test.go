package dnsserver

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// testZone is the zone most tests query. It covers every answer kind the
// responder distinguishes.
const testZone = `$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 2026112201 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2
@        MX    10 mail
ns1      A     192.0.2.53
ns2      AAAA  2001:db8::53
www 300  A     192.0.2.1
www 300  AAAA  2001:db8::1
mail     A     192.0.2.25
_sip._tcp SRV  10 5 5060 sip
sip      A     192.0.2.60
alias    CNAME www
chain1   CNAME chain2
chain2   CNAME www
loop1    CNAME loop2
loop2    CNAME loop1
ext      CNAME www.example.org.
dangling CNAME nothere
towild   CNAME host.wild
*.wild   TXT   "wild"
*.wild   A     192.0.2.99
*.cwild  CNAME www
x.a.b    A     192.0.2.7
sub      NS    ns1.sub
sub      NS    ns.elsewhere.net.
ns1.sub  A     192.0.2.200
todeleg  CNAME host.sub
tocut    CNAME sub
caf\195\137 A 192.0.2.77
`

// bigTXT returns n TXT records at big.example.com., too many for UDP.
func bigTXT(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("big.example.com. 3600 IN TXT \"")
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 60))
		b.WriteString("\"\n")
	}
	return b.String()
}

// parseZone turns master-file text into a zones.Zone without the file
// loaders, so these tests depend only on the snapshot.
func parseZone(t testing.TB, origin, text string) *zones.Zone {
	t.Helper()
	z := &zones.Zone{Origin: zones.CanonicalName(origin), Source: "test"}
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "test")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.Records = append(z.Records, zones.Record{RR: rr})
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse zone: %v", err)
	}
	return z
}

func testSnapshot(t testing.TB, version uint64) *zones.Snapshot {
	t.Helper()
	snap, err := zones.Build([]*zones.Zone{
		parseZone(t, "example.com.", testZone+bigTXT(30)),
	}, version)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return snap
}

// startServer runs a server on 127.0.0.1:0 until the test ends and
// returns its address.
func startServer(t testing.TB, cfg Config, snap *zones.Snapshot) (*Server, string) {
	t.Helper()
	cfg.Listen = nil
	return startServerWith(t, cfg, snap, nil)
}

// startServerWith is startServer on cfg.Listen, when set, with setup
// called before the server starts serving.
func startServerWith(t testing.TB, cfg Config, snap *zones.Snapshot, setup func(*Server)) (*Server, string) {
	t.Helper()
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 5 * time.Second
	}
	if cfg.TCPMaxConns == 0 {
		cfg.TCPMaxConns = 100
	}
	if cfg.UDPWorkers == 0 {
		cfg.UDPWorkers = 2
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap != nil {
		s.Publish(snap)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop within 5s")
		}
	})
	return s, s.Addrs()[0].String()
}

// exchange sends m over net ("udp" or "tcp") and returns the reply.
func exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", network, m.Question[0].Name, err)
	}
	return r
}

// rawExchange sends bytes as one query and returns the raw reply, or nil
// when none arrives within the timeout.
func rawExchange(t testing.TB, network, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if network == "tcp" {
		pkt = append([]byte{byte(len(pkt) >> 8), byte(len(pkt))}, pkt...)
	}
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65537)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	if network == "tcp" {
		return buf[2:n]
	}
	return buf[:n]
}

// rrStrings renders a section in lower case (answers may carry the
// query's 0x20 case), sorted.
func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.ToLower(strings.ReplaceAll(rr.String(), "\t", " ")))
	}
	sort.Strings(out)
	return out
}

// wantRRs normalises expected records the same way as rrStrings.
func wantRRs(t testing.TB, rrs ...string) []string {
	t.Helper()
	var parsed []dns.RR
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		parsed = append(parsed, rr)
	}
	return rrStrings(parsed)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustBuild(t testing.TB, zs ...*zones.Zone) *zones.Snapshot {
	t.Helper()
	snap, err := zones.Build(zs, 1)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return snap
}

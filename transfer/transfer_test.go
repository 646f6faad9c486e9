package transfer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/zones"
)

const (
	secret1 = "c2VjcmV0IG9uZSwgMzIgb2N0ZXRzIGxvbmcuLi4uLi4="
	secret2 = "YW5vdGhlciBzZWNyZXQsIDMyIG9jdGV0cyBsb25nLi4="
)

// zoneText is example.com. at serial with v.example.com. holding
// 192.0.2.<gen>, and n filler records.
func zoneText(serial, gen, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN example.com.\n@ 300 IN SOA ns1 hostmaster %d 7200 3600 1209600 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\nv 300 IN A 192.0.2.%d\n", serial, gen)
	for i := range n {
		fmt.Fprintf(&b, "h%d 300 IN TXT \"filler record number %d\"\n", i, i)
	}
	return b.String()
}

func snapshot(t testing.TB, version uint64, prev *zones.Snapshot, texts ...string) *zones.Snapshot {
	t.Helper()
	var zs []*zones.Zone
	for _, text := range texts {
		z, err := zones.ParseMaster(strings.NewReader(text), "test", "example.com.")
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	s, err := zones.Rebuild(prev, zs, version)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServer runs a DNS server on loopback answering transfers with x,
// serving snap, and returns its address.
func startServer(t testing.TB, x *Server, snap *zones.Snapshot) (*dnsserver.Server, string) {
	t.Helper()
	cfg := dnsserver.DefaultConfig()
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.UDPWorkers = 1
	srv, err := dnsserver.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTransferer(x)
	srv.Publish(snap)
	x.Publish(snap)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, srv.Addrs()[0].String()
}

func testConfig() Config {
	return Config{
		Keys: []Key{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: secret1}, {Name: "k512.", Algorithm: "hmac-sha512", Secret: secret2}},
		Allow: []Rule{
			{Zones: []string{"example.com."}, From: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			{Zones: []string{"*"}, Keys: []string{"k512"}},
		},
	}
}

func TestACL(t *testing.T) {
	c := Config{
		Keys: []Key{{Name: "a", Algorithm: "hmac-sha256", Secret: secret1}, {Name: "b", Algorithm: "hmac-sha512", Secret: secret2}},
		Allow: []Rule{
			{Zones: []string{"one."}, From: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			{Zones: []string{"two."}, From: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}, Keys: []string{"a"}},
			{Zones: []string{"*"}, Keys: []string{"b."}},
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := newACL(&c)
	for _, tc := range []struct {
		zone, addr, key string
		want            bool
	}{
		{"one.", "192.0.2.9", "", true},
		{"one.", "::ffff:192.0.2.9", "", true}, // mapped: the IPv4 address
		{"one.", "198.51.100.1", "", false},
		{"one.", "198.51.100.1", "a.", false},
		{"two.", "2001:db8::1", "a.", true},
		{"two.", "2001:db8::1", "", false}, // both asked: address and key
		{"two.", "192.0.2.9", "a.", false},
		{"three.", "203.0.113.1", "b.", true}, // "*" with a key alone
		{"three.", "203.0.113.1", "a.", false},
		{"three.", "192.0.2.9", "", false},
	} {
		if got := a.allowed(tc.zone, netip.MustParseAddr(tc.addr), tc.key); got != tc.want {
			t.Errorf("allowed(%s, %s, %q) = %v, want %v", tc.zone, tc.addr, tc.key, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Key{Name: "k", Algorithm: "hmac-sha256", Secret: secret1}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"algorithm", Config{Keys: []Key{{Name: "k", Algorithm: "hmac-md5", Secret: secret1}}}, "algorithm"},
		{"secret", Config{Keys: []Key{{Name: "k", Algorithm: "hmac-sha256", Secret: "!!"}}}, "base64"},
		{"twice", Config{Keys: []Key{ok, {Name: "K.", Algorithm: "hmac-sha512", Secret: secret2}}}, "twice"},
		{"anyone", Config{Allow: []Rule{{Zones: []string{"*"}}}}, "anyone"},
		{"unknown key", Config{Allow: []Rule{{Zones: []string{"*"}, Keys: []string{"nope"}}}}, "not defined"},
		{"notify address", Config{Notify: []Target{{Zones: []string{"*"}, To: []string{"192.0.2.1"}}}}, "IP:port"},
		{"notify key", Config{Notify: []Target{{Zones: []string{"*"}, To: []string{"192.0.2.1:53"}, Key: "nope"}}}, "not defined"},
		{"fine", Config{Keys: []Key{ok}, Allow: []Rule{{Zones: []string{"*"}, Keys: []string{"k"}}}, Notify: []Target{{Zones: []string{"*"}, To: []string{"[2001:db8::1]:53"}, Key: "k"}}}, ""},
	} {
		err := tc.c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDiffAndJournal(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, c := rr("a.example. 300 IN A 192.0.2.1"), rr("b.example. 300 IN A 192.0.2.2"), rr("c.example. 300 IN A 192.0.2.3")
	bTTL := rr("b.example. 60 IN A 192.0.2.2")
	for _, tc := range []struct {
		name          string
		old, cur      []dns.RR
		wantDel, want string
	}{
		{"nothing", []dns.RR{a, b}, []dns.RR{b, a}, "", ""},
		{"added", []dns.RR{a}, []dns.RR{a, b}, "", "b"},
		{"deleted", []dns.RR{a, b}, []dns.RR{a}, "b", ""},
		{"replaced", []dns.RR{a, b}, []dns.RR{a, c}, "b", "c"},
		{"TTL changed", []dns.RR{a, b}, []dns.RR{a, bTTL}, "b", "b"},
		{"from empty", nil, []dns.RR{a, b}, "", "a b"},
	} {
		del, add := diff(tc.old, tc.cur)
		if got := names(del); got != tc.wantDel {
			t.Errorf("%s: deleted %q, want %q", tc.name, got, tc.wantDel)
		}
		if got := names(add); got != tc.want {
			t.Errorf("%s: added %q, want %q", tc.name, got, tc.want)
		}
	}

	soa := func(n uint32) *dns.SOA {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Serial: n}
	}
	d := func(from, to uint32, n int) *delta {
		return &delta{from: soa(from), to: soa(to), add: make([]dns.RR, n)}
	}
	var j journal
	j.add(d(1, 2, 1), 3, 10)
	j.add(d(2, 3, 1), 3, 10)
	j.add(d(3, 5, 1), 3, 10)
	for _, tc := range []struct {
		from, to uint32
		want     int // deltas in the chain; -1: none
	}{
		{1, 5, 3}, {2, 5, 2}, {3, 5, 1}, {4, 5, -1}, {1, 3, -1}, {5, 5, -1},
	} {
		got := j.chain(tc.from, tc.to)
		if tc.want < 0 && got != nil || tc.want >= 0 && len(got) != tc.want {
			t.Errorf("chain(%d, %d): %d deltas, want %d", tc.from, tc.to, len(got), tc.want)
		}
	}
	j.add(d(5, 6, 1), 3, 10) // beyond 3 deltas: the oldest goes
	if j.chain(1, 6) != nil || len(j.chain(2, 6)) != 3 {
		t.Errorf("journal of 3: %d deltas", len(j.deltas))
	}
	j.add(d(6, 7, 9), 3, 10) // beyond 10 records: old ones go
	if len(j.deltas) != 2 || j.records != 10 {
		t.Errorf("after a large delta: %d deltas, %d records", len(j.deltas), j.records)
	}
	j.add(d(9, 10, 1), 3, 10) // a gap: the chain restarts
	if len(j.deltas) != 1 || j.chain(6, 10) != nil {
		t.Errorf("after a gap: %d deltas", len(j.deltas))
	}
	j.add(d(10, 11, 11), 3, 10) // larger than allowed: nothing kept
	if len(j.deltas) != 0 || j.records != 0 {
		t.Errorf("after a delta too large: %d deltas", len(j.deltas))
	}
}

func names(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.TrimSuffix(rr.Header().Name, ".example."))
	}
	return strings.Join(out, " ")
}

// transfer runs an AXFR or IXFR (from serial) and returns the records
// received, or the rcode and TSIG error of a refusal.
func transfer(t *testing.T, addr string, qtype uint16, serial uint32, keyName, alg, secret string) ([]dns.RR, int, error) {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr("example.com.", serial, "ns1.example.com.", "hostmaster.example.com.")
	} else {
		m.SetAxfr("example.com.")
	}
	tr := &dns.Transfer{DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second}
	if keyName != "" {
		m.SetTsig(keyName, alg, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{keyName: secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []dns.RR
	for env := range ch {
		if env.Error != nil {
			return out, -1, env.Error
		}
		out = append(out, env.RR...)
	}
	return out, dns.RcodeSuccess, nil
}

// rawExchange sends m over TCP (or UDP) and returns the reply.
func rawExchange(t *testing.T, addr, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil && r == nil {
		t.Fatal(err)
	}
	return r
}

func TestTransfers(t *testing.T) {
	x, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v1 := snapshot(t, 1, nil, zoneText(10, 1, 3))
	srv, addr := startServer(t, x, v1)

	// AXFR from an allowed address: the zone as TransferRecords gives it,
	// SOA at both ends.
	got, rcode, err := transfer(t, addr, dns.TypeAXFR, 0, "", "", "")
	if err != nil || rcode != 0 {
		t.Fatalf("AXFR: %v", err)
	}
	want := append(v1.TransferRecords("example.com."), v1.SOA("example.com."))
	if g, w := rrText(got), rrText(want); g != w {
		t.Errorf("AXFR:\n%s\nwant\n%s", g, w)
	}

	// TSIG: a good key (any address, rule 2), then failures.
	if _, _, err := transfer(t, addr, dns.TypeAXFR, 0, "k512.", dns.HmacSHA512, secret2); err != nil {
		t.Errorf("AXFR signed with k512: %v", err)
	}
	for _, tc := range []struct {
		name, key, alg, secret string
		skew                   int64
		terr                   uint16
	}{
		{"clock an hour off", "k512.", dns.HmacSHA512, secret2, 3600, dns.RcodeBadTime},
		{"wrong secret", "k512.", dns.HmacSHA512, secret1, 0, dns.RcodeBadSig},
		{"unknown key", "nope.", dns.HmacSHA256, secret1, 0, dns.RcodeBadKey},
		{"wrong algorithm", "k512.", dns.HmacSHA256, secret2, 0, dns.RcodeBadKey},
	} {
		m := new(dns.Msg)
		m.SetAxfr("example.com.")
		m.SetTsig(tc.key, tc.alg, 300, time.Now().Unix()+tc.skew)
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{tc.key: tc.secret}}
		r, _, _ := c.Exchange(m, addr)
		if r == nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != tc.terr {
			t.Errorf("%s: reply %v, want NOTAUTH with TSIG error %s", tc.name, r, dns.RcodeToString[int(tc.terr)])
		}
	}
	// A zone we do not serve, and one no rule names.
	m := new(dns.Msg)
	m.SetAxfr("other.test.")
	if r := rawExchange(t, addr, "tcp", m); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR of a zone not served: %s", dns.RcodeToString[r.Rcode])
	}
	// AXFR over UDP stays refused (RFC 5936 section 4.2).
	m.SetAxfr("example.com.")
	if r := rawExchange(t, addr, "udp", m); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %s", dns.RcodeToString[r.Rcode])
	}

	// A change: IXFR from the old serial carries it alone.
	v2 := snapshot(t, 2, v1, zoneText(11, 2, 3))
	srv.Publish(v2)
	x.Publish(v2)
	got, _, err = transfer(t, addr, dns.TypeIXFR, 10, "", "", "")
	if err != nil {
		t.Fatalf("IXFR: %v", err)
	}
	wantIXFR := "example.com. SOA 11\nexample.com. SOA 10\nv.example.com. A 192.0.2.1\nexample.com. SOA 11\nv.example.com. A 192.0.2.2\nexample.com. SOA 11"
	if g := brief(got); g != wantIXFR {
		t.Errorf("IXFR from 10:\n%s\nwant\n%s", g, wantIXFR)
	}
	// A change without a new file serial still moves the serial on.
	v3 := snapshot(t, 3, v2, zoneText(11, 3, 3))
	srv.Publish(v3)
	x.Publish(v3)
	if s, _ := v3.Serial("example.com."); s != 12 {
		t.Fatalf("serial after a change without a new file serial: %d", s)
	}
	got, _, _ = transfer(t, addr, dns.TypeIXFR, 10, "k512.", dns.HmacSHA512, secret2)
	if n := strings.Count(brief(got), "SOA"); n != 6 {
		t.Errorf("IXFR 10 -> 12, signed: %d SOA records, want 6:\n%s", n, brief(got))
	}
	// From a serial the journal does not hold: the whole zone (RFC 1995
	// section 4); from the current one: the SOA alone.
	got, _, _ = transfer(t, addr, dns.TypeIXFR, 7, "", "", "")
	if len(got) != len(v3.TransferRecords("example.com."))+1 {
		t.Errorf("IXFR from an unknown serial: %d records", len(got))
	}
	got, _, _ = transfer(t, addr, dns.TypeIXFR, 12, "", "", "")
	if brief(got) != "example.com. SOA 12" {
		t.Errorf("IXFR from the current serial: %s", brief(got))
	}
	// Over UDP an IXFR gets the current SOA alone.
	m = new(dns.Msg)
	m.SetIxfr("example.com.", 10, "ns1.example.com.", "hostmaster.example.com.")
	if r := rawExchange(t, addr, "udp", m); r.Rcode != 0 || brief(r.Answer) != "example.com. SOA 12" {
		t.Errorf("IXFR over UDP: %v", r)
	}
	// An IXFR without the client's SOA is malformed.
	m = new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeIXFR)
	if r := rawExchange(t, addr, "tcp", m); r.Rcode != dns.RcodeFormatError {
		t.Errorf("IXFR without SOA: %s", dns.RcodeToString[r.Rcode])
	}
}

func TestTransferRefusedByAddress(t *testing.T) {
	c := testConfig()
	c.Allow = []Rule{{Zones: []string{"*"}, From: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	x, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, x, snapshot(t, 1, nil, zoneText(1, 1, 0)))
	for _, typ := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		m := new(dns.Msg)
		m.SetQuestion("example.com.", typ)
		if typ == dns.TypeIXFR {
			m.SetIxfr("example.com.", 0, "a.", "b.")
		}
		for _, network := range []string{"tcp", "udp"} {
			if r := rawExchange(t, addr, network, m); r.Rcode != dns.RcodeRefused {
				t.Errorf("%s over %s from an address not allowed: %s", dns.TypeToString[typ], network, dns.RcodeToString[r.Rcode])
			}
		}
	}
}

// TestTransferCut: a client that reads a little of a large transfer and
// goes away costs the server nothing but that connection.
func TestTransferCut(t *testing.T) {
	x, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, x, snapshot(t, 1, nil, zoneText(1, 1, 50000)))
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		m.SetAxfr("example.com.")
		b, _ := m.Pack()
		c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
		io.ReadFull(c, make([]byte, 1000))
		c.Close()
	}
	got, _, err := transfer(t, addr, dns.TypeAXFR, 0, "", "", "")
	if err != nil || len(got) != 50005 {
		t.Errorf("AXFR after cut transfers: %d records, %v", len(got), err)
	}
	if srv.Panics() != 0 {
		t.Errorf("%d panics", srv.Panics())
	}
}

func rrText(rrs []dns.RR) string {
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// brief writes each record as "owner TYPE data-that-matters".
func brief(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.SOA:
			out = append(out, fmt.Sprintf("%s SOA %d", r.Hdr.Name, r.Serial))
		case *dns.A:
			out = append(out, fmt.Sprintf("%s A %s", r.Hdr.Name, r.A))
		default:
			out = append(out, rr.String())
		}
	}
	return strings.Join(out, "\n")
}

// TestConcurrentTransfers runs transfers side by side while new versions
// are published: the records they share are never written (-race).
func TestConcurrentTransfers(t *testing.T) {
	x, err := New(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := snapshot(t, 1, nil, zoneText(1, 1, 2000))
	srv, addr := startServer(t, x, v)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				if _, _, err := transfer(t, addr, dns.TypeAXFR, 0, "k512.", dns.HmacSHA512, secret2); err != nil {
					t.Errorf("AXFR: %v", err)
				}
				transfer(t, addr, dns.TypeIXFR, 1, "", "", "")
			}
		})
	}
	for i := 2; i < 6; i++ {
		v = snapshot(t, uint64(i), v, zoneText(i, i, 2000))
		srv.Publish(v)
		x.Publish(v)
	}
	wg.Wait()
}

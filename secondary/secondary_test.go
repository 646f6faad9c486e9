package secondary

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

const testSecret = "c2Vjb25kYXJ5IHVuaXQgdGVzdCBzZWNyZXQ="

// primary is a tiny primary on loopback: it answers SOA, AXFR and IXFR
// for one zone from versions it holds, and can be told to refuse IXFR
// or to close the connection in the middle of an AXFR.
type primary struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	versions map[uint32][]dns.RR // serial: the zone, SOA first
	serial   uint32
	noIXFR   bool // answer IXFR with NOTIMP
	cut      bool // close the connection after the first AXFR message
	requests []string
}

func zoneText(serial uint32, refresh, retry, expire int, extra string) []dns.RR {
	text := fmt.Sprintf(`$ORIGIN example.net.
$TTL 300
@ IN SOA ns1 hostmaster %d %d %d %d 60
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.1
%s`, serial, refresh, retry, expire, extra)
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		panic(err)
	}
	return rrs
}

func newPrimary(t *testing.T, first []dns.RR) *primary {
	p := &primary{t: t, versions: map[uint32][]dns.RR{}}
	p.set(first)
	// UDP and TCP on one port: the UDP port the kernel picks may be taken
	// for TCP by another test, so try again with another.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	p.addr = pc.LocalAddr().String()
	secrets := map[string]string{"xfr-key.": testSecret}
	udp := &dns.Server{PacketConn: pc, Handler: p, TsigSecret: secrets}
	tcp := &dns.Server{Listener: ln, Handler: p, TsigSecret: secrets}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return p
}

// set makes rrs the zone's current version.
func (p *primary) set(rrs []dns.RR) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := rrs[0].(*dns.SOA).Serial
	p.versions[s], p.serial = rrs, s
}

func (p *primary) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	p.mu.Lock()
	cur := p.versions[p.serial]
	noIXFR, cut := p.noIXFR, p.cut
	q := req.Question[0]
	p.requests = append(p.requests, dns.TypeToString[q.Qtype])
	var old []dns.RR
	if q.Qtype == dns.TypeIXFR && len(req.Ns) == 1 {
		old = p.versions[req.Ns[0].(*dns.SOA).Serial]
	}
	p.mu.Unlock()
	r := new(dns.Msg)
	r.SetReply(req)
	r.Authoritative = true
	sign := func(m *dns.Msg) {
		if ts := req.IsTsig(); ts != nil && w.TsigStatus() == nil {
			m.SetTsig(ts.Hdr.Name, ts.Algorithm, 300, time.Now().Unix())
		}
	}
	if ts := req.IsTsig(); ts != nil && w.TsigStatus() != nil {
		r.SetRcode(req, dns.RcodeNotAuth)
		w.WriteMsg(r)
		return
	}
	switch {
	case cur == nil:
		r.SetRcode(req, dns.RcodeRefused)
	case q.Qtype == dns.TypeSOA:
		r.Answer = cur[:1]
	case q.Qtype == dns.TypeIXFR && noIXFR:
		r.SetRcode(req, dns.RcodeNotImplemented)
	case q.Qtype == dns.TypeIXFR && old != nil:
		r.Answer = append(r.Answer, cur[0], old[0])
		r.Answer = append(r.Answer, minus(old, cur)...)
		r.Answer = append(r.Answer, cur[0])
		r.Answer = append(r.Answer, minus(cur, old)...)
		r.Answer = append(r.Answer, cur[0])
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		all := append(slices.Clone(cur), cur[0])
		if cut {
			r.Answer = all[:2]
			sign(r)
			w.WriteMsg(r)
			w.Close()
			return
		}
		// Two messages, so that the transfer has a middle.
		half := len(all) / 2
		r.Answer = all[:half]
		sign(r)
		w.WriteMsg(r)
		w.TsigTimersOnly(true) // RFC 8945 section 5.3.1
		r = new(dns.Msg)
		r.SetReply(req)
		r.Answer = all[half:]
	default:
		r.SetRcode(req, dns.RcodeRefused)
	}
	sign(r)
	w.WriteMsg(r)
}

// minus returns the records of a that are not in b, the SOA aside.
func minus(a, b []dns.RR) []dns.RR {
	var out []dns.RR
	for _, x := range a[1:] {
		if !slices.ContainsFunc(b[1:], func(y dns.RR) bool { return dns.IsDuplicate(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

func newTestManager(t *testing.T, p *primary, key string) (*Manager, *logbuf.Buffer) {
	t.Helper()
	logs := &logbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(Config{
		Zones:      []Zone{{Origin: "example.net", Primaries: []string{p.addr}, Key: key}},
		Keys:       []Key{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: testSecret}},
		FirstRetry: 200 * time.Millisecond, Timeout: time.Second,
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	return m, logs
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// records returns the served copy's records as sorted strings.
func records(m *Manager) []string {
	zs := m.Zones()
	if len(zs) != 1 {
		return nil
	}
	var out []string
	for _, r := range zs[0].Records {
		out = append(out, r.RR.String())
	}
	slices.Sort(out)
	return out
}

func rrStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// notify sends m a NOTIFY for example.net. from addr, signed with
// secret when it is set, and returns the reply.
func notify(t *testing.T, m *Manager, from, key, secret string) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetNotify("example.net.")
	var wire []byte
	var err error
	if key != "" {
		q.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
		wire, _, err = dns.TsigGenerate(q, secret, "", false)
	} else {
		wire, err = q.Pack()
	}
	if err != nil {
		t.Fatal(err)
	}
	out := m.ServeNotify(wire, netip.AddrPortFrom(netip.MustParseAddr(from), 5353))
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatalf("NOTIFY reply does not unpack: %v", err)
	}
	return r
}

func TestAXFRThenNotifyIXFR(t *testing.T) {
	for _, key := range []string{"", "xfr-key"} {
		t.Run("key="+key, func(t *testing.T) {
			v1 := zoneText(1, 3600, 600, 86400, "")
			p := newPrimary(t, v1)
			m, logs := newTestManager(t, p, key)
			waitFor(t, "the AXFR at start", 5*time.Second, func() bool { s, ok := m.Serial("example.net."); return ok && s == 1 })
			if got := records(m); !slices.Equal(got, rrStrings(v1)) {
				t.Errorf("copy after AXFR:\n%s\nwant:\n%s", got, rrStrings(v1))
			}
			v2 := zoneText(2, 3600, 600, 86400, "new IN A 192.0.2.99\n")
			v2 = slices.DeleteFunc(v2, func(rr dns.RR) bool { return rr.Header().Name == "www.example.net." })
			p.set(v2)
			secret := testSecret
			if key != "" {
				key = dns.Fqdn(key)
			}
			if r := notify(t, m, "127.0.0.1", key, secret); r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify {
				t.Fatalf("NOTIFY reply: %v", r)
			} else if key != "" && r.IsTsig() == nil {
				t.Errorf("the reply to a signed NOTIFY is not signed")
			}
			waitFor(t, "the IXFR after NOTIFY", 5*time.Second, func() bool { s, _ := m.Serial("example.net."); return s == 2 })
			if got := records(m); !slices.Equal(got, rrStrings(v2)) {
				t.Errorf("copy after IXFR:\n%s\nwant:\n%s", got, rrStrings(v2))
			}
			if !strings.Contains(logs.String(), "type=IXFR serial=2") {
				t.Errorf("the change was not taken by IXFR:\n%s", logs.String())
			}
		})
	}
}

func TestIXFRFallsBackToAXFR(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	m, logs := newTestManager(t, p, "")
	waitFor(t, "the AXFR at start", 5*time.Second, func() bool { _, ok := m.Serial("example.net."); return ok })
	p.mu.Lock()
	p.noIXFR = true
	p.mu.Unlock()
	v2 := zoneText(2, 3600, 600, 86400, "new IN A 192.0.2.99\n")
	p.set(v2)
	notify(t, m, "127.0.0.1", "", "")
	waitFor(t, "the AXFR after NOTIFY", 5*time.Second, func() bool { s, _ := m.Serial("example.net."); return s == 2 })
	if got := records(m); !slices.Equal(got, rrStrings(v2)) {
		t.Errorf("copy:\n%s\nwant:\n%s", got, rrStrings(v2))
	}
	if l := logs.String(); !strings.Contains(l, "IXFR failed, trying AXFR") || !strings.Contains(l, "type=AXFR serial=2") {
		t.Errorf("no fallback to AXFR in the log:\n%s", l)
	}
}

// A transfer cut in the middle changes nothing: the old copy is served.
func TestTransferCutKeepsCopy(t *testing.T) {
	v1 := zoneText(1, 3600, 600, 86400, "")
	p := newPrimary(t, v1)
	m, logs := newTestManager(t, p, "")
	waitFor(t, "the AXFR at start", 5*time.Second, func() bool { _, ok := m.Serial("example.net."); return ok })
	p.mu.Lock()
	p.noIXFR, p.cut = true, true
	p.mu.Unlock()
	p.set(zoneText(2, 3600, 600, 86400, "new IN A 192.0.2.99\n"))
	notify(t, m, "127.0.0.1", "", "")
	waitFor(t, "the failed refresh", 5*time.Second, func() bool { return strings.Contains(logs.String(), "Secondary zone refresh failed") })
	if s, _ := m.Serial("example.net."); s != 1 {
		t.Errorf("serial %d after a cut transfer, want 1", s)
	}
	if got := records(m); !slices.Equal(got, rrStrings(v1)) {
		t.Errorf("copy after a cut transfer:\n%s\nwant:\n%s", got, rrStrings(v1))
	}
}

// A zone never transferred is retried; no copy is served meanwhile.
func TestFirstTransferCutRetried(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	p.cut = true
	m, logs := newTestManager(t, p, "")
	waitFor(t, "two failed tries", 5*time.Second, func() bool { return strings.Count(logs.String(), "Secondary zone refresh failed") >= 2 })
	if len(m.Zones()) != 0 {
		t.Fatalf("a copy is served after cut transfers")
	}
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
	waitFor(t, "the transfer after the cut", 5*time.Second, func() bool { _, ok := m.Serial("example.net."); return ok })
}

// The SOA's timers: a change is seen after refresh without a NOTIFY; a
// primary gone is retried every retry, and the zone dropped after
// expire, not before.
func TestRefreshRetryExpire(t *testing.T) {
	p := newPrimary(t, zoneText(1, 1, 1, 3, ""))
	m, logs := newTestManager(t, p, "")
	waitFor(t, "the AXFR at start", 5*time.Second, func() bool { _, ok := m.Serial("example.net."); return ok })
	p.set(zoneText(2, 1, 1, 3, "new IN A 192.0.2.99\n"))
	waitFor(t, "the refresh", 3*time.Second, func() bool { s, _ := m.Serial("example.net."); return s == 2 })

	// The primary refuses everything from now on.
	p.mu.Lock()
	p.versions[p.serial] = nil
	p.mu.Unlock()
	gone := time.Now()
	// Its SOA queries fail; the copy stays until expire (3 s) has passed
	// since the last good refresh, at most a refresh (1 s) before gone.
	waitFor(t, "a retry", 3*time.Second, func() bool { return strings.Count(logs.String(), "Secondary zone refresh failed") >= 2 })
	if _, ok := m.Serial("example.net."); !ok && time.Since(gone) < 1900*time.Millisecond {
		t.Fatalf("expired %s after the primary went away, before expire", time.Since(gone))
	}
	waitFor(t, "the expiry", 5*time.Second, func() bool { return len(m.Zones()) == 0 })
	if took := time.Since(gone); took < 1900*time.Millisecond || took > 4*time.Second {
		t.Errorf("expired %s after the primary went away, want 2 to 3 s", took)
	}
	if !strings.Contains(logs.String(), "Secondary zone expired") {
		t.Errorf("no expiry in the log:\n%s", logs.String())
	}
}

func TestNotifyRefusals(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	m, _ := newTestManager(t, p, "xfr-key")
	for _, c := range []struct {
		name, from, key, secret string
		rcode                   int
	}{
		{"not a primary", "127.0.0.2", "xfr-key.", testSecret, dns.RcodeRefused},
		{"unsigned", "127.0.0.1", "", "", dns.RcodeRefused},
		{"other key", "127.0.0.1", "other-key.", testSecret, dns.RcodeRefused},
		{"wrong secret", "127.0.0.1", "xfr-key.", "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=", dns.RcodeNotAuth},
		{"good", "127.0.0.1", "xfr-key.", testSecret, dns.RcodeSuccess},
	} {
		if r := notify(t, m, c.from, c.key, c.secret); r.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
		}
	}
	q := new(dns.Msg)
	q.SetNotify("other.example.")
	wire, _ := q.Pack()
	r := new(dns.Msg)
	if err := r.Unpack(m.ServeNotify(wire, netip.MustParseAddrPort("127.0.0.1:53"))); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("NOTIFY for a zone not ours: %v %v", r, err)
	}
	if m.ServeNotify([]byte{1, 2, 3}, netip.MustParseAddrPort("127.0.0.1:53")) != nil {
		t.Errorf("a reply to garbage")
	}
}

// A wrong key: the primary refuses, nothing is served.
func TestWrongKeyRefused(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	logs := &logbuf.Buffer{}
	m, err := New(Config{
		Zones:      []Zone{{Origin: "example.net.", Primaries: []string{p.addr}, Key: "xfr-key"}},
		Keys:       []Key{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE="}},
		FirstRetry: 100 * time.Millisecond, Timeout: time.Second,
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m.Run(ctx)
	if len(m.Zones()) != 0 || !strings.Contains(logs.String(), "Secondary zone refresh failed") {
		t.Errorf("transferred with a wrong key:\n%s", logs.String())
	}
}

func TestStore(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	m, _ := newTestManager(t, p, "")
	own := &zones.Zone{Origin: "example.com.", Source: "test"}
	inner := store.NewMemory(own)
	st := m.Store(inner)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 10)
	go st.Watch(ctx, func() { changed <- struct{}{} })
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported for the transfer")
	}
	d, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Zones) != 2 || d.Zones[1].Origin != "example.net." {
		t.Fatalf("zones %v", d.Zones)
	}
	d2, _ := st.Load(ctx)
	if d2.Version <= d.Version {
		t.Errorf("versions %d then %d", d.Version, d2.Version)
	}
	clash := m.Store(store.NewMemory(&zones.Zone{Origin: "example.net.", Source: "x.zone"}))
	if _, err := clash.Load(ctx); err == nil || !strings.Contains(err.Error(), "both a secondary zone") {
		t.Errorf("clash: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Zones: []Zone{{Origin: "a."}}}, "lists no primary"},
		{Config{Zones: []Zone{{Origin: "a.", Primaries: []string{"192.0.2.1"}}}}, "is not IP:port"},
		{Config{Zones: []Zone{{Origin: "a.", Primaries: []string{"192.0.2.1:53"}, Key: "k"}}}, "not defined"},
		{Config{Zones: []Zone{{Origin: "a.", Primaries: []string{"192.0.2.1:53"}}, {Origin: "A", Primaries: []string{"192.0.2.1:53"}}}}, "listed twice"},
		{Config{Keys: []Key{{Name: "k", Algorithm: "hmac-md5", Secret: testSecret}}}, "algorithm"},
		{Config{Zones: []Zone{{Origin: "a.", Primaries: []string{"192.0.2.1:53"}, Overlay: &zones.Zone{Origin: "b.", Source: "b.yaml"}}}}, "the pools file b.yaml is for b."},
		{Config{Zones: []Zone{{Origin: "a.", Primaries: []string{"192.0.2.1:53"}, Overlay: &zones.Zone{Origin: "a.", Source: "a.yaml", Records: []zones.Record{{}}}}}}, "holds records"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}

// The pools of a zone's overlay are added to every copy.
func TestOverlay(t *testing.T) {
	ov, err := zones.ParseYAML([]byte(`origin: example.net.
datacenters:
  - {name: a, lat: 50, lon: 8}
pools:
  - name: geo
    endpoints:
      - {address: 198.51.100.1, datacenter: a}
`), "pools.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	m, err := New(Config{Zones: []Zone{{Origin: "example.net.", Primaries: []string{p.addr}, Overlay: ov}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the AXFR", 5*time.Second, func() bool { return len(m.Zones()) == 1 })
	z := m.Zones()[0]
	if len(z.Pools) != 1 || len(z.Datacenters) != 1 {
		t.Fatalf("copy without the overlay's pools: %+v", z)
	}
	if _, err := zones.Build([]*zones.Zone{z}, 1); err != nil {
		t.Errorf("the copy with its pool does not build: %v", err)
	}
}

package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/zones"
)

// The datacenters of the shared benchmark fixtures.
var testDCs = []zones.Datacenter{
	{Name: "us-east", Lat: 39.0438, Lon: -77.4874, Country: "US", Continent: "NA"},
	{Name: "us-west", Lat: 37.3382, Lon: -121.8863, Country: "US", Continent: "NA"},
	{Name: "eu-west", Lat: 51.5074, Lon: -0.1278, Country: "GB", Continent: "EU"},
	{Name: "eu-central", Lat: 50.1109, Lon: 8.6821, Country: "DE", Continent: "EU"},
	{Name: "ap-southeast", Lat: 1.3521, Lon: 103.8198, Country: "SG", Continent: "AS"},
	{Name: "sa-east", Lat: -23.5505, Lon: -46.6333, Country: "BR", Continent: "SA"},
}

// dcAddrs maps each test datacenter to its addresses: two IPv4, two IPv6.
func dcAddrs(i int) []string {
	n := 10*(i+1) + 1
	return []string{fmt.Sprintf("192.0.2.%d", n), fmt.Sprintf("192.0.2.%d", n+1),
		fmt.Sprintf("2001:db8:%d::1", n-1), fmt.Sprintf("2001:db8:%d::2", n-1)}
}

// dcOf returns the datacenter an answer address belongs to.
func dcOf(addr string) string {
	for i, dc := range testDCs {
		for _, a := range dcAddrs(i) {
			if netip.MustParseAddr(a) == netip.MustParseAddr(addr) {
				return dc.Name
			}
		}
	}
	return "?" + addr
}

// testPool returns a pool over every test datacenter; edit it before use.
func testPool(name string) zones.Pool {
	p := zones.NewPool(name)
	for i, dc := range testDCs {
		for _, a := range dcAddrs(i) {
			p.Endpoints = append(p.Endpoints, zones.Endpoint{
				Addr: netip.MustParseAddr(a), Datacenter: dc.Name, Weight: zones.DefaultWeight,
			})
		}
	}
	return p
}

const poolZone = `$ORIGIN svc.example.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 60
@ NS ns1
ns1 A 192.0.2.2
alias CNAME www
`

func poolSnapshot(t testing.TB, pools ...zones.Pool) *zones.Snapshot {
	t.Helper()
	snap, err := zones.Build(poolSnapshotZones(t, pools...), 1)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return snap
}

func worldDB(t testing.TB) *geo.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "world.mmdb")
	if err := geotest.Write(path, geotest.World); err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func startPoolServer(t testing.TB, db *geo.DB, pools ...zones.Pool) string {
	t.Helper()
	s, addr := startServer(t, Config{}, poolSnapshot(t, pools...))
	if db != nil {
		s.SetGeo(db)
	}
	return addr
}

// ecsQuery asks for name/qtype on behalf of subnet ("" for no ECS).
func ecsQuery(name string, qtype uint16, subnet string) *dns.Msg {
	m := newQuery(name, qtype)
	if subnet == "" {
		return m
	}
	p := netip.MustParsePrefix(subnet)
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	return withEDNS(m, 1232, false, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam,
		SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice())})
}

// answerDCs returns the datacenter of each answer address, in order.
func answerDCs(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, dcOf(rr.A.String()))
		case *dns.AAAA:
			out = append(out, dcOf(rr.AAAA.String()))
		}
	}
	return out
}

func replyScope(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_SUBNET); ok {
				return int(e.SourceScope)
			}
		}
	}
	return -1
}

func TestPoolNearest(t *testing.T) {
	addr := startPoolServer(t, worldDB(t), testPool("www.svc.example."))
	for _, tc := range []struct {
		subnet string
		qtype  uint16
		want   string // datacenters of the 4 answers
		scope  int
	}{
		{"193.99.144.0/24", dns.TypeA, "eu-central eu-central eu-west eu-west", 24},
		{"81.2.69.0/24", dns.TypeA, "eu-west eu-west eu-central eu-central", 24},
		{"128.30.2.0/24", dns.TypeA, "us-east us-east us-west us-west", 24},
		{"171.64.1.0/24", dns.TypeA, "us-west us-west us-east us-east", 14},
		{"203.116.1.0/24", dns.TypeA, "ap-southeast ap-southeast eu-central eu-central", 24},
		{"200.147.67.0/24", dns.TypeA, "sa-east sa-east us-east us-east", 24},
		{"210.130.1.0/24", dns.TypeA, "ap-southeast ap-southeast us-west us-west", 24},
		{"193.99.130.0/24", dns.TypeA, "eu-central eu-central eu-west eu-west", 20},
		{"2a00:1450:4001::/48", dns.TypeAAAA, "eu-central eu-central eu-west eu-west", 48},
		{"2a00:1450:4000::/40", dns.TypeAAAA, "us-east us-east us-west us-west", 40}, // wider than the database's network: unknown
		{"5.0.3.0/24", dns.TypeA, "eu-west eu-west eu-central eu-central", 16},       // country only (FR): same continent first
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+tc.subnet, func(t *testing.T) {
				r := exchange(t, network, addr, ecsQuery("www.svc.example.", tc.qtype, tc.subnet))
				if got := strings.Join(answerDCs(r), " "); got != tc.want {
					t.Errorf("answers from %s, want %s", got, tc.want)
				}
				if s := replyScope(r); s != tc.scope {
					t.Errorf("ECS scope %d, want %d", s, tc.scope)
				}
				for _, rr := range r.Answer {
					if rr.Header().Ttl != 30 || rr.Header().Name != "www.svc.example." {
						t.Errorf("record %s, want TTL 30 owned by the pool name", rr)
					}
				}
			})
		}
	}
}

func TestPoolWithoutECSUsesSourceAddress(t *testing.T) {
	addr := startPoolServer(t, worldDB(t), testPool("www.svc.example."))
	// 127.0.0.1 is in no database: configuration order, and no ECS option.
	r := exchange(t, "udp", addr, newQuery("www.svc.example.", dns.TypeA))
	if got := strings.Join(answerDCs(r), " "); got != "us-east us-east us-west us-west" {
		t.Errorf("answers from %s", got)
	}
	if replyScope(r) != -1 {
		t.Error("ECS option in a reply to a query without one")
	}
	// ECS with source prefix 0: the resolver asks us not to locate.
	r = exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, "0.0.0.0/0"))
	if got := answerDCs(r); len(got) != 4 || got[0] != "us-east" || replyScope(r) != 0 {
		t.Errorf("answers %v scope %d, want configuration order and scope 0", got, replyScope(r))
	}
}

func TestPoolWithoutDatabase(t *testing.T) {
	p := testPool("www.svc.example.")
	p.Geo = zones.GeoRules
	p.Rules = []zones.Rule{{CIDRs: []netip.Prefix{netip.MustParsePrefix("81.2.0.0/16")}, Datacenters: []string{"eu-west"}}}
	addr := startPoolServer(t, nil, p)
	r := exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, "81.2.69.0/24"))
	if got := answerDCs(r); len(got) != 4 || got[0] != "eu-west" || got[2] != "us-east" || replyScope(r) != 16 {
		t.Errorf("answers %v scope %d, want eu-west by CIDR rule, then configuration order, scope 16", got, replyScope(r))
	}
	r = exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, "193.99.144.0/24"))
	// 193.x leaves 81.2.0.0/16 at the first bit: the answer holds for 128.0.0.0/1.
	if got := answerDCs(r); got[0] != "us-east" || replyScope(r) != 1 {
		t.Errorf("answers %v scope %d, want configuration order with scope 1", got, replyScope(r))
	}
}

// setState sets admin and health of the endpoints of datacenter dc.
func setState(p *zones.Pool, dc string, admin zones.AdminState, health zones.HealthState, family int) {
	for i := range p.Endpoints {
		e := &p.Endpoints[i]
		if e.Datacenter == dc && (family < 0 || (family == 1) == e.Addr.Is6()) {
			e.Admin, e.Health = admin, health
		}
	}
}

func TestPoolHealthAndAdmin(t *testing.T) {
	db := worldDB(t)
	frankfurt := "193.99.144.0/24"
	type want struct {
		rcode int
		dcs   string // datacenters of the answers; "" for none
	}
	for _, tc := range []struct {
		name  string
		edit  func(p *zones.Pool)
		check func(t *testing.T, r *dns.Msg)
	}{
		{"one drained, one down: spill", func(p *zones.Pool) {
			p.Endpoints[12].Admin = zones.AdminDrain // 192.0.2.41
			p.Endpoints[13].Health = zones.HealthDown
		}, wantSpill("eu-west", "us-east")},
		{"one drained: the other answers first", func(p *zones.Pool) {
			p.Endpoints[12].Admin = zones.AdminDrain
		}, wantDCs("eu-central eu-west eu-west us-east", "")},
		{"disabled never answered", func(p *zones.Pool) {
			setState(p, "eu-central", zones.AdminDisabled, zones.HealthUp, -1)
		}, wantSpill("eu-west", "us-east")},
		{"unknown counts as up by default", func(p *zones.Pool) {
			setState(p, "eu-central", zones.AdminActive, zones.HealthUnknown, -1)
		}, wantDCs("eu-central eu-central eu-west eu-west", "")},
		{"unknown is down when configured", func(p *zones.Pool) {
			p.UnknownIsUp = false
			setState(p, "eu-central", zones.AdminActive, zones.HealthUnknown, -1)
			for i := range p.Endpoints {
				if p.Endpoints[i].Datacenter != "eu-central" {
					p.Endpoints[i].Health = zones.HealthUp
				}
			}
		}, wantSpill("eu-west", "us-east")},
		{"all down fails open to active endpoints, nearest first", func(p *zones.Pool) {
			for _, dc := range testDCs {
				setState(p, dc.Name, zones.AdminActive, zones.HealthDown, -1)
			}
			setState(p, "eu-west", zones.AdminDrain, zones.HealthDown, -1)
		}, wantDCs("eu-central eu-central us-east us-east", "")},
		{"all down, empty mode answers NODATA", func(p *zones.Pool) {
			p.WhenAllDown = zones.Empty
			for _, dc := range testDCs {
				setState(p, dc.Name, zones.AdminActive, zones.HealthDown, -1)
			}
		}, wantDCs("", "svc.example. 60 IN SOA ns1.svc.example. hostmaster.svc.example. 1 7200 3600 1209600 60")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPool("www.svc.example.")
			tc.edit(&p)
			addr := startPoolServer(t, db, p)
			tc.check(t, exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, frankfurt)))
		})
	}
}

func wantDCs(dcs, soa string) func(t *testing.T, r *dns.Msg) {
	return func(t *testing.T, r *dns.Msg) {
		t.Helper()
		if got := strings.Join(answerDCs(r), " "); got != dcs {
			t.Errorf("answers from %q, want %q", got, dcs)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			t.Errorf("rcode %d AA %v", r.Rcode, r.Authoritative)
		}
		for _, rr := range r.Ns {
			if soa, ok := rr.(*dns.SOA); ok && soa.Serial > 1 {
				// The serial of a zone with pools starts at the clock
				// (zones/serial.go); the file's is 1.
				soa.Serial = 1
			}
		}
		if got, want := rrStrings(r.Ns), wantRRs(t, nonEmpty(soa)...); !equalStrings(got, want) {
			t.Errorf("authority %v, want %v", got, want)
		}
	}
}

// wantSpill accepts an answer that starts with either of the two
// datacenters the nearest one spills to.
func wantSpill(a, b string) func(t *testing.T, r *dns.Msg) {
	return func(t *testing.T, r *dns.Msg) {
		t.Helper()
		got := answerDCs(r)
		if len(got) != 4 || (got[0] != a && got[0] != b) {
			t.Errorf("answers from %v, want %s or %s first", got, a, b)
		}
		for _, dc := range got {
			if dc == "eu-central" {
				t.Errorf("answers %v include the failed datacenter", got)
			}
		}
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func TestPoolFallback(t *testing.T) {
	main := testPool("www.svc.example.")
	main.WhenAllDown = zones.Fallback
	main.FallbackTo = "backup.svc.example."
	for i := range main.Endpoints {
		main.Endpoints[i].Health = zones.HealthDown
	}
	backup := zones.NewPool("backup.svc.example.")
	backup.Endpoints = []zones.Endpoint{{Addr: netip.MustParseAddr("198.51.100.1"), Datacenter: "us-east", Weight: 100}}
	addr := startPoolServer(t, worldDB(t), main, backup)
	r := exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, "193.99.144.0/24"))
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "198.51.100.1" || r.Answer[0].Header().Name != "www.svc.example." {
		t.Errorf("answer %v, want the backup pool's address under the asked name", r.Answer)
	}
}

func TestPoolRulesAndBias(t *testing.T) {
	db := worldDB(t)
	rules := testPool("www.svc.example.")
	rules.Geo = zones.GeoRules
	rules.Rules = []zones.Rule{
		{Countries: []string{"DE"}, Datacenters: []string{"us-west"}},
		{CIDRs: []netip.Prefix{netip.MustParsePrefix("193.99.144.0/24"), netip.MustParsePrefix("203.116.0.0/16")}, Datacenters: []string{"sa-east", "us-east"}},
		{Continents: []string{"OC"}, Datacenters: []string{"ap-southeast"}},
	}
	biased := testPool("biased.svc.example.")
	biased.Bias = map[string]float64{"eu-west": -1000}
	addr := startPoolServer(t, db, rules, biased)
	for _, tc := range []struct {
		name, qname, subnet, want string
	}{
		{"country rule wins over a later CIDR rule", "www", "193.99.144.0/24", "us-west us-west eu-central eu-central"},
		{"CIDR rule", "www", "203.116.1.0/24", "sa-east sa-east us-east us-east"},
		{"continent rule", "www", "1.128.0.0/24", "ap-southeast ap-southeast us-west us-west"},
		{"no rule matches: nearest", "www", "128.30.2.0/24", "us-east us-east us-west us-west"},
		{"bias pulls a farther datacenter first", "biased", "193.99.144.0/24", "eu-west eu-west eu-central eu-central"},
		{"bias does not override a large distance", "biased", "128.30.2.0/24", "us-east us-east eu-west eu-west"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, "udp", addr, ecsQuery(tc.qname+".svc.example.", dns.TypeA, tc.subnet))
			if got := strings.Join(answerDCs(r), " "); got != tc.want {
				t.Errorf("answers from %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPoolFamiliesAndChains(t *testing.T) {
	v4only := zones.NewPool("v4.svc.example.")
	v4only.Endpoints = []zones.Endpoint{{Addr: netip.MustParseAddr("192.0.2.1"), Datacenter: "us-east", Weight: 100}}
	addr := startPoolServer(t, worldDB(t), testPool("www.svc.example."), v4only)

	r := exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeAAAA, "81.2.69.0/24"))
	for _, rr := range r.Answer {
		if _, ok := rr.(*dns.AAAA); !ok {
			t.Errorf("AAAA query answered with %s", rr)
		}
	}
	r = exchange(t, "udp", addr, newQuery("v4.svc.example.", dns.TypeAAAA))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("pool without IPv6: rcode %d answer %v ns %v, want NODATA", r.Rcode, r.Answer, r.Ns)
	}
	r = exchange(t, "udp", addr, newQuery("v4.svc.example.", dns.TypeTXT))
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("TXT at a pool: rcode %d answer %v, want NODATA", r.Rcode, r.Answer)
	}
	r = exchange(t, "tcp", addr, ecsQuery("alias.svc.example.", dns.TypeA, "81.2.69.0/24"))
	if len(r.Answer) != 5 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[1].Header().Name != "www.svc.example." ||
		dcOf(r.Answer[1].(*dns.A).A.String()) != "eu-west" {
		t.Errorf("CNAME to pool: %v", r.Answer)
	}
}

// chooser runs selection directly, for statistics over many queries.
func chooser(t testing.TB, db *geo.DB, p zones.Pool) (*state, *zones.CompiledPool) {
	t.Helper()
	snap := poolSnapshot(t, p)
	st := buildState(snap, db, nil)
	return st, snap.Pools()[0]
}

func TestPoolWeights(t *testing.T) {
	p := zones.NewPool("www.svc.example.")
	p.Geo = zones.GeoNone
	p.MaxAnswers = 1
	for i, w := range []uint32{300, 100, 0} {
		p.Endpoints = append(p.Endpoints, zones.Endpoint{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Datacenter: "us-east", Weight: w})
	}
	st, cp := chooser(t, nil, p)
	counts := map[string]int{}
	rng := uint64(42)
	const n = 20000
	for i := 0; i < n; i++ {
		var ch choice
		st.choose(cp, 0, client{}, &rng, new(orderBuf), nil, nil, &ch)
		counts[ch.eps[0].Addr.String()]++
	}
	if share := float64(counts["192.0.2.1"]) / n; share < 0.72 || share > 0.78 {
		t.Errorf("weight 300 of 400 first in %.3f of answers, want 0.75±0.03 (%v)", share, counts)
	}
	if counts["192.0.2.3"] != 0 {
		t.Errorf("zero-weight backup answered first %d times", counts["192.0.2.3"])
	}
	// With room for all three, the backup comes last.
	cp.MaxAnswers = 3
	var ch choice
	st.choose(cp, 0, client{}, &rng, new(orderBuf), nil, nil, &ch)
	if ch.n != 3 || ch.eps[2].Addr.String() != "192.0.2.3" {
		t.Errorf("answer %v, want the zero-weight endpoint last", ch.eps[:ch.n])
	}
}

func TestPoolSpillProportionalToWeight(t *testing.T) {
	p := testPool("www.svc.example.")
	setState(&p, "eu-central", zones.AdminActive, zones.HealthDown, -1)
	for i := range p.Endpoints { // eu-west weighs 3 times sa-east... but only the 2 nearest count
		if p.Endpoints[i].Datacenter == "eu-west" {
			p.Endpoints[i].Weight = 300
		}
	}
	st, cp := chooser(t, worldDB(t), p)
	c := client{addr: netip.MustParseAddr("193.99.144.1"), bits: 24}
	counts := map[string]int{}
	rng := uint64(7)
	const n = 10000
	for i := 0; i < n; i++ {
		var ch choice
		st.choose(cp, 0, c, &rng, new(orderBuf), nil, nil, &ch)
		counts[dcOf(ch.eps[0].Addr.String())]++
	}
	// Spill 2: eu-west (600) and the next nearest, us-east (200).
	if share := float64(counts["eu-west"]) / n; share < 0.72 || share > 0.78 || counts["eu-west"]+counts["us-east"] != n {
		t.Errorf("first datacenters %v, want eu-west 75%% and us-east 25%%", counts)
	}
}

func TestPoolSticky(t *testing.T) {
	p := zones.NewPool("www.svc.example.")
	p.Geo = zones.GeoNone
	p.Sticky = true
	p.MaxAnswers = 1
	for i := 1; i <= 4; i++ {
		p.Endpoints = append(p.Endpoints, zones.Endpoint{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Datacenter: "us-east", Weight: 100})
	}
	st, cp := chooser(t, nil, p)
	first := func(st *state, cp *zones.CompiledPool, subnet int) netip.Addr {
		var ch choice
		rng := uint64(subnet + 1) // different random state each time: must not matter
		st.choose(cp, 0, client{addr: netip.AddrFrom4([4]byte{10, byte(subnet >> 8), byte(subnet), 0}), bits: 24}, &rng, new(orderBuf), nil, nil, &ch)
		if ch.scope != 24 {
			t.Fatalf("sticky scope %d, want 24", ch.scope)
		}
		return ch.eps[0].Addr
	}
	const clients = 2000
	before := make([]netip.Addr, clients)
	counts := map[netip.Addr]int{}
	for i := range before {
		before[i] = first(st, cp, i)
		if again := first(st, cp, i); again != before[i] {
			t.Fatalf("subnet %d moved from %s to %s between queries", i, before[i], again)
		}
		counts[before[i]]++
	}
	for a, n := range counts {
		if n < clients/4-150 || n > clients/4+150 {
			t.Errorf("%s is first for %d of %d subnets, want about a quarter", a, n, clients)
		}
	}
	p.Endpoints = append(p.Endpoints, zones.Endpoint{Addr: netip.MustParseAddr("192.0.2.5"), Datacenter: "us-east", Weight: 100})
	st2, cp2 := chooser(t, nil, p)
	moved := 0
	for i := range before {
		if a := first(st2, cp2, i); a != before[i] {
			moved++
			if a.String() != "192.0.2.5" {
				t.Errorf("subnet %d moved between old endpoints (%s to %s)", i, before[i], a)
			}
		}
	}
	// Rendezvous hashing moves only the share the new endpoint takes: 1/5.
	if share := float64(moved) / clients; share < 0.15 || share > 0.25 {
		t.Errorf("%.3f of subnets moved after adding a fifth endpoint, want about 0.2", share)
	}
}

func TestExplain(t *testing.T) {
	p := testPool("www.svc.example.")
	p.Endpoints[12].Admin = zones.AdminDrain
	p.Endpoints[13].Health = zones.HealthDown
	p.ShedLoad = 0.8
	for i := range p.Endpoints {
		if p.Endpoints[i].Addr.String() == "192.0.2.62" {
			p.Endpoints[i].Agent = &zones.AgentState{Load: 1, HasLoad: true}
		}
	}
	db := worldDB(t) // first, so that it is closed after the server stops
	s, _ := startServer(t, Config{}, poolSnapshot(t, p))
	s.SetGeo(db)
	e, err := s.Explain("WWW.svc.example", dns.TypeA, netip.MustParsePrefix("193.99.144.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if !e.Located || e.Location.Country != "DE" || e.Network.String() != "193.99.144.0/24" {
		t.Errorf("location %+v in %s", e.Location, e.Network)
	}
	if len(e.Order) != 6 || e.Order[0].Name != "eu-central" || e.Order[1].Name != "eu-west" || e.Order[0].Distance > 400 {
		t.Errorf("order %+v", e.Order)
	}
	if len(e.Answer) != 4 || e.Spill == "" || e.Scope != 24 {
		t.Errorf("answer %v spill %q scope %d", e.Answer, e.Spill, e.Scope)
	}
	reasons := map[string]string{}
	for _, l := range e.LeftOut {
		reasons[l.Addr.String()] = l.Reason
	}
	for addr, want := range map[string]string{
		"192.0.2.41":     "admin state drain",
		"192.0.2.42":     "health down",
		"2001:db8:40::1": "other address family",
		"192.0.2.61":     "eligible, but the answer is cut at max_answers 4",
		"192.0.2.62":     "weight 0: its agent's load or weight percentage leaves it no new clients",
	} {
		if reasons[addr] != want {
			t.Errorf("%s left out for %q, want %q", addr, reasons[addr], want)
		}
	}
	text := e.String()
	for _, want := range []string{"country DE", "1. eu-central", "admin state drain", "ecs scope: /24"} {
		if !strings.Contains(text, want) {
			t.Errorf("explanation lacks %q:\n%s", want, text)
		}
	}
	static, err := s.Explain("ns1.svc.example.", dns.TypeA, netip.MustParsePrefix("193.99.144.0/24"))
	if err != nil || static.Pool != "" || len(static.Records) != 1 {
		t.Errorf("static explanation %+v, %v", static, err)
	}
}

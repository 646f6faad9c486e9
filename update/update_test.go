package update

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

const testZone = `$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster 10 7200 3600 1209600 60
@    IN NS  ns1
@    IN NS  ns2
ns1  IN A   192.0.2.53
ns2  IN A   192.0.2.54
www  IN A   192.0.2.1
www  IN A   192.0.2.2
alias IN CNAME www
_acme-challenge IN TXT "old"
`

func parseZone(t testing.TB) *zones.Zone {
	t.Helper()
	z, err := zones.Parse([]byte(testZone), "example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func rrsOf(z *zones.Zone) []dns.RR {
	out := make([]dns.RR, len(z.Records))
	for i, r := range z.Records {
		out[i] = r.RR
	}
	return out
}

// mustRRs parses RRs, one a line; "NONE" and "ANY" classes with no data
// come out with RDLENGTH 0, as they unpack from the wire.
func mustRRs(t testing.TB, text string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		var rr dns.RR
		var err error
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && (f[2] == "ANY" || f[2] == "NONE"):
			// No data: NewRR does not read these.
			ttl, _ := strconv.Atoi(f[1])
			// An ANY struct packs no data whatever its type; a round trip
			// would make it a typed RR, which packs its empty fields.
			out = append(out, &dns.ANY{Hdr: dns.RR_Header{Name: f[0], Rrtype: dns.StringToType[f[3]], Class: dns.StringToClass[f[2]], Ttl: uint32(ttl)}})
			continue
		case len(f) > 4 && (f[2] == "ANY" || f[2] == "NONE"):
			if rr, err = dns.NewRR(strings.Join(append(f[:2:2], append([]string{"IN"}, f[3:]...)...), " ")); err == nil {
				rr.Header().Class = dns.StringToClass[f[2]]
			}
		default:
			rr, err = dns.NewRR(l)
		}
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		// Through the wire, so that Rdlength is what a client sends.
		m := new(dns.Msg)
		m.Ns = []dns.RR{rr}
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if err := m.Unpack(b); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, m.Ns[0])
	}
	return out
}

func TestCheckPrereqs(t *testing.T) {
	rrs := rrsOf(parseZone(t))
	for _, tc := range []struct {
		name   string
		prereq string
		rcode  int // 0: they hold
	}{
		{"name in use", "www.example.com. 0 ANY ANY", 0},
		{"name in use, not", "nope.example.com. 0 ANY ANY", dns.RcodeNameError},
		{"name not in use", "nope.example.com. 0 NONE ANY", 0},
		{"name not in use, is", "www.example.com. 0 NONE ANY", dns.RcodeYXDomain},
		{"RRset exists", "www.example.com. 0 ANY A", 0},
		{"RRset exists, not", "www.example.com. 0 ANY AAAA", dns.RcodeNXRrset},
		{"RRset does not exist", "www.example.com. 0 NONE AAAA", 0},
		{"RRset does not exist, does", "www.example.com. 0 NONE A", dns.RcodeYXRrset},
		{"value-dependent", "www.example.com. 0 IN A 192.0.2.1\nwww.example.com. 0 IN A 192.0.2.2", 0},
		{"value-dependent, case and order", "WWW.example.com. 0 IN A 192.0.2.2\nwww.example.com. 0 IN A 192.0.2.1", 0},
		{"value-dependent, a subset", "www.example.com. 0 IN A 192.0.2.1", dns.RcodeNXRrset},
		{"value-dependent, another value", "www.example.com. 0 IN A 192.0.2.1\nwww.example.com. 0 IN A 192.0.2.3", dns.RcodeNXRrset},
		{"outside the zone", "www.example.net. 0 ANY ANY", dns.RcodeNotZone},
		{"a TTL", "www.example.com. 60 ANY ANY", dns.RcodeFormatError},
		{"class ANY with data", "www.example.com. 0 ANY A 192.0.2.1", dns.RcodeFormatError},
		{"several, one fails", "www.example.com. 0 ANY A\nnope.example.com. 0 ANY ANY", dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPrereqs("example.com.", rrs, mustRRs(t, tc.prereq))
			got := 0
			if err != nil {
				got = err.(*rcodeError).rcode
			}
			if got != tc.rcode {
				t.Errorf("rcode %s (%v), want %s", dns.RcodeToString[got], err, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

func TestApplyUpdates(t *testing.T) {
	z := parseZone(t)
	for _, tc := range []struct {
		name    string
		update  string
		changed bool
		want    map[string][]string // name type -> data, of the names looked at
	}{
		{"add an RR", `_acme-challenge.example.com. 60 IN TXT "new"`, true,
			map[string][]string{"_acme-challenge.example.com. TXT": {`"new"`, `"old"`}}},
		{"add an RR there: TTL only", `_acme-challenge.example.com. 60 IN TXT "old"`, true,
			map[string][]string{"_acme-challenge.example.com. TXT": {`"old"`}}},
		{"add the same RR", `_acme-challenge.example.com. 300 IN TXT "old"`, false, nil},
		{"delete an RRset", "www.example.com. 0 ANY A", true, map[string][]string{"www.example.com. A": nil}},
		{"delete all RRsets", "_acme-challenge.example.com. 0 ANY ANY", true, map[string][]string{"_acme-challenge.example.com. TXT": nil}},
		{"delete an RR", "www.example.com. 0 NONE A 192.0.2.1", true, map[string][]string{"www.example.com. A": {"192.0.2.2"}}},
		{"delete an RR not there", "www.example.com. 0 NONE A 192.0.2.9", false, nil},
		{"apex: all RRsets keep SOA and NS", "example.com. 0 ANY ANY", false,
			map[string][]string{"example.com. NS": {"ns1.example.com.", "ns2.example.com."}}},
		{"apex: NS RRset stays", "example.com. 0 ANY NS", false, nil},
		{"apex: the last NS stays", "example.com. 0 NONE NS ns1.example.com.\nexample.com. 0 NONE NS ns2.example.com.", true,
			map[string][]string{"example.com. NS": {"ns2.example.com."}}},
		{"apex: SOA never deleted", "example.com. 0 NONE SOA ns1.example.com. hostmaster.example.com. 10 7200 3600 1209600 60", false, nil},
		{"SOA older: ignored", "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 9 7200 3600 1209600 60", false, nil},
		{"SOA newer: replaces", "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 50 7200 3600 1209600 60", true,
			map[string][]string{"example.com. SOA": {"ns1.example.com. hostmaster.example.com. 50 7200 3600 1209600 60"}}},
		{"CNAME next to data: ignored", "www.example.com. 300 IN CNAME ns1.example.com.", false, nil},
		{"data next to a CNAME: ignored", "alias.example.com. 300 IN A 192.0.2.9", false, nil},
		{"CNAME replaces CNAME", "alias.example.com. 300 IN CNAME ns1.example.com.", true,
			map[string][]string{"alias.example.com. CNAME": {"ns1.example.com."}}},
		{"in order: add then delete", "new.example.com. 300 IN A 192.0.2.9\nnew.example.com. 0 ANY A", true,
			map[string][]string{"new.example.com. A": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rrsOf(z)
			text := make([]string, len(before))
			for i, r := range before {
				text[i] = r.String()
			}
			out, changed := applyUpdates("example.com.", before, mustRRs(t, tc.update))
			if changed != tc.changed {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			for i, r := range before {
				if r.String() != text[i] {
					t.Errorf("the input changed: %s", r)
				}
			}
			for k, want := range tc.want {
				name, typ, _ := strings.Cut(k, " ")
				var got []string
				for _, r := range out {
					if canonical(r.Header().Name) == name && dns.TypeToString[r.Header().Rrtype] == typ {
						got = append(got, strings.SplitN(r.String(), "\t", 5)[4])
					}
				}
				sort.Strings(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	r := compile(Rule{Key: "k", Zones: []string{"Example.com"}, Names: []string{"_acme-challenge", "*.dyn", "host.example.com.", "@"}, Types: []string{"txt", "A"}})
	for _, tc := range []struct {
		name string
		t    uint16
		ok   bool
	}{
		{"_acme-challenge.example.com.", dns.TypeTXT, true},
		{"_acme-challenge.example.com.", dns.TypeAAAA, false},
		{"_acme-challenge.example.com.", dns.TypeANY, false},
		{"x._acme-challenge.example.com.", dns.TypeTXT, false},
		{"a.dyn.example.com.", dns.TypeA, true},
		{"a.b.dyn.example.com.", dns.TypeA, true},
		{"dyn.example.com.", dns.TypeA, false},
		{"host.example.com.", dns.TypeA, true},
		{"example.com.", dns.TypeTXT, true},
		{"www.example.com.", dns.TypeA, false},
	} {
		if got := r.allows("example.com.", tc.name, tc.t); got != tc.ok {
			t.Errorf("%s %s: %v, want %v", tc.name, dns.TypeToString[tc.t], got, tc.ok)
		}
	}
	if r.allows("example.net.", "_acme-challenge.example.net.", dns.TypeTXT) {
		t.Error("allowed in another zone")
	}
	all := compile(Rule{Key: "k", Zones: []string{"example.com."}})
	if !all.allows("example.com.", "x.example.com.", dns.TypeANY) {
		t.Error("a rule without names and types does not allow everything")
	}
}

func TestConfigValidate(t *testing.T) {
	key := Key{Name: "k", Algorithm: "hmac-sha256", Secret: "c2VjcmV0"}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Keys: []Key{key}, Rules: []Rule{{Key: "k", Zones: []string{"example.com."}}}}, ""},
		{Config{Keys: []Key{key}, Rules: []Rule{{Key: "other", Zones: []string{"example.com."}}}}, "not defined"},
		{Config{Keys: []Key{key}, Rules: []Rule{{Key: "k"}}}, "no zones"},
		{Config{Keys: []Key{key}, Rules: []Rule{{Key: "k", Zones: []string{"example.com."}, Types: []string{"NOPE"}}}}, "unknown type"},
		{Config{Keys: []Key{{Name: "k", Algorithm: "md5", Secret: "c2VjcmV0"}}}, "algorithm"},
		{Config{Keys: []Key{{Name: "k", Algorithm: "hmac-sha256", Secret: "!"}}}, "base64"},
	} {
		err := tc.c.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

// memBackend holds one zone in memory.
type memBackend struct {
	z     *zones.Zone
	calls int
}

func (b *memBackend) Update(_ context.Context, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
	b.calls++
	if origin != b.z.Origin {
		return ErrNoZone
	}
	rrs, err := change(b.z)
	if err != nil {
		return err
	}
	nz := *b.z
	nz.Records = nil
	for _, rr := range rrs {
		nz.Records = append(nz.Records, zones.Record{RR: rr})
	}
	b.z = &nz
	return nil
}

const testSecret = "c2VjcmV0IG9mIHRoZSB1cGRhdGUgdGVzdA=="

func newTestUpdater(t testing.TB) (*Updater, *memBackend) {
	t.Helper()
	b := &memBackend{z: parseZone(t)}
	u, err := New(Config{
		Keys: []Key{{Name: "acme", Algorithm: "hmac-sha256", Secret: testSecret}},
		Rules: []Rule{
			{Key: "acme", Zones: []string{"example.com."}, Names: []string{"_acme-challenge"}, Types: []string{"TXT"}},
		},
	}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u, b
}

// signed packs m signed with key and secret, and returns it and its MAC.
func signed(t testing.TB, m *dns.Msg, key, secret string) ([]byte, string) {
	t.Helper()
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	b, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

func TestServeUpdate(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.200:5353")
	for _, tc := range []struct {
		name   string
		zone   string
		prereq string
		update string
		key    string // "": unsigned
		secret string
		rcode  int
		serial uint32
	}{
		{"adds", "example.com.", "", `_acme-challenge.example.com. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeSuccess, 11},
		{"removes", "example.com.", "", `_acme-challenge.example.com. 0 ANY TXT`, "acme.", testSecret, dns.RcodeSuccess, 11},
		{"changes nothing", "example.com.", "", `_acme-challenge.example.com. 0 NONE TXT "absent"`, "acme.", testSecret, dns.RcodeSuccess, 10},
		{"prerequisite fails", "example.com.", "_acme-challenge.example.com. 0 NONE ANY", `_acme-challenge.example.com. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeYXDomain, 10},
		{"outside the policy", "example.com.", "", `www.example.com. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeRefused, 10},
		{"one outside the policy: none applied", "example.com.", "", "_acme-challenge.example.com. 60 IN TXT \"t\"\nwww.example.com. 0 ANY A", "acme.", testSecret, dns.RcodeRefused, 10},
		{"unsigned", "example.com.", "", `_acme-challenge.example.com. 60 IN TXT "token"`, "", "", dns.RcodeRefused, 10},
		{"bad secret", "example.com.", "", `_acme-challenge.example.com. 60 IN TXT "token"`, "acme.", "b3RoZXI=", dns.RcodeNotAuth, 10},
		{"unknown key", "example.com.", "", `_acme-challenge.example.com. 60 IN TXT "token"`, "other.", testSecret, dns.RcodeNotAuth, 10},
		{"not our zone", "example.net.", "", `_acme-challenge.example.net. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeNotAuth, 10},
		{"outside the zone", "example.com.", "", `_acme-challenge.example.net. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeNotZone, 10},
		{"meta type", "example.com.", "", `_acme-challenge.example.com. 0 ANY AXFR`, "acme.", testSecret, dns.RcodeFormatError, 10},
		{"a DNSSEC type", "example.com.", "", `_acme-challenge.example.com. 0 ANY RRSIG`, "acme.", testSecret, dns.RcodeRefused, 10},
		{"a prerequisite outside the zone", "example.com.", "www.example.net. 0 ANY ANY", `_acme-challenge.example.com. 60 IN TXT "token"`, "acme.", testSecret, dns.RcodeNotZone, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, b := newTestUpdater(t)
			m := new(dns.Msg)
			m.SetUpdate(tc.zone)
			if tc.prereq != "" {
				m.Answer = mustRRs(t, tc.prereq)
			}
			m.Ns = mustRRs(t, tc.update)
			var q []byte
			var mac string
			if tc.key == "" {
				q, _ = m.Pack()
			} else {
				q, mac = signed(t, m, tc.key, tc.secret)
			}
			out := u.ServeUpdate(q, client)
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatalf("reply: %v", err)
			}
			if r.Rcode != tc.rcode || r.Opcode != dns.OpcodeUpdate || !r.Response {
				t.Errorf("rcode %s opcode %d, want %s", dns.RcodeToString[r.Rcode], r.Opcode, dns.RcodeToString[tc.rcode])
			}
			if r.Rcode == dns.RcodeSuccess || r.Rcode == dns.RcodeRefused && tc.key != "" {
				if ts := r.IsTsig(); ts == nil {
					t.Error("reply not signed")
				} else if err := dns.TsigVerify(out, tc.secret, mac, false); err != nil {
					t.Errorf("reply TSIG: %v", err)
				}
			}
			var serial uint32
			for _, r := range b.z.Records {
				if soa, ok := r.RR.(*dns.SOA); ok {
					serial = soa.Serial
				}
			}
			if serial != tc.serial {
				t.Errorf("serial %d, want %d", serial, tc.serial)
			}
		})
	}
}

func TestServeUpdateNotUpdate(t *testing.T) {
	u, _ := newTestUpdater(t)
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	q, _ := m.Pack()
	if u.ServeUpdate(q, netip.AddrPort{}) != nil || u.ServeUpdate([]byte{1, 2, 3}, netip.AddrPort{}) != nil {
		t.Error("a reply to a query that is no UPDATE")
	}
}

func FuzzServeUpdate(f *testing.F) {
	u, _ := newTestUpdater(f)
	m := new(dns.Msg)
	m.SetUpdate("example.com.")
	m.Answer = mustRRs(f, "www.example.com. 0 ANY A")
	m.Ns = mustRRs(f, "_acme-challenge.example.com. 60 IN TXT \"x\"\nwww.example.com. 0 NONE A 192.0.2.1")
	plain, _ := m.Pack()
	f.Add(plain)
	q, _ := signed(f, m, "acme.", testSecret)
	f.Add(q)
	f.Fuzz(func(t *testing.T, q []byte) {
		out := u.ServeUpdate(q, netip.MustParseAddrPort("127.0.0.1:1"))
		if out == nil {
			return
		}
		if err := new(dns.Msg).Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
	})
}

func TestPrescanPoolsAndDNSSEC(t *testing.T) {
	z := parseZone(t)
	z.Pools = []zones.Pool{zones.NewPool("pool.example.com.")}
	for _, tc := range []struct {
		update string
		rcode  int
	}{
		{"pool.example.com. 60 IN A 192.0.2.9", dns.RcodeRefused},
		{"POOL.example.com. 0 ANY ANY", dns.RcodeRefused},
		{"x.pool.example.com. 60 IN A 192.0.2.9", 0},
		{"example.com. 0 ANY DNSKEY", dns.RcodeRefused},
		{"example.com. 0 ANY NSEC", dns.RcodeRefused},
		{"www.example.com. 60 IN TXT \"ok\"", 0},
		{"www.example.com. 60 ANY A", dns.RcodeFormatError},
		{"www.example.com. 60 NONE A 192.0.2.1", dns.RcodeFormatError},
		{"www.example.com. 60 CH TXT \"x\"", dns.RcodeFormatError},
	} {
		err := prescan(z, mustRRs(t, tc.update))
		got := 0
		if err != nil {
			got = err.(*rcodeError).rcode
		}
		if got != tc.rcode {
			t.Errorf("%s: %s (%v), want %s", tc.update, dns.RcodeToString[got], err, dns.RcodeToString[tc.rcode])
		}
	}
}

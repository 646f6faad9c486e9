package dnsserver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

const negSOA = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2026112201 7200 3600 1209600 300"

// Case is one query and the reply expected from the test zone.
type Case struct {
	Name   string
	Qname  string
	Qtype  uint16
	Rcode  int
	NoAA   bool // referrals and REFUSED are not authoritative
	Answer []string
	Ns     []string
	Extra  []string
}

var authoritativeCases = []Case{
	{Name: "exact A", Qname: "www.example.com.", Qtype: dns.TypeA,
		Answer: []string{"www.example.com. 300 IN A 192.0.2.1"}},
	{Name: "exact AAAA", Qname: "www.example.com.", Qtype: dns.TypeAAAA,
		Answer: []string{"www.example.com. 300 IN AAAA 2001:db8::1"}},
	{Name: "0x20 case", Qname: "wWw.ExAmPlE.cOm.", Qtype: dns.TypeA,
		Answer: []string{"www.example.com. 300 IN A 192.0.2.1"}},
	{Name: "NODATA has SOA with negative TTL", Qname: "www.example.com.", Qtype: dns.TypeTXT,
		Ns: []string{negSOA}},
	{Name: "NXDOMAIN has SOA with negative TTL", Qname: "nothere.example.com.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError, Ns: []string{negSOA}},
	{Name: "apex SOA", Qname: "example.com.", Qtype: dns.TypeSOA,
		Answer: []string{"example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2026112201 7200 3600 1209600 300"}},
	{Name: "apex NS with glue", Qname: "example.com.", Qtype: dns.TypeNS,
		Answer: []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."},
		Extra:  []string{"ns1.example.com. 3600 IN A 192.0.2.53", "ns2.example.com. 3600 IN AAAA 2001:db8::53"}},
	{Name: "MX target address", Qname: "example.com.", Qtype: dns.TypeMX,
		Answer: []string{"example.com. 3600 IN MX 10 mail.example.com."},
		Extra:  []string{"mail.example.com. 3600 IN A 192.0.2.25"}},
	{Name: "SRV target address", Qname: "_sip._tcp.example.com.", Qtype: dns.TypeSRV,
		Answer: []string{"_sip._tcp.example.com. 3600 IN SRV 10 5 5060 sip.example.com."},
		Extra:  []string{"sip.example.com. 3600 IN A 192.0.2.60"}},
	{Name: "CNAME chased in zone", Qname: "alias.example.com.", Qtype: dns.TypeA,
		Answer: []string{"alias.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.1"}},
	{Name: "CNAME chased to NODATA", Qname: "alias.example.com.", Qtype: dns.TypeTXT,
		Answer: []string{"alias.example.com. 3600 IN CNAME www.example.com."}, Ns: []string{negSOA}},
	{Name: "CNAME query gets the CNAME", Qname: "alias.example.com.", Qtype: dns.TypeCNAME,
		Answer: []string{"alias.example.com. 3600 IN CNAME www.example.com."}},
	{Name: "CNAME chain", Qname: "chain1.example.com.", Qtype: dns.TypeAAAA,
		Answer: []string{"chain1.example.com. 3600 IN CNAME chain2.example.com.",
			"chain2.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 300 IN AAAA 2001:db8::1"}},
	{Name: "CNAME loop ends", Qname: "loop1.example.com.", Qtype: dns.TypeA,
		Answer: []string{"loop1.example.com. 3600 IN CNAME loop2.example.com.", "loop2.example.com. 3600 IN CNAME loop1.example.com."}},
	{Name: "out-of-zone CNAME left to resolver", Qname: "ext.example.com.", Qtype: dns.TypeA,
		Answer: []string{"ext.example.com. 3600 IN CNAME www.example.org."}},
	{Name: "CNAME to missing name is NXDOMAIN (RFC 6604)", Qname: "dangling.example.com.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError, Answer: []string{"dangling.example.com. 3600 IN CNAME nothere.example.com."}, Ns: []string{negSOA}},
	{Name: "CNAME into wildcard", Qname: "towild.example.com.", Qtype: dns.TypeA,
		Answer: []string{"towild.example.com. 3600 IN CNAME host.wild.example.com.", "host.wild.example.com. 3600 IN A 192.0.2.99"}},
	{Name: "wildcard A", Qname: "foo.wild.example.com.", Qtype: dns.TypeA,
		Answer: []string{"foo.wild.example.com. 3600 IN A 192.0.2.99"}},
	{Name: "wildcard several labels deep", Qname: "a.b.wild.example.com.", Qtype: dns.TypeTXT,
		Answer: []string{`a.b.wild.example.com. 3600 IN TXT "wild"`}},
	{Name: "wildcard NODATA", Qname: "foo.wild.example.com.", Qtype: dns.TypeAAAA,
		Ns: []string{negSOA}},
	{Name: "wildcard CNAME chased", Qname: "x.cwild.example.com.", Qtype: dns.TypeA,
		Answer: []string{"x.cwild.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.1"}},
	{Name: "empty non-terminal is NODATA", Qname: "a.b.example.com.", Qtype: dns.TypeA,
		Ns: []string{negSOA}},
	{Name: "empty non-terminal parent is NODATA", Qname: "b.example.com.", Qtype: dns.TypeA,
		Ns: []string{negSOA}},
	{Name: "below empty non-terminal is NXDOMAIN", Qname: "y.a.b.example.com.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError, Ns: []string{negSOA}},
	{Name: "referral below cut", Qname: "host.sub.example.com.", Qtype: dns.TypeA, NoAA: true,
		Ns:    []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."},
		Extra: []string{"ns1.sub.example.com. 3600 IN A 192.0.2.200"}},
	{Name: "referral at cut", Qname: "sub.example.com.", Qtype: dns.TypeNS, NoAA: true,
		Ns:    []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."},
		Extra: []string{"ns1.sub.example.com. 3600 IN A 192.0.2.200"}},
	{Name: "glue is not authoritative data", Qname: "ns1.sub.example.com.", Qtype: dns.TypeA, NoAA: true,
		Ns:    []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."},
		Extra: []string{"ns1.sub.example.com. 3600 IN A 192.0.2.200"}},
	// RFC 1034 section 4.3.2: the chain (authoritative) restarts at a
	// name below a cut, which yields the referral (step 3b).
	{Name: "CNAME into a delegation", Qname: "todeleg.example.com.", Qtype: dns.TypeA,
		Answer: []string{"todeleg.example.com. 3600 IN CNAME host.sub.example.com."},
		Ns:     []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."},
		Extra:  []string{"ns1.sub.example.com. 3600 IN A 192.0.2.200"}},
	{Name: "CNAME to a delegation point", Qname: "tocut.example.com.", Qtype: dns.TypeMX,
		Answer: []string{"tocut.example.com. 3600 IN CNAME sub.example.com."},
		Ns:     []string{"sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.elsewhere.net."},
		Extra:  []string{"ns1.sub.example.com. 3600 IN A 192.0.2.200"}},
	{Name: "CNAME to a delegation point, DS from the parent", Qname: "tocut.example.com.", Qtype: dns.TypeDS,
		Answer: []string{"tocut.example.com. 3600 IN CNAME sub.example.com."}, Ns: []string{negSOA}},
	{Name: "DS at cut answered by parent", Qname: "sub.example.com.", Qtype: dns.TypeDS,
		Ns: []string{negSOA}},
	// RFC 4343: case folds in ASCII only; \195\137 is É in UTF-8, and
	// é (\195\169) is another name.
	{Name: "octets above 127 match exactly", Qname: "caf\\195\\137.example.com.", Qtype: dns.TypeA,
		Answer: []string{"caf\\195\\137.example.com. 3600 IN A 192.0.2.77"}},
	{Name: "ASCII letters fold next to octets above 127", Qname: "CAF\\195\\137.EXAMPLE.com.", Qtype: dns.TypeA,
		Answer: []string{"caf\\195\\137.example.com. 3600 IN A 192.0.2.77"}},
	{Name: "no Unicode case folding", Qname: "caf\\195\\169.example.com.", Qtype: dns.TypeA,
		Rcode: dns.RcodeNameError, Ns: []string{negSOA}},
	{Name: "ANY answered with one RRset (RFC 8482)", Qname: "www.example.com.", Qtype: dns.TypeANY,
		Answer: []string{"www.example.com. 300 IN A 192.0.2.1"}},
	{Name: "outside our zones", Qname: "www.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused, NoAA: true},
	{Name: "AXFR refused", Qname: "example.com.", Qtype: dns.TypeAXFR, Rcode: dns.RcodeRefused, NoAA: true},
	{Name: "IXFR refused", Qname: "example.com.", Qtype: dns.TypeIXFR, Rcode: dns.RcodeRefused, NoAA: true},
}

func TestAuthoritativeAnswers(t *testing.T) {
	_, addr := startServer(t, Config{}, testSnapshot(t, 1))
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range authoritativeCases {
			t.Run(network+"/"+tc.Name, func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion(tc.Qname, tc.Qtype)
				if tc.Qtype == dns.TypeIXFR {
					m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: tc.Qname, Rrtype: dns.TypeSOA, Class: dns.ClassINET}, Ns: "a.", Mbox: "b."}}
				}
				r := exchange(t, network, addr, m)
				checkReply(t, tc, m, r)
			})
		}
	}
}

func checkReply(t *testing.T, tc Case, q, r *dns.Msg) {
	t.Helper()
	if r.Id != q.Id || !r.Response {
		t.Errorf("id %d response %v, want id %d and QR", r.Id, r.Response, q.Id)
	}
	if r.Rcode != tc.Rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.Rcode])
	}
	if r.Authoritative == tc.NoAA {
		t.Errorf("AA = %v, want %v", r.Authoritative, !tc.NoAA)
	}
	if r.Truncated {
		t.Errorf("unexpected TC")
	}
	if len(r.Question) != 1 || r.Question[0].Name != q.Question[0].Name {
		t.Errorf("question %v, want %q with its case preserved", r.Question, q.Question[0].Name)
	}
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", rrStrings(r.Answer), wantRRs(t, tc.Answer...)},
		{"authority", rrStrings(r.Ns), wantRRs(t, tc.Ns...)},
		{"additional", rrStrings(r.Extra), wantRRs(t, tc.Extra...)},
	} {
		if !equalStrings(sec.got, sec.want) {
			t.Errorf("%s section:\n got  %s\n want %s", sec.name, strings.Join(sec.got, "\n      "), strings.Join(sec.want, "\n      "))
		}
	}
}

// TestParentAndChildZone serves a zone and its delegated child: the child
// answers for itself, except DS at its apex, which is the parent's data
// (RFC 4035 section 3.1.4.1), with the parent's SOA when it has none.
func TestParentAndChildZone(t *testing.T) {
	child := parseZone(t, "sub.example.com.", `$ORIGIN sub.example.com.
$TTL 120
@    SOA ns1 hostmaster 7 3600 900 604800 120
@    NS  ns1
ns1  A   192.0.2.200
host A   192.0.2.201
`)
	withDS := parseZone(t, "example.com.", testZone+"sub DS 12345 13 2 "+strings.Repeat("ab", 32)+"\n")
	childSOA := "sub.example.com. 120 IN SOA ns1.sub.example.com. hostmaster.sub.example.com. 7 3600 900 604800 120"
	for _, tc := range []struct {
		parent *zones.Zone
		c      Case
	}{
		{parseZone(t, "example.com.", testZone), Case{Name: "DS at the child apex from the parent", Qname: "sub.example.com.", Qtype: dns.TypeDS, Ns: []string{negSOA}}},
		{withDS, Case{Name: "DS at the child apex, signed delegation", Qname: "sub.example.com.", Qtype: dns.TypeDS,
			Answer: []string{"sub.example.com. 3600 IN DS 12345 13 2 " + strings.Repeat("ab", 32)}}},
		{withDS, Case{Name: "SOA at the child apex from the child", Qname: "sub.example.com.", Qtype: dns.TypeSOA, Answer: []string{childSOA}}},
		{withDS, Case{Name: "data below the cut from the child", Qname: "host.sub.example.com.", Qtype: dns.TypeA, Answer: []string{"host.sub.example.com. 120 IN A 192.0.2.201"}}},
		{withDS, Case{Name: "DS below the child apex from the child", Qname: "host.sub.example.com.", Qtype: dns.TypeDS, Ns: []string{childSOA}}},
	} {
		t.Run(tc.c.Name, func(t *testing.T) {
			_, addr := startServer(t, Config{}, mustBuild(t, tc.parent, child))
			m := newQuery(tc.c.Qname, tc.c.Qtype)
			checkReply(t, tc.c, m, exchange(t, "udp", addr, m))
		})
	}
}

package zones

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// apexText starts every zone of the validation tables: SOA at line 2, NS
// at line 3.
const apexText = "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"

func mustMaster(t *testing.T, text string) *Zone {
	t.Helper()
	z, err := ParseMaster(strings.NewReader(text), "v.zone", "example.com.")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		text string   // after apexText, so from line 4
		want []string // "line: message" prefixes, in order
	}{
		{"minimal", "", nil},
		{"glue and DS at a cut", "sub NS ns.sub\nsub DS 1 13 2 abcd\nns.sub A 192.0.2.1\nns.sub AAAA 2001:db8::1\nsub A 192.0.2.2\n", nil},
		{"wildcards", "* A 192.0.2.1\n*.w CNAME www\na.*.w TXT x\n", nil},
		{"CNAME with its DNSSEC records", "www CNAME a\nwww RRSIG CNAME 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA\nwww NSEC z A\n", nil},
		{"exact duplicates", "www A 192.0.2.1\nWWW A 192.0.2.1\nwww CNAME a\n", []string{
			"6: CNAME and other data at www.example.com.: CNAME at line 6, A at line 4",
		}},
		{"TTL differs", "www 60 A 192.0.2.1\nwww 30 A 192.0.2.1\nwww 60 A 192.0.2.2\n", []string{
			"5: conflicting TTLs in the www.example.com. A RRset: 30 here, 60 at line 4",
		}},
		{"RRSIG TTLs may differ", "www A 192.0.2.1\nwww 60 RRSIG A 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA\nwww 30 RRSIG A 13 3 3600 20300101000000 20200101000000 2 example.com. AAAA\n", nil},
		{"CNAME case-insensitively beside data", "Www CNAME a\nwWW MX 10 mx\nwww TXT x\n", []string{
			"5: CNAME and other data at www.example.com.: CNAME at line 4, MX at line 5",
			"6: CNAME and other data at www.example.com.: CNAME at line 4, TXT at line 6",
		}},
		{"three CNAMEs", "www CNAME a\nwww CNAME b\nwww CNAME c\n", []string{
			"5: second CNAME at www.example.com. (the first is at line 4)",
			"6: second CNAME at www.example.com. (the first is at line 4)",
		}},
		{"apex CNAME", "example.com. CNAME a\n", []string{
			"4: CNAME at the zone apex example.com.",
		}},
		{"out of zone", "www.example.org. A 192.0.2.1\nexample.com.au. A 192.0.2.1\nnotexample.com. A 192.0.2.1\n", []string{
			"4: out-of-zone record www.example.org. in zone example.com.",
			"5: out-of-zone record example.com.au. in zone example.com.",
			"6: out-of-zone record notexample.com. in zone example.com.",
		}},
		{"SOA below the apex", "www SOA a b 1 2 3 4 5\n", []string{
			"4: SOA record for www.example.com. is not at the zone apex example.com.",
		}},
		{"second SOA", "@ SOA ns1 hostmaster 2 7200 3600 1209600 300\n", []string{
			"4: second SOA record for zone example.com. (the first is at line 2)",
		}},
		{"occluded", "sub NS ns.sub\nsub TXT x\na.sub MX 10 mx\nb.a.sub A 192.0.2.1\n*.sub TXT y\n", []string{
			"5: sub.example.com. TXT record is occluded by the delegation at sub.example.com.",
			"6: a.sub.example.com. MX record is occluded by the delegation at sub.example.com.",
			"8: *.sub.example.com. TXT record is occluded by the delegation at sub.example.com.",
		}},
		{"nested cuts", "a NS ns\nb.a NS ns\nc.b.a DS 1 13 2 abcd\n", []string{
			"5: b.a.example.com. NS record is occluded by the delegation at a.example.com.",
			"6: c.b.a.example.com. DS record is occluded by the delegation at a.example.com.",
		}},
		{"wildcard NS", "*.w NS ns\nx.*.w TXT x\n", []string{
			"4: NS records at the wildcard *.w.example.com. (RFC 4592 section 4.2)",
		}},
		{"unpackable", "www DS 1 13 2 abc\n", []string{
			"4: www.example.com.: bad DS record: ",
		}},
		{"meta type", "www TYPE255 \\# 0\n", []string{
			"4: www.example.com.: type ANY cannot appear in a zone",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := mustMaster(t, apexText+tc.text)
			checkValidate(t, z, tc.want)
		})
	}
}

// checkValidate runs Validate on z and compares its errors with want,
// "line: message" prefixes.
func checkValidate(t *testing.T, z *Zone, want []string) {
	t.Helper()
	err := Validate(z)
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected errors:\n%v", err)
		}
		return
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T), want Errors", err, err)
	}
	if len(es) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if i >= len(es) {
			break
		}
		if es[i].Source != z.Source {
			t.Errorf("error %d has source %q", i, es[i].Source)
		}
		if got := itoa(es[i].Line) + ": " + es[i].Msg; !strings.HasPrefix(got, w) {
			t.Errorf("error %d:\n got  %s\n want %s...", i, got, w)
		}
	}
}

// TestValidateBuilt covers zones made in code, as a store would make them.
func TestValidateBuilt(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	apex := []Record{
		{RR: rr("Example.COM. 60 IN SOA ns hm 1 2 3 4 5")},
		{RR: rr("example.com. 60 IN NS ns.example.com.")},
	}
	with := func(rs ...Record) []Record { return append(append([]Record(nil), apex...), rs...) }
	ch := rr("www.example.com. 60 IN A 192.0.2.1")
	ch.Header().Class = dns.ClassCHAOS
	tests := []struct {
		name string
		z    *Zone
		want []string
	}{
		{"no origin", &Zone{Source: "db", Records: apex}, []string{"0: zone has no origin"}},
		{"origin not canonical", &Zone{Origin: "EXAMPLE.com", Source: "db", Records: apex}, nil},
		{"empty zone", &Zone{Origin: "example.com.", Source: "db"}, []string{
			"0: zone example.com. has no SOA record",
			"0: zone example.com. has no NS records at the apex",
		}},
		{"no lines", &Zone{Origin: "example.com.", Source: "db", Records: with(
			Record{RR: rr("www.example.com. 60 IN CNAME a.example.com.")},
			Record{RR: rr("www.example.com. 60 IN CNAME b.example.com.")},
			Record{RR: rr("www.example.com. 60 IN TXT x")},
			Record{RR: rr("www.example.com. 30 IN TXT y")},
		)}, []string{
			"0: second CNAME at www.example.com.: a name has at most one",
			"0: CNAME and other data at www.example.com.: CNAME, TXT (RFC 1034 section 3.6.2)",
			"0: conflicting TTLs in the www.example.com. TXT RRset: 30 and 60 (RFC 2181 section 5.2)",
		}},
		{"nil record", &Zone{Origin: "example.com.", Source: "db", Records: with(Record{Line: 3})}, []string{"3: record without data"}},
		{"class", &Zone{Origin: "example.com.", Source: "db", Records: with(Record{RR: ch, Line: 3})}, []string{"3: www.example.com.: class CH is not supported, only IN"}},
		{"OPT", &Zone{Origin: "example.com.", Source: "db", Records: with(Record{RR: &dns.OPT{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeOPT, Class: dns.ClassINET}}})}, []string{"0: example.com.: type OPT cannot appear in a zone"}},
		{"no RDATA", &Zone{Origin: "example.com.", Source: "db", Records: with(Record{RR: &dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET}}, Line: 9})}, []string{"9: www.example.com.: A record has no data"}},
		{"pools are checked", &Zone{Origin: "example.com.", Source: "db", Records: with(Record{RR: rr("www.example.com. 60 IN A 192.0.2.1")}), Pools: []Pool{NewPool("www.example.com.")}}, []string{
			"0: pool www.example.com. also has A, AAAA or CNAME records",
			"0: pool www.example.com. has no endpoints",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkValidate(t, tc.z, tc.want)
		})
	}
}

func TestNormalize(t *testing.T) {
	z := mustMaster(t, apexText+"www 60 A 192.0.2.1\nWWW 60 A 192.0.2.1\nwww 30 A 192.0.2.1\nwww 60 A 192.0.2.1\nx TXT \"a\"\nx TXT \"A\"\n@ NS NS1.example.com.\n")
	z.Origin = "Example.COM"
	Normalize(z)
	want := []string{"2 example.com. SOA", "3 example.com. NS", "4 www.example.com. A", "6 www.example.com. A", "8 x.example.com. TXT", "9 x.example.com. TXT"}
	if got := recordLines(z); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if z.Origin != "example.com." {
		t.Errorf("origin %q", z.Origin)
	}
	n := len(z.Records)
	if Normalize(z); len(z.Records) != n {
		t.Error("Normalize is not idempotent")
	}
}

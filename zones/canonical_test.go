package zones

import (
	"testing"

	"github.com/miekg/dns"
)

// TestCanonicalNameASCIIOnly: names fold case in ASCII only (RFC 4343
// section 3). Octets above 127 are kept, whether or not they are UTF-8,
// where Unicode lowering would change É into é and an invalid octet into
// U+FFFD; raw and escaped octets come out alike.
func TestCanonicalNameASCIIOnly(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"WWW.Example.COM", "www.example.com."},
		{"www.example.com.", "www.example.com."},
		{"*.Wild-card_X.example.", "*.wild-card_x.example."},
		{".", "."},
		{"CAFÉ.example.", "caf\\195\\137.example."}, // É, not é (\195\169)
		{"caf\\195\\137.example.", "caf\\195\\137.example."},
		{"ÀB.example.", "\\195\\128b.example."},
		{"\xffX.example.", "\\255x.example."},           // not UTF-8: kept, not U+FFFD
		{"\u212a.example.", "\\226\\132\\170.example."}, // the Kelvin sign is not K
		{"İ.example.", "\\196\\176.example."},           // nor is the Turkish dotted capital I an i
		{"\\065BC.example.", "abc.example."},            // an escaped letter is a letter
		{"a\\.b.example.", "a\\046b.example."},          // a dot inside a label
		{"\\$x.", "\\036x."},
	} {
		if got := CanonicalName(tc.in); got != tc.want {
			t.Errorf("CanonicalName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLookupNonASCII serves names with octets above 127, raw in a master
// file, and looks them up as a query would send them.
func TestLookupNonASCII(t *testing.T) {
	z, err := Parse([]byte("$ORIGIN example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nCAFÉ A 192.0.2.2\n\\065BC A 192.0.2.3\n"), "t.zone")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Build([]*Zone{z}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		qname string // presentation form, as a client would pack it
		rcode int
	}{
		{"caf\\195\\137.example.", dns.RcodeSuccess}, // É as sent
		{"CAF\\195\\137.example.", dns.RcodeSuccess},
		{"caf\\195\\169.example.", dns.RcodeNameError}, // é is another name
		{"abc.example.", dns.RcodeSuccess},
		{"ABC.example.", dns.RcodeSuccess},
	} {
		buf := make([]byte, 256)
		n, err := dns.PackDomainName(tc.qname, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		lname := buf[:n]
		for i := range lname {
			if 'A' <= lname[i] && lname[i] <= 'Z' {
				lname[i] += 'a' - 'A' // as the server lowers a query name
			}
		}
		a := snap.Lookup(lname, dns.TypeA)
		if a == nil || a.Rcode != tc.rcode || (tc.rcode == dns.RcodeSuccess) != (len(a.Answer) == 1) {
			t.Errorf("%s: answer %+v, want rcode %s", tc.qname, a, dns.RcodeToString[tc.rcode])
		}
	}
}

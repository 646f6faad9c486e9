package secondary

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

func soaRR(serial string) string {
	return "example.net. 300 IN SOA ns1.example.net. hostmaster.example.net. " + serial + " 3600 600 86400 60"
}

// TestApplyIXFR applies replies of RFC 1995 section 4's forms to a copy.
func TestApplyIXFR(t *testing.T) {
	base := rrs(t, soaRR("1"), "example.net. 300 IN NS ns1.example.net.", "www.example.net. 300 IN A 192.0.2.1", "old.example.net. 300 IN A 192.0.2.7")
	c := &zoneCopy{soa: base[0].(*dns.SOA), rrs: base}
	for _, tc := range []struct {
		name  string
		reply []string
		kind  string
		want  []string // the zone after, "" for none; nil with err
		err   string
	}{
		{"up to date", []string{soaRR("1")}, "", nil, ""},
		{"two differences", []string{
			soaRR("3"),
			soaRR("1"), "old.example.net. 300 IN A 192.0.2.7", soaRR("2"), "new.example.net. 300 IN A 192.0.2.9",
			soaRR("2"), "WWW.example.net. 60 IN A 192.0.2.1", soaRR("3"), "www.example.net. 300 IN A 192.0.2.2",
			soaRR("3"),
		}, "IXFR", []string{soaRR("3"), "example.net. 300 IN NS ns1.example.net.", "new.example.net. 300 IN A 192.0.2.9", "www.example.net. 300 IN A 192.0.2.2"}, ""},
		{"whole zone", []string{soaRR("5"), "example.net. 300 IN NS ns1.example.net.", soaRR("5")}, "IXFR, whole zone",
			[]string{soaRR("5"), "example.net. 300 IN NS ns1.example.net."}, ""},
		{"from another serial", []string{soaRR("3"), soaRR("2"), soaRR("3"), soaRR("3")}, "", nil, "does not start from serial 1"},
		{"cut before the last SOA", []string{soaRR("2"), soaRR("1"), soaRR("2"), "new.example.net. 300 IN A 192.0.2.9"}, "", nil, "incomplete"},
		{"newer serial alone", []string{soaRR("2")}, "", nil, "incomplete"},
		{"out of zone", []string{soaRR("2"), soaRR("1"), soaRR("2"), "evil.example.org. 300 IN A 192.0.2.9", soaRR("2")}, "", nil, "outside the zone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			soa, body, kind, err := applyIXFR("example.net.", c, rrs(t, tc.reply...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind != tc.kind {
				t.Errorf("kind %q, want %q", kind, tc.kind)
			}
			if tc.want == nil {
				if soa != nil || body != nil {
					t.Errorf("a zone for an up to date reply")
				}
				return
			}
			if got, want := rrStrings(body), rrStrings(rrs(t, tc.want...)); !slices.Equal(got, want) {
				t.Errorf("zone:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

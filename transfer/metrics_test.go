package transfer

import (
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsDocumented checks that docs/metrics.md lists exactly the
// transfer server's metrics.
func TestMetricsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Zone transfers")
	if start < 0 {
		t.Fatal("docs/metrics.md has no section on zone transfers")
	}
	text = text[start+3:]
	text = text[:strings.Index(text, "\n## ")]
	var doc []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(meridian_[a-z_]+)`").FindAllStringSubmatch(text, -1) {
		doc = append(doc, m[1])
	}
	x, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	descs := make(chan *prometheus.Desc, 8)
	x.Describe(descs)
	close(descs)
	var got []string
	for d := range descs {
		got = append(got, regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())[1])
	}
	slices.Sort(doc)
	slices.Sort(got)
	if !slices.Equal(doc, got) {
		t.Errorf("docs/metrics.md lists %v, the server exports %v", doc, got)
	}
}

// TestMetricsCount checks that refusals and transfers are counted.
func TestMetricsCount(t *testing.T) {
	c := testConfig()
	c.Allow = []Rule{{Zones: []string{"*"}, From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}
	x, err := New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, x, snapshot(t, 1, nil, zoneText(1, 1, 0)))
	transfer(t, addr, dns.TypeAXFR, 0, "", "", "")
	transfer(t, addr, dns.TypeAXFR, 0, "nope.", "hmac-sha256.", secret1)
	if n := x.counts.requests[kindAXFR][resultOK].Load(); n != 1 {
		t.Errorf("AXFR ok: %d", n)
	}
	if n := x.counts.requests[kindAXFR][resultNotAuth].Load(); n != 1 {
		t.Errorf("AXFR notauth: %d", n)
	}
}

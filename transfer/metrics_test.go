package transfer

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

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

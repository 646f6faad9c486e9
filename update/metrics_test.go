package update

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestResultsDocumented checks that docs/metrics.md names each result
// of meridian_update_requests_total; cmd/meridian's
// TestOptionalMetricsDocumented checks the metrics themselves.
func TestResultsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Dynamic updates")
	if start < 0 {
		t.Fatal("docs/metrics.md has no section on dynamic updates")
	}
	text = text[start+3:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	for _, r := range resultNames {
		if !strings.Contains(text, "`"+r+"`") {
			t.Errorf("docs/metrics.md does not name the result %s", r)
		}
	}
}

// TestMetricsCount checks that each kind of reply is counted.
func TestMetricsCount(t *testing.T) {
	u, _ := newTestUpdater(t)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(u); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("127.0.0.1:1")
	send := func(update, key, secret string) {
		m := new(dns.Msg)
		m.SetUpdate("example.com.")
		m.Ns = mustRRs(t, update)
		var q []byte
		if key == "" {
			q, _ = m.Pack()
		} else {
			q, _ = signed(t, m, key, secret)
		}
		u.ServeUpdate(q, client)
	}
	send(`_acme-challenge.example.com. 60 IN TXT "a"`, "acme.", testSecret)
	send(`_acme-challenge.example.com. 60 IN TXT "a"`, "acme.", testSecret)
	send(`www.example.com. 60 IN TXT "a"`, "acme.", testSecret)
	send(`_acme-challenge.example.com. 60 IN TXT "a"`, "", "")
	send(`_acme-challenge.example.com. 60 IN TXT "a"`, "acme.", "b3RoZXI=")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[labelValue(m)] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"applied": 1, "unchanged": 1, "refused": 2, "notauth": 1, "prerequisite": 0, "malformed": 0, "failed": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func labelValue(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "result" {
			return l.GetValue()
		}
	}
	return ""
}

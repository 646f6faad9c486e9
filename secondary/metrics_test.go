package secondary

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsCount checks that transfers and NOTIFY are counted.
func TestMetricsCount(t *testing.T) {
	p := newPrimary(t, zoneText(1, 3600, 600, 86400, ""))
	m, _ := newTestManager(t, p, "")
	waitFor(t, "the AXFR at start", 5*time.Second, func() bool { _, ok := m.Serial("example.net."); return ok })
	p.mu.Lock()
	p.noIXFR = true
	p.mu.Unlock()
	p.set(zoneText(2, 3600, 600, 86400, ""))
	notify(t, m, "127.0.0.1", "", "")
	notify(t, m, "127.0.0.2", "", "")
	waitFor(t, "the AXFR after NOTIFY", 5*time.Second, func() bool { s, _ := m.Serial("example.net."); return s == 2 })
	got := counts(t, m)
	for k, v := range map[string]float64{
		"meridian_secondary_notifies_total{accepted}":     1,
		"meridian_secondary_notifies_total{refused}":      1,
		"meridian_secondary_notifies_total{notauth}":      0,
		"meridian_secondary_transfers_total{axfr,ok}":     2,
		"meridian_secondary_transfers_total{axfr,failed}": 0,
		"meridian_secondary_transfers_total{ixfr,ok}":     0,
		"meridian_secondary_transfers_total{ixfr,failed}": 1,
		"meridian_secondary_zones_expired_total{}":        0,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// counts gathers m's counters as "name{label values in order}": value.
func counts(t *testing.T, m *Manager) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var vals []string
			for _, lp := range mt.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			// Labels come sorted by name: result before type; put type first.
			if len(vals) == 2 {
				vals[0], vals[1] = vals[1], vals[0]
			}
			out[mf.GetName()+"{"+strings.Join(vals, ",")+"}"] = mt.GetCounter().GetValue()
		}
	}
	return out
}

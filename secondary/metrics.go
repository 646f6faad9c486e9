package secondary

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
)

// Kinds of incoming transfer, as counted.
const (
	kindAXFR = iota
	kindIXFR
	numKinds
)

var kindNames = [numKinds]string{"axfr", "ixfr"}

// Outcomes of an incoming NOTIFY, as counted.
const (
	notifyAccepted = iota
	notifyRefused
	notifyNotAuth
	numNotify
)

var notifyNames = [numNotify]string{"accepted", "refused", "notauth"}

// counters are the Manager's counts, read when scraped.
type counters struct {
	transfers [numKinds][2]atomic.Uint64 // [kind][0 ok, 1 failed]
	notifies  [numNotify]atomic.Uint64
	expired   atomic.Uint64
}

func (c *counters) transfer(kind int, err error) {
	if err != nil {
		c.transfers[kind][1].Add(1)
	} else {
		c.transfers[kind][0].Add(1)
	}
}

var (
	transfersDesc = prometheus.NewDesc(metrics.Namespace+"_secondary_transfers_total",
		"Transfers of secondary zones from their primaries, by type and result: ok (complete and valid) or failed.", []string{"type", "result"}, nil)
	notifiesDesc = prometheus.NewDesc(metrics.Namespace+"_secondary_notifies_total",
		"NOTIFY messages received for secondary zones, by outcome.", []string{"result"}, nil)
	expiredDesc = prometheus.NewDesc(metrics.Namespace+"_secondary_zones_expired_total",
		"Secondary zones dropped because the SOA's expire time passed without a successful refresh.", nil, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- transfersDesc
	ch <- notifiesDesc
	ch <- expiredDesc
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	c := &m.counts
	for k := range numKinds {
		for r, name := range []string{"ok", "failed"} {
			ch <- prometheus.MustNewConstMetric(transfersDesc, prometheus.CounterValue, float64(c.transfers[k][r].Load()), kindNames[k], name)
		}
	}
	for n := range numNotify {
		ch <- prometheus.MustNewConstMetric(notifiesDesc, prometheus.CounterValue, float64(c.notifies[n].Load()), notifyNames[n])
	}
	ch <- prometheus.MustNewConstMetric(expiredDesc, prometheus.CounterValue, float64(c.expired.Load()))
}

var _ prometheus.Collector = (*Manager)(nil)

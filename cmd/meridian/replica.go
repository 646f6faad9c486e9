package main

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
	"github.com/meridiandns/meridian/store/postgres"
)

// replicaSource is what the replica metrics and readiness read of the
// PostgreSQL store.
type replicaSource interface {
	Replication() postgres.Replication
	Degraded() (bool, string)
}

// addReplica exports the replication of the database the server reads
// (meridian_store_*; docs/metrics.md, "PostgreSQL store") and makes
// /readyz report it: not ready while a standby lags by more than maxLag
// (store.max_replication_lag; 0: never). pg nil (zone files) adds nothing.
func (o *ops) addReplica(pg *postgres.Store, maxLag time.Duration) {
	if pg == nil {
		return
	}
	o.reg.MustRegister(replicaCollector{pg})
	o.replica = func(why string) (bool, string) {
		return replicaReadiness(pg.Replication(), pg, maxLag, why, time.Now())
	}
}

// staleness is how far the data of the database in use may be behind the
// primary's: the standby's lag and, while the standby cannot be reached
// to measure it, the time since it was measured. 0 on a primary.
func staleness(r postgres.Replication, src replicaSource, now time.Time) time.Duration {
	if !r.Standby {
		return 0
	}
	if down, _ := src.Degraded(); down && !r.Measured.IsZero() {
		return r.Lag + now.Sub(r.Measured)
	}
	return r.Lag
}

// replicaReadiness adds the replication to why, the readiness of a
// server that serves a snapshot, and turns it to not ready when the
// standby lags more than maxLag.
func replicaReadiness(r postgres.Replication, src replicaSource, maxLag time.Duration, why string, now time.Time) (bool, string) {
	db := "the primary"
	if r.Standby {
		db = "a hot standby"
	}
	if r.Database > 0 {
		db += fmt.Sprintf(" (store.fallback_databases[%d])", r.Database-1)
	}
	if !r.Standby {
		if r.Database > 0 {
			return true, why + ", reading " + db
		}
		return true, why
	}
	lag := staleness(r, src, now)
	state := "streaming"
	switch down, _ := src.Degraded(); {
	case down:
		state = "unreachable"
	case !r.Streaming:
		state = "not streaming from its primary"
	}
	detail := fmt.Sprintf("%s, %s, replication lag %s", db, state, lag.Round(time.Millisecond))
	if maxLag > 0 && lag > maxLag {
		return false, fmt.Sprintf("replication lag %s exceeds store.max_replication_lag %s: %s, %s (the last data is still answered)",
			lag.Round(time.Millisecond), maxLag, why, detail)
	}
	return true, why + ", reading " + detail
}

var (
	replicationLagDesc = prometheus.NewDesc(metrics.Namespace+"_store_replication_lag_seconds",
		"How far the data of the hot standby read may be behind its primary: 0 while it streams and has replayed all it received; else the time since it last had, or since its last replayed commit. 0 on a primary.",
		nil, nil)
	standbyDesc = prometheus.NewDesc(metrics.Namespace+"_store_standby",
		"1 while the database read is a hot standby.", nil, nil)
	streamingDesc = prometheus.NewDesc(metrics.Namespace+"_store_replication_streaming",
		"1 while the hot standby read receives WAL from its primary; 0 on a primary.", nil, nil)
	databaseDesc = prometheus.NewDesc(metrics.Namespace+"_store_database_index",
		"Which database is read: 0 for store.database, i for store.fallback_databases[i-1].", nil, nil)
	switchesDesc = prometheus.NewDesc(metrics.Namespace+"_store_database_switches_total",
		"Moves from one database of store.database and store.fallback_databases to another.", nil, nil)
)

// replicaCollector exports the store's Replication.
type replicaCollector struct{ src replicaSource }

// Describe implements prometheus.Collector.
func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{replicationLagDesc, standbyDesc, streamingDesc, databaseDesc, switchesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.src.Replication()
	ch <- prometheus.MustNewConstMetric(replicationLagDesc, prometheus.GaugeValue, staleness(r, c.src, time.Now()).Seconds())
	ch <- prometheus.MustNewConstMetric(standbyDesc, prometheus.GaugeValue, float64(b2i(r.Standby)))
	ch <- prometheus.MustNewConstMetric(streamingDesc, prometheus.GaugeValue, float64(b2i(r.Streaming)))
	ch <- prometheus.MustNewConstMetric(databaseDesc, prometheus.GaugeValue, float64(r.Database))
	ch <- prometheus.MustNewConstMetric(switchesDesc, prometheus.CounterValue, float64(r.Switches))
}

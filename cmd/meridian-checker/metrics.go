package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/health"
	imetrics "github.com/meridiandns/meridian/internal/metrics"
)

// checkerMetrics are the checker's metrics, as docs/metrics.md lists them
// under "Health checker" (TestMetricsDocumented holds the two together).
type checkerMetrics struct {
	targets       prometheus.Gauge
	probes        *prometheus.CounterVec // type, result
	probeDuration *prometheus.HistogramVec
	transitions   *prometheus.CounterVec // pool, to
	pending       prometheus.Gauge
	heartbeat     prometheus.Gauge
	checkers      *prometheus.GaugeVec   // state
	agentReports  *prometheus.CounterVec // source, result
	storeUp       prometheus.Gauge

	// byType holds the probe series of the known check types, resolved
	// once rather than per probe.
	byType map[string]probeSeries
}

type probeSeries struct {
	up, down prometheus.Counter
	duration prometheus.Observer
}

// checkTypes are the check types whose series exist from the start.
var checkTypes = []string{health.TypeHTTP, health.TypeHTTPS, health.TypeTCP, health.TypeDNS, health.TypeAgent}

func newCheckerMetrics(reg prometheus.Registerer) *checkerMetrics {
	ns := imetrics.Namespace
	m := &checkerMetrics{
		targets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "checker", Name: "targets",
			Help: "Endpoints this checker probes."}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "checker", Name: "probes_total",
			Help: "Probes run, by check type and result (up: the probe passed)."}, []string{"type", "result"}),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "checker", Name: "probe_duration_seconds",
			Help: "Probe durations, by check type.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"type"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "checker", Name: "transitions_total",
			Help: "This checker's verdict changes (after rise and fall), by pool and new state."}, []string{"pool", "to"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "checker", Name: "pending_verdicts",
			Help: "Transitions not yet written to the database (it was away); retried with each heartbeat."}),
		heartbeat: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "checker", Name: "heartbeat_timestamp_seconds",
			Help: "When this checker last wrote its heartbeat (Unix time)."}),
		checkers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "checker", Name: "checkers",
			Help: "Checkers registered in the store, by whether they still heartbeat (live) or not (expired)."}, []string{"state"}),
		agentReports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "agent_reports_total",
			Help: "Agent reports received, through the API or from agent-check probes, accepted or rejected."}, []string{"source", "result"}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "store_up",
			Help: "1 while the database answers this checker's heartbeats and writes."}),
		byType: map[string]probeSeries{},
	}
	reg.MustRegister(m.targets, m.probes, m.probeDuration, m.transitions, m.pending, m.heartbeat, m.checkers, m.agentReports, m.storeUp)
	for _, t := range checkTypes {
		m.byType[t] = m.series(t)
	}
	for _, s := range []string{"live", "expired"} {
		m.checkers.WithLabelValues(s)
	}
	for _, src := range []string{"api", "agent-check"} {
		for _, r := range []string{"accepted", "rejected"} {
			m.agentReports.WithLabelValues(src, r)
		}
	}
	return m
}

func (m *checkerMetrics) series(typ string) probeSeries {
	return probeSeries{up: m.probes.WithLabelValues(typ, "up"), down: m.probes.WithLabelValues(typ, "down"),
		duration: m.probeDuration.WithLabelValues(typ)}
}

// probed counts a probe of check type typ.
func (m *checkerMetrics) probed(typ string, r health.Result) {
	s, ok := m.byType[typ]
	if !ok {
		s = m.series(typ) // a type added to health but not here
	}
	if r.OK {
		s.up.Inc()
	} else {
		s.down.Inc()
	}
	s.duration.Observe(r.Duration.Seconds())
}

// transition counts a change of this checker's verdict on an endpoint of
// pool.
func (m *checkerMetrics) transition(pool string, up bool) {
	to := "down"
	if up {
		to = "up"
	}
	m.transitions.WithLabelValues(pool, to).Inc()
}

// reported counts an agent report from source (api or agent-check).
func (m *checkerMetrics) reported(source string, accepted bool) {
	result := "rejected"
	if accepted {
		result = "accepted"
	}
	m.agentReports.WithLabelValues(source, result).Inc()
}

// heartbeatAt records a heartbeat written at t.
func (m *checkerMetrics) heartbeatAt(t time.Time) {
	m.heartbeat.Set(float64(t.UnixNano()) / 1e9)
}

// storeAnswered records whether the database answered the last request.
func (m *checkerMetrics) storeAnswered(ok bool) {
	if ok {
		m.storeUp.Set(1)
	} else {
		m.storeUp.Set(0)
	}
}

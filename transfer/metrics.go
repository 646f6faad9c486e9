package transfer

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
)

// Results of a transfer request, as counted.
const (
	resultOK      = iota // the reply was sent whole
	resultRefused        // REFUSED: not allowed, or a zone not served
	resultNotAuth        // NOTAUTH: a TSIG that does not verify
	resultFormErr        // FORMERR: a query that does not parse
	resultCut            // the client went away in the middle
	numResults
)

var resultNames = [numResults]string{"ok", "refused", "notauth", "formerr", "cut"}

// Kinds of transfer request, as counted.
const (
	kindAXFR = iota
	kindIXFR
	kindIXFRUDP
	numKinds
)

var kindNames = [numKinds]string{"axfr", "ixfr", "ixfr_udp"}

// Outcomes of a NOTIFY, as counted.
const (
	notifyAnswered = iota
	notifyRefused
	notifyUnanswered
	numNotify
)

var notifyNames = [numNotify]string{"answered", "refused", "unanswered"}

// counters are the transfer server's counts, read when scraped.
type counters struct {
	requests [numKinds][numResults]atomic.Uint64
	notifies [numNotify]atomic.Uint64
	journals atomic.Uint64 // changes journaled
}

var (
	requestsDesc = prometheus.NewDesc(metrics.Namespace+"_transfer_requests_total",
		"Zone transfer requests (AXFR, IXFR over TCP, IXFR over UDP), by result.", []string{"type", "result"}, nil)
	notifiesDesc = prometheus.NewDesc(metrics.Namespace+"_transfer_notifies_total",
		"NOTIFY messages to secondaries, by outcome: answered, refused (an error rcode), or never answered after every try.", []string{"result"}, nil)
	journalsDesc = prometheus.NewDesc(metrics.Namespace+"_transfer_journaled_changes_total",
		"Changes of zones recorded in the IXFR journal.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- notifiesDesc
	ch <- journalsDesc
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	c := s.counts
	for k := range numKinds {
		for r := range numResults {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(c.requests[k][r].Load()), kindNames[k], resultNames[r])
		}
	}
	for n := range numNotify {
		ch <- prometheus.MustNewConstMetric(notifiesDesc, prometheus.CounterValue, float64(c.notifies[n].Load()), notifyNames[n])
	}
	ch <- prometheus.MustNewConstMetric(journalsDesc, prometheus.CounterValue, float64(c.journals.Load()))
}

var _ prometheus.Collector = (*Server)(nil)

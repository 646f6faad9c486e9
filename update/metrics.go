package update

import (
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
)

// Results of an UPDATE, as counted.
const (
	resultApplied   = iota // NOERROR, the zone changed
	resultUnchanged        // NOERROR, nothing to change
	resultPrereq           // a prerequisite failed: NXDOMAIN, YXDOMAIN, NXRRSET, YXRRSET
	resultRefused          // unsigned, outside the policy, a pool or DNSSEC record, an invalid result
	resultNotAuth          // a TSIG that does not verify, or a zone not ours
	resultMalformed        // FORMERR, NOTZONE
	resultFailed           // SERVFAIL: the change could not be written
	numResults
)

var resultNames = [numResults]string{"applied", "unchanged", "prerequisite", "refused", "notauth", "malformed", "failed"}

// resultOf is the counted result of an UPDATE answered with rcode.
func resultOf(rcode int, changed bool) int {
	switch rcode {
	case dns.RcodeSuccess:
		if changed {
			return resultApplied
		}
		return resultUnchanged
	case dns.RcodeNameError, dns.RcodeYXDomain, dns.RcodeNXRrset, dns.RcodeYXRrset:
		return resultPrereq
	case dns.RcodeRefused:
		return resultRefused
	case dns.RcodeNotAuth:
		return resultNotAuth
	case dns.RcodeFormatError, dns.RcodeNotZone:
		return resultMalformed
	}
	return resultFailed
}

var requestsDesc = prometheus.NewDesc(metrics.Namespace+"_update_requests_total",
	"Dynamic updates (RFC 2136) received, by result.", []string{"result"}, nil)

// counters are the Updater's counts, read when scraped.
type counters struct {
	requests [numResults]atomic.Uint64
}

// Describe implements prometheus.Collector.
func (u *Updater) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

// Collect implements prometheus.Collector.
func (u *Updater) Collect(ch chan<- prometheus.Metric) {
	for r := range numResults {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(u.counts.requests[r].Load()), resultNames[r])
	}
}

var _ prometheus.Collector = (*Updater)(nil)

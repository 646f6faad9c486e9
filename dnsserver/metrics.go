package dnsserver

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/zones"
)

// The metrics mirror CoreDNS's where they mean the same (requests by
// zone, proto, family and type; responses by rcode; the request duration
// histogram), so that existing dashboards translate; docs/metrics.md lists
// them all.

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("meridian_"+name, help, labels, nil)
}

var (
	descRequests   = desc("dns_requests_total", "DNS queries received, by zone, transport protocol, transport family and query type.", "zone", "proto", "family", "type")
	descResponses  = desc("dns_responses_total", "DNS replies sent, by zone and response code.", "zone", "rcode")
	descDuration   = desc("dns_request_duration_seconds", "Time from a query's arrival to its reply being ready.", "zone", "type")
	descDO         = desc("dns_do_requests_total", "DNS queries with the DNSSEC OK bit set.", "zone")
	descTruncated  = desc("dns_truncated_responses_total", "UDP replies sent truncated (TC), for the client to retry over TCP.", "zone")
	descECS        = desc("dns_ecs_requests_total", "DNS queries carrying an EDNS Client Subnet option.", "zone")
	descPanics     = desc("dns_panics_total", "Queries that hit a bug and were answered SERVFAIL.")
	descTCPConns   = desc("dns_tcp_connections", "TCP connections open.")
	descTCPRefused = desc("dns_tcp_refused_total", "TCP connections closed as soon as accepted: at tcp_max_connections (max_connections) or at tcp_max_connections_per_client for the client's address (per_client).", "reason")
	descCookies    = desc("dns_cookie_requests_total", "DNS queries by what their COOKIE option showed (RFC 7873): client_only, valid or invalid server cookie, or malformed; queries without one are not counted.", "result")
	descSignatures = desc("dnssec_signatures_total", "RRsets signed while answering (a pool's choice, a name that does not exist, a wildcard), by result: ok, or error (the reply was sent truncated).", "result")
	descSigCache   = desc("dnssec_signature_cache_lookups_total", "Lookups in the signature cache, by result: hit, or miss (the RRset was signed).", "result")
	descSigEntries = desc("dnssec_signature_cache_entries", "Signatures kept in the signature cache (dnssec.signature_cache is its capacity).")
	descRRL        = desc("dns_rrl_limited_total", "UDP replies withheld by response rate limiting: dropped, or slipped (sent truncated for the client to retry over TCP).", "action")

	descPoolAnswers  = desc("pool_answers_total", "Pool answers, by the pool that gave them and the datacenter of their first address (none: no address).", "zone", "pool", "datacenter")
	descPoolFailOpen = desc("pool_fail_open_total", "Pool answers given regardless of health because no endpoint was eligible.", "zone", "pool")
	descPoolFallback = desc("pool_fallback_total", "Answers for a pool given by its fallback pool.", "zone", "pool")
	descPoolActive   = desc("pool_endpoints", "Pool endpoints in service (admin state active).", "zone", "pool")
	descPoolHealthy  = desc("pool_healthy_endpoints", "Pool endpoints answered in normal operation (active and healthy).", "zone", "pool")

	descSnapVersion = desc("snapshot_version", "Version of the data served.")
	descSnapTime    = desc("snapshot_timestamp_seconds", "When the snapshot served was published, in Unix time.")
	descSnapZones   = desc("snapshot_zones", "Zones served.")
	descGeoBuild    = desc("geoip_build_timestamp_seconds", "Build time of the GeoIP database in use, in Unix time.")
)

// Collector returns a Prometheus collector for the server's metrics. It
// reads the counters at scrape time; the query path never sees it.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRequests, descResponses, descDuration, descDO, descTruncated, descECS,
		descPanics, descTCPConns, descTCPRefused, descCookies, descSignatures, descSigCache, descSigEntries, descRRL, descPoolAnswers, descPoolFailOpen, descPoolFallback,
		descPoolActive, descPoolHealthy, descSnapVersion, descSnapTime, descSnapZones, descGeoBuild,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := (*Server)(c)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descPanics, s.panics.Load())
	gauge(descTCPConns, float64(s.tcpOpen.Load()))
	counter(descTCPRefused, s.tcpRefused[refusedMax].Load(), "max_connections")
	counter(descTCPRefused, s.tcpRefused[refusedPerClient].Load(), "per_client")
	for st := cookieClientOnly; st < numCookieStates; st++ {
		counter(descCookies, s.cookieSeen[st].Load(), cookieStateNames[st])
	}
	counter(descSignatures, s.signatures.Load(), "ok")
	counter(descSignatures, s.signFailures.Load(), "error")
	hits, misses := s.sigs.Stats()
	counter(descSigCache, hits, "hit")
	counter(descSigCache, misses, "miss")
	gauge(descSigEntries, float64(s.sigs.Len()))
	if s.rrl != nil {
		counter(descRRL, s.rrl.dropped.Load(), "drop")
		counter(descRRL, s.rrl.slipped.Load(), "slip")
	}

	// The table changes only under mu, with Publish; the counters in it
	// are read atomically while queries add to them.
	s.mu.Lock()
	zs := make([]*zoneStats, 0, len(s.stats.zones)+1)
	zs = append(zs, &s.stats.dropped)
	for _, z := range s.stats.zones {
		zs = append(zs, z)
	}
	ps := make([]*poolStats, 0, len(s.stats.pools))
	for _, p := range s.stats.pools {
		ps = append(ps, p)
	}
	type dcCount struct {
		pool *poolStats
		dc   string
		n    uint64
	}
	var answers []dcCount
	for _, p := range ps {
		for dc, n := range p.answers {
			if v := n.Load(); v > 0 {
				answers = append(answers, dcCount{p, dc, v})
			}
		}
	}
	s.mu.Unlock()

	for _, z := range zs {
		z.collect(ch, counter)
	}
	for _, a := range answers {
		counter(descPoolAnswers, a.n, a.pool.zone, a.pool.name, a.dc)
	}
	for _, p := range ps {
		if v := p.failOpen.Load(); v > 0 {
			counter(descPoolFailOpen, v, p.zone, p.name)
		}
		if v := p.fallback.Load(); v > 0 {
			counter(descPoolFallback, v, p.zone, p.name)
		}
	}

	st := s.st.Load()
	if st == nil {
		return
	}
	if st.db != nil {
		gauge(descGeoBuild, float64(st.db.BuildTime().Unix()))
	}
	if st.snap == nil {
		return
	}
	gauge(descSnapVersion, float64(st.snap.Version))
	gauge(descSnapTime, float64(st.published.UnixNano())/1e9)
	gauge(descSnapZones, float64(len(st.snap.Zones())))
	for _, p := range st.snap.Pools() {
		active, healthy := endpointCounts(p)
		gauge(descPoolActive, float64(active), p.Zone.Origin, p.Name)
		gauge(descPoolHealthy, float64(healthy), p.Zone.Origin, p.Name)
	}
}

// collect sends the zone's counters that are not zero: series appear with
// their first query, as those of a CounterVec do.
func (z *zoneStats) collect(ch chan<- prometheus.Metric, counter func(*prometheus.Desc, uint64, ...string)) {
	protos := [2]string{"udp", "tcp"}
	for p := range z.requests {
		for f := range z.requests[p] {
			for t := range z.requests[p][f] {
				if v := z.requests[p][f][t].Load(); v > 0 {
					counter(descRequests, v, z.origin, protos[p], strconv.Itoa(f+1), typeName(t))
				}
			}
		}
	}
	for r := range z.responses {
		if v := z.responses[r].Load(); v > 0 {
			counter(descResponses, v, z.origin, rcodeName(r))
		}
	}
	for name, c := range map[*prometheus.Desc]uint64{descDO: z.do.Load(), descTruncated: z.truncated.Load(), descECS: z.ecs.Load()} {
		if c > 0 {
			counter(name, c, z.origin)
		}
	}
	for t := range z.latency {
		h := &z.latency[t]
		buckets := make(map[float64]uint64, len(latencyBounds))
		var count uint64
		for i, bound := range latencyBounds {
			count += h.counts[i].Load()
			buckets[float64(bound)/1e9] = count
		}
		count += h.counts[len(latencyBounds)].Load()
		if count == 0 {
			continue
		}
		// The sum is read after the counts: it may include an observation
		// the counts missed, never the reverse by much.
		sum := float64(h.sum.Load()) / 1e9
		ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, buckets, z.origin, typeName(t))
	}
}

// endpointCounts returns how many of p's endpoints are in service and how
// many are answered in normal operation, as compiled: after admin state,
// agent reports and health checks have had their say.
func endpointCounts(p *zones.CompiledPool) (active, healthy int) {
	for f := range p.Family {
		fs := &p.Family[f]
		for i := range fs.Active {
			active += len(fs.Active[i].Endpoints)
		}
		for i := range fs.Eligible {
			healthy += len(fs.Eligible[i].Endpoints)
		}
	}
	return active, healthy
}

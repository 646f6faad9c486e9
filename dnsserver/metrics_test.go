package dnsserver

import (
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/meridiandns/meridian/zones"
)

// scrape gathers the server's metrics through a pedantic registry, which
// also checks that what Collect sends matches what Describe declares, and
// returns them keyed "name{label=value,...}" (labels sorted), histograms
// as their sample count.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
				if b := m.GetHistogram().GetBucket(); len(b) == 0 || b[len(b)-1].GetCumulativeCount() > m.GetHistogram().GetSampleCount() {
					t.Errorf("%s: buckets %v exceed count %d", key, b, m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return out
}

func TestMetricsQueries(t *testing.T) {
	s, addr := startServer(t, Config{}, testSnapshot(t, 7))
	const zone = "example.com."
	queries := []struct {
		network string
		m       *dns.Msg
	}{
		{"udp", newQuery("www.example.com.", dns.TypeA)},
		{"udp", newQuery("WWW.example.com.", dns.TypeA)},
		{"tcp", newQuery("www.example.com.", dns.TypeAAAA)},
		{"udp", newQuery("nothere.example.com.", dns.TypeA)},
		{"udp", newQuery("www.example.org.", dns.TypeA)},   // not ours: REFUSED
		{"udp", newQuery("big.example.com.", dns.TypeTXT)}, // truncated
		{"udp", withEDNS(newQuery("example.com.", dns.TypeSOA), 1232, true)},
		{"udp", ecsQuery("www.example.com.", dns.TypeA, "198.51.100.0/24")},
		{"udp", newQuery("www.example.com.", dns.TypeNAPTR)}, // counted as "other"
	}
	for _, q := range queries {
		exchange(t, q.network, addr, q.m)
	}
	got := scrape(t, s)
	want := map[string]float64{
		`meridian_dns_requests_total{family=1,proto=udp,type=A,zone=example.com.}`:     4,
		`meridian_dns_requests_total{family=1,proto=tcp,type=AAAA,zone=example.com.}`:  1,
		`meridian_dns_requests_total{family=1,proto=udp,type=TXT,zone=example.com.}`:   1,
		`meridian_dns_requests_total{family=1,proto=udp,type=SOA,zone=example.com.}`:   1,
		`meridian_dns_requests_total{family=1,proto=udp,type=other,zone=example.com.}`: 1,
		`meridian_dns_requests_total{family=1,proto=udp,type=A,zone=dropped}`:          1,
		`meridian_dns_responses_total{rcode=NOERROR,zone=example.com.}`:                7,
		`meridian_dns_responses_total{rcode=NXDOMAIN,zone=example.com.}`:               1,
		`meridian_dns_responses_total{rcode=REFUSED,zone=dropped}`:                     1,
		`meridian_dns_truncated_responses_total{zone=example.com.}`:                    1,
		`meridian_dns_do_requests_total{zone=example.com.}`:                            1,
		`meridian_dns_ecs_requests_total{zone=example.com.}`:                           1,
		`meridian_dns_request_duration_seconds{type=A,zone=example.com.}`:              4,
		`meridian_dns_request_duration_seconds{type=A,zone=dropped}`:                   1,
		`meridian_snapshot_version{}`:                                                  7,
		`meridian_snapshot_zones{}`:                                                    1,
		`meridian_dns_panics_total{}`:                                                  0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`meridian_snapshot_timestamp_seconds{}`] == 0 {
		t.Error("no snapshot timestamp")
	}
	// A response is not a query: counted as a request, never answered.
	resp := newQuery("www.example.com.", dns.TypeA)
	resp.Response = true
	pkt, _ := resp.Pack()
	s.handle(&query{}, make([]byte, 0, advertisedUDPSize), pkt, false, netip.MustParseAddrPort("127.0.0.1:5300"), nanotime())
	got = scrape(t, s)
	if got[`meridian_dns_requests_total{family=1,proto=udp,type=other,zone=dropped}`] != 1 {
		t.Errorf("unanswered packet not counted: %v", got)
	}
	if got[`meridian_dns_responses_total{rcode=REFUSED,zone=dropped}`] != 1 {
		t.Error("unanswered packet counted as a response")
	}
}

func TestMetricsPools(t *testing.T) {
	main := testPool("www.svc.example.")
	main.WhenAllDown = zones.Fallback
	main.FallbackTo = "backup.svc.example."
	open := testPool("open.svc.example.")
	open.WhenAllDown = zones.FailOpen
	for _, p := range []*zones.Pool{&main, &open} {
		for i := range p.Endpoints {
			p.Endpoints[i].Health = zones.HealthDown
		}
	}
	main.Endpoints[0].Health = zones.HealthUp // us-east's first IPv4
	main.Endpoints[12].Admin = zones.AdminDrain
	backup := zones.NewPool("backup.svc.example.")
	backup.Endpoints = []zones.Endpoint{{Addr: netip.MustParseAddr("198.51.100.1"), Datacenter: "us-east", Weight: 100}}
	db := worldDB(t) // first, so that it is closed after the server stops
	s, addr := startServer(t, Config{}, poolSnapshot(t, main, open, backup))
	s.SetGeo(db)

	frankfurt := "193.99.144.0/24"
	exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, frankfurt))  // us-east, the only one up
	exchange(t, "udp", addr, ecsQuery("open.svc.example.", dns.TypeA, frankfurt)) // fail open: eu-central first
	// With the one endpoint drained away, www falls back.
	main.Endpoints[0].Health = zones.HealthDown
	snap2, err := zones.Build(poolSnapshotZones(t, main, open, backup), 2)
	if err != nil {
		t.Fatal(err)
	}
	s.Publish(snap2)
	exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, frankfurt))
	exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeAAAA, frankfurt)) // backup has no IPv6: none

	got := scrape(t, s)
	want := map[string]float64{
		`meridian_pool_answers_total{datacenter=us-east,pool=www.svc.example.,zone=svc.example.}`:     1,
		`meridian_pool_answers_total{datacenter=eu-central,pool=open.svc.example.,zone=svc.example.}`: 1,
		`meridian_pool_fail_open_total{pool=open.svc.example.,zone=svc.example.}`:                     1,
		`meridian_pool_answers_total{datacenter=us-east,pool=backup.svc.example.,zone=svc.example.}`:  1,
		`meridian_pool_answers_total{datacenter=none,pool=backup.svc.example.,zone=svc.example.}`:     1,
		`meridian_pool_fallback_total{pool=www.svc.example.,zone=svc.example.}`:                       2,
		`meridian_pool_endpoints{pool=www.svc.example.,zone=svc.example.}`:                            23,
		`meridian_pool_healthy_endpoints{pool=www.svc.example.,zone=svc.example.}`:                    0,
		`meridian_pool_healthy_endpoints{pool=backup.svc.example.,zone=svc.example.}`:                 1,
		`meridian_dns_ecs_requests_total{zone=svc.example.}`:                                          4,
		`meridian_snapshot_version{}`: 2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got[`meridian_geoip_build_timestamp_seconds{}`] <= 0 {
		t.Error("no GeoIP build time")
	}
}

// poolSnapshotZones returns the zone poolSnapshot builds, for rebuilding
// with changed pools.
func poolSnapshotZones(t testing.TB, pools ...zones.Pool) []*zones.Zone {
	t.Helper()
	z := parseZone(t, "svc.example.", poolZone)
	z.Datacenters = testDCs
	z.Pools = pools
	return []*zones.Zone{z}
}

// TestTap checks that the tap sees each query and reply with the
// client's and the server's addresses, over UDP and TCP.
// TestTap checks that the tap sees each query with the client's and the
// server's address and port, over UDP and TCP, on IPv4, IPv6 and a
// dual-stack socket (where an IPv4 client arrives IPv4-mapped).
func TestTap(t *testing.T) {
	for _, tc := range []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"[::]:0", "127.0.0.1"},
		{"[::]:0", "127.0.0.2"},
		{"[::]:0", "::1"},
		{"0.0.0.0:0", "127.0.0.3"},
	} {
		t.Run(tc.listen+"/"+tc.dial, func(t *testing.T) { testTap(t, tc.listen, tc.dial) })
	}
}

func testTap(t *testing.T, listen, dial string) {
	type seen struct {
		query, reply   string
		client, server netip.AddrPort
		tcp            bool
	}
	ch := make(chan seen, 8)
	s, _ := startServerWith(t, Config{Listen: []string{listen}, UDPWorkers: 1}, testSnapshot(t, 1), func(s *Server) {
		s.SetTap(func(q, r []byte, client, server netip.AddrPort, tcp bool) {
			var qm, rm dns.Msg
			qm.Unpack(q)
			rm.Unpack(r)
			ch <- seen{qm.Question[0].Name, dns.RcodeToString[rm.Rcode], client, server, tcp}
		})
	})
	server := s.Addrs()[0].(*net.UDPAddr).AddrPort()
	target := netip.AddrPortFrom(netip.MustParseAddr(dial), server.Port())
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		conn, err := c.Dial(target.String())
		if err != nil {
			t.Fatal(err)
		}
		local := netip.MustParseAddrPort(conn.LocalAddr().String())
		if _, _, err := c.ExchangeWithConn(newQuery("nothere.example.com.", dns.TypeA), conn); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		select {
		case got := <-ch:
			// The server address is the one the client reached, on a
			// wildcard socket too (IP_PKTINFO over UDP).
			want := seen{"nothere.example.com.", "NXDOMAIN", local, target, network == "tcp"}
			if got != want {
				t.Errorf("%s: tap saw %+v, want %+v", network, got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: tap saw nothing", network)
		}
	}
}

package dnsserver

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPPathAllocations counts the heap allocations of the whole process
// while a server answers UDP queries from a client that allocates nothing
// itself (a connected socket and fixed buffers): the query path, from
// recvmmsg to sendmmsg, must not allocate. A static answer, an NXDOMAIN
// a pool answer with ECS and a query with a DNS cookie are each asked
// many times.
func TestUDPPathAllocations(t *testing.T) {
	db := worldDB(t) // first, so that it is closed after the server stops
	_, addr := startServerWith(t, Config{UDPWorkers: 1}, poolSnapshot(t, testPool("www.svc.example.")), func(s *Server) { s.SetGeo(db) })
	for _, q := range []*dns.Msg{
		newQuery("ns1.svc.example.", dns.TypeA),
		newQuery("nothere.svc.example.", dns.TypeA),
		ecsQuery("www.svc.example.", dns.TypeA, "193.99.144.0/24"),
		withEDNS(newQuery("ns1.svc.example.", dns.TypeA), 1232, false, cookieOpt([]byte("clientck"))), // a server cookie made each time
	} {
		pkt, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 4096)
		exchange := func() {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write(pkt); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 { // warm up: buffers, the GeoIP tables, the timer
			exchange()
		}
		const n = 5000
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range n {
			exchange()
		}
		runtime.ReadMemStats(&after)
		// Some allocations come from the runtime and the test itself
		// (deadlines, the GC); one per 50 queries is far below one per
		// query, which is what a leak into the path would show.
		per := float64(after.Mallocs-before.Mallocs) / n
		t.Logf("%s: %.4f allocations per query", q.Question[0].Name, per)
		if per > 0.02 {
			t.Errorf("%s: %.3f allocations per query, want none on the query path", q.Question[0].Name, per)
		}
	}
}

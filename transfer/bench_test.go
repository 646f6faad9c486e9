package transfer

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// The benchmarks share one zone of a million records in two versions
// (one record apart), built once: parsing and compiling it takes longer
// than what is measured.
//
//	go test -run '^$' -bench . -benchmem -benchtime 3x ./transfer
var fixture struct {
	once   sync.Once
	v1, v2 *zones.Snapshot
}

func bigSnapshots(b *testing.B) (*zones.Snapshot, *zones.Snapshot) {
	b.Helper()
	fixture.once.Do(func() {
		fixture.v1 = snapshot(b, 1, nil, zoneText(10, 1, 1_000_000))
		fixture.v2 = snapshot(b, 2, fixture.v1, zoneText(11, 2, 1_000_000))
	})
	if fixture.v2 == nil {
		b.Fatal("no fixture")
	}
	return fixture.v1, fixture.v2
}

func bigServer(b *testing.B) *Server {
	b.Helper()
	v1, v2 := bigSnapshots(b)
	x, err := New(testConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	x.Publish(v1)
	x.Publish(v2)
	return x
}

// BenchmarkAXFR1M serves an AXFR of the zone into a writer that
// discards, as ServeTCP runs under a TCP connection: enumerating the
// records, packing them with compression into messages.
func BenchmarkAXFR1M(b *testing.B) {
	x := bigServer(b)
	q := new(dns.Msg)
	q.SetAxfr("example.com.")
	benchTransfer(b, x, q)
}

// BenchmarkIXFR1M serves an IXFR of one change in the zone.
func BenchmarkIXFR1M(b *testing.B) {
	x := bigServer(b)
	q := new(dns.Msg)
	q.SetIxfr("example.com.", 10, "ns1.example.com.", "hostmaster.example.com.")
	benchTransfer(b, x, q)
}

// BenchmarkJournal1M is what Publish adds when the zone changed: the
// comparison of its old and new records for the journal.
func BenchmarkJournal1M(b *testing.B) {
	v1, v2 := bigSnapshots(b)
	x, err := New(testConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	x.Publish(v1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			x.Publish(v2)
		} else {
			x.Publish(v1)
		}
	}
}

func benchTransfer(b *testing.B, x *Server, q *dns.Msg) {
	raw, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParseAddrPort("127.0.0.1:53000")
	var msgs, octets int
	write := func(m []byte) error { msgs++; octets += len(m); return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		msgs, octets = 0, 0
		if err := x.ServeTCP(context.Background(), raw, client, write); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(msgs), "msgs/op")
	b.ReportMetric(float64(octets), "octets/op")
}

package zones

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestSerialLess(t *testing.T) {
	for _, c := range []struct {
		a, b uint32
		less bool
	}{
		{1, 2, true},
		{2, 1, false},
		{5, 5, false},
		{0xFFFFFFFF, 0, true}, // wraps (RFC 1982 section 3.2)
		{0, 0xFFFFFFFF, false},
		{1, 1 + 1<<31 - 1, true},
		{1, 1 + 1<<31, false}, // undefined: neither is less
		{1 + 1<<31, 1, false},
	} {
		if got := SerialLess(c.a, c.b); got != c.less {
			t.Errorf("SerialLess(%d, %d) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}

// poolZone is zoneGen with a pool p.<origin> of two endpoints whose
// health is given.
func poolZone(t *testing.T, origin string, gen int, h1, h2 HealthState) *Zone {
	z := zoneGen(t, origin, gen)
	z.Datacenters = []Datacenter{{Name: "a", Lat: 1, Lon: 1}}
	p := NewPool("p." + origin)
	p.UnknownIsUp = false
	p.Endpoints = []Endpoint{
		{Addr: netip.MustParseAddr("192.0.2.1"), Datacenter: "a", Weight: 1, Health: h1},
		{Addr: netip.MustParseAddr("2001:db8::1"), Datacenter: "a", Weight: 1, Health: h2},
	}
	z.Pools = []Pool{p}
	return z
}

func TestServedSerial(t *testing.T) {
	const origin = "example.com."
	now := uint32(time.Now().Unix())
	withSerial := func(z *Zone, serial uint32) *Zone {
		soa := dns.Copy(z.Records[0].RR).(*dns.SOA)
		soa.Serial = serial
		z.Records[0].RR = soa
		return z
	}
	steps := []struct {
		name string
		zone func() *Zone
		// want is the serial, or with clock the least serial (it is
		// then at least the clock at the start of the test).
		want  uint32
		clock bool
	}{
		{"first: the file's", func() *Zone { return zoneGen(t, origin, 7) }, 7, false},
		{"same content, new Zone: kept", func() *Zone { return zoneGen(t, origin, 7) }, 7, false},
		{"file serial moved on", func() *Zone { return zoneGen(t, origin, 9) }, 9, false},
		{"content changed, serial not: one more", func() *Zone { return withSerial(zoneGen(t, origin, 10), 9) }, 10, false},
		{"serial moved back: still one more", func() *Zone { return withSerial(zoneGen(t, origin, 11), 3) }, 11, false},
		{"serial back, nothing else changed: kept", func() *Zone { return withSerial(zoneGen(t, origin, 11), 3) }, 11, false},
		{"pools: the clock", func() *Zone { return poolZone(t, origin, 11, HealthUp, HealthUp) }, now, true},
	}
	var prev *Snapshot
	var last uint32
	for i, s := range steps {
		snap, err := Rebuild(prev, []*Zone{s.zone()}, uint64(i+1))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, ok := snap.Serial(origin)
		if !ok {
			t.Fatalf("%s: zone not served", s.name)
		}
		if s.clock && (SerialLess(got, s.want) || got == last) || !s.clock && got != s.want {
			t.Errorf("%s: serial %d, want %d (clock %v)", s.name, got, s.want, s.clock)
		}
		// Queries see the same serial as transfers.
		a := snap.Lookup(mustWire(t, origin), dns.TypeSOA)
		if q := a.Answer[0].(*dns.SOA).Serial; q != got {
			t.Errorf("%s: SOA query serial %d, transfer serial %d", s.name, q, got)
		}
		if rrs := snap.TransferRecords(origin); rrs[0].(*dns.SOA).Serial != got {
			t.Errorf("%s: transfer SOA %v", s.name, rrs[0])
		}
		prev, last = snap, got
	}
	// A pool endpoint going down changes the transfer, so the serial.
	snap, err := Rebuild(prev, []*Zone{poolZone(t, origin, 11, HealthDown, HealthUp)}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := snap.Serial(origin); !SerialLess(last, got) {
		t.Errorf("after a health change: serial %d, was %d", got, last)
	}
}

func TestTransferRecordsPools(t *testing.T) {
	const origin = "example.com."
	for _, c := range []struct {
		name   string
		h1, h2 HealthState
		want   []string // the pool's records
	}{
		{"both up", HealthUp, HealthUp, []string{"p.example.com.\t30\tIN\tA\t192.0.2.1", "p.example.com.\t30\tIN\tAAAA\t2001:db8::1"}},
		{"one down", HealthDown, HealthUp, []string{"p.example.com.\t30\tIN\tAAAA\t2001:db8::1"}},
		{"all down: fail open", HealthDown, HealthDown, []string{"p.example.com.\t30\tIN\tA\t192.0.2.1", "p.example.com.\t30\tIN\tAAAA\t2001:db8::1"}},
	} {
		snap, err := Build([]*Zone{poolZone(t, origin, 1, c.h1, c.h2)}, 1)
		if err != nil {
			t.Fatal(err)
		}
		rrs := snap.TransferRecords(origin)
		if rrs[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("%s: first record %v", c.name, rrs[0])
		}
		var got []string
		for _, rr := range rrs[1:] {
			if rr.Header().Name == "p."+origin {
				got = append(got, rr.String())
			}
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: pool records\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
		if len(rrs) != 4+len(c.want) { // SOA, NS, ns1 A, v A, the pool's
			t.Errorf("%s: %d records: %v", c.name, len(rrs), rrs)
		}
	}
	if snap, _ := Build([]*Zone{zoneGen(t, origin, 1)}, 1); snap.TransferRecords("nope.") != nil {
		t.Error("records for a zone not served")
	}
}

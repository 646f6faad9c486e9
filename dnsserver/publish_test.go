package dnsserver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// TestPublishPatch publishes snapshots made by zones.Patch: the state is
// updated for the zones changed only (their tables and counters), and
// answers, tables and counters match what a state built from nothing
// for the same snapshot holds.
func TestPublishPatch(t *testing.T) {
	db := worldDB(t)
	svc := poolSnapshotZones(t, testPool("www.svc.example."), testPool("api.svc.example."))[0]
	other := parseZone(t, "other.example.", "$ORIGIN other.example.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.2\n")
	other.Datacenters = testDCs
	other.Pools = []zones.Pool{testPool("pool.other.example.")}
	snap1, err := zones.Build([]*zones.Zone{svc, other}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, addr := startServer(t, Config{}, snap1)
	s.SetGeo(db)
	london := "81.2.69.0/24"
	if got := answerDCs(exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, london))); len(got) == 0 || got[0] != "eu-west" {
		t.Fatalf("before: %v", got)
	}
	st1 := s.st.Load()
	zoneStats1 := st1.zoneStatsFor(snap1.Lookup(mustWireName(t, "www.svc.example."), dns.TypeA))

	// Drain eu-west in www: only svc.example. is compiled again.
	changed := *svc
	changed.Pools = slices.Clone(svc.Pools)
	www := &changed.Pools[0]
	www.Endpoints = slices.Clone(www.Endpoints)
	for i := range www.Endpoints {
		if www.Endpoints[i].Datacenter == "eu-west" {
			www.Endpoints[i].Admin = zones.AdminDrain
		}
	}
	snap2, err := zones.Patch(snap1, []*zones.Zone{&changed}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ch := snap2.Change(); ch.From != 1 || len(ch.Added) != 1 || len(ch.Removed) != 1 {
		t.Fatalf("change %+v", ch)
	}
	if !s.Publish(snap2) {
		t.Fatal("not published")
	}
	if got := answerDCs(exchange(t, "udp", addr, ecsQuery("www.svc.example.", dns.TypeA, london))); len(got) != 4 || slices.Contains(got, "eu-west") || !slices.Contains(got, "eu-central") {
		t.Errorf("after the drain: %v", got)
	}
	st2 := s.st.Load()
	if st2.zoneStatsFor(snap2.Lookup(mustWireName(t, "www.svc.example."), dns.TypeA)) != zoneStats1 {
		t.Error("the zone's counters were not carried over")
	}
	otherPool := snap2.Lookup(mustWireName(t, "pool.other.example."), dns.TypeA).Pool
	if st2.tables.at(otherPool.Index) != st1.tables.at(otherPool.Index) || st2.poolView(otherPool) != st1.poolView(otherPool) {
		t.Error("an unchanged zone's table or counters were made again")
	}
	sameAsFull(t, s, st2)

	// Remove other.example.: its slots are emptied, its counters dropped.
	snap3, err := zones.Patch(snap2, nil, []string{"other.example."}, 3)
	if err != nil {
		t.Fatal(err)
	}
	s.Publish(snap3)
	if r := exchange(t, "udp", addr, ecsQuery("pool.other.example.", dns.TypeA, london)); r.Rcode != dns.RcodeRefused {
		t.Errorf("removed zone: rcode %s", dns.RcodeToString[r.Rcode])
	}
	st3 := s.st.Load()
	if st3.tables.at(otherPool.Index) != nil || st3.poolStats.at(otherPool.Index) != nil {
		t.Error("the removed pool's slot still holds its table or counters")
	}
	if _, ok := s.stats.zones["other.example."]; ok {
		t.Error("the removed zone's counters are kept")
	}
	sameAsFull(t, s, st3)
}

// sameAsFull checks that st holds, for every pool and zone of its
// snapshot, what a state built from nothing would.
func sameAsFull(t *testing.T, s *Server, st *state) {
	t.Helper()
	full := buildState(st.snap, st.db, nil)
	for _, p := range st.snap.Pools() {
		a, b := st.tables.at(p.Index), full.tables.at(p.Index)
		if (a == nil) != (b == nil) || a != nil && a.geometry != b.geometry {
			t.Errorf("pool %s: table %v, from nothing %v", p.Name, a, b)
		}
		if v := st.poolView(p); v == nil || v.poolStats != s.stats.pools[poolKey{p.Zone.Origin, p.Name}] {
			t.Errorf("pool %s: counters %v", p.Name, v)
		}
	}
	for _, r := range st.snap.ZoneRefs() {
		if st.zoneStats.at(r.Slot) != s.stats.zones[r.Origin] || s.stats.zones[r.Origin] == nil {
			t.Errorf("zone %s: counters not in its slot", r.Origin)
		}
	}
	if len(s.stats.pools) != st.snap.PoolCount() || len(s.stats.zones) != len(st.snap.Zones()) {
		t.Errorf("%d pool and %d zone counters for %d pools and %d zones", len(s.stats.pools), len(s.stats.zones), st.snap.PoolCount(), len(st.snap.Zones()))
	}
}

func mustWireName(t *testing.T, name string) []byte {
	t.Helper()
	w, err := zones.WireName(name)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSlots(t *testing.T) {
	var s slots[int]
	e := s.edit(3000)
	for i := range 3000 {
		e.set(i, i+1)
	}
	a := e.done()
	// b shares every chunk of a but the one it writes.
	e = a.edit(3000)
	e.set(5, -1)
	b := e.done()
	if a.at(5) != 6 || b.at(5) != -1 || b.at(2999) != 3000 || &a.chunks[1][0] != &b.chunks[1][0] || &a.chunks[0][0] == &b.chunks[0][0] {
		t.Error("edit did not copy on write")
	}
	// Shrinking cuts the last chunk; growing reads zero.
	c := b.edit(1500).done()
	if c.at(1499) != 1500 || c.at(1500) != 0 || c.len() != 1500 {
		t.Errorf("shrunk: %d %d %d", c.at(1499), c.at(1500), c.len())
	}
	d := c.edit(2100).done()
	if d.at(1600) != 0 || d.at(2099) != 0 || d.at(2100) != 0 || d.at(-1) != 0 {
		t.Error("grown slots are not zero")
	}
}

package dnsserver

import (
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// Query statistics. The query path finds its counters by index (the
// answer's zone slot, the pool's Index, small tables for type and rcode)
// and adds to them atomically: no label lookup, no lock, no allocation.
// The collector (metrics.go) turns them into metrics at scrape time.
// Counters live in a table keyed by zone origin and pool name, so they
// survive snapshots; each state holds slices into it by slot.

// statTypes are the query types counted under their own name; the rest
// count as "other", which bounds the series whatever clients send.
var statTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeCAA, dns.TypeCNAME,
	dns.TypeDNSKEY, dns.TypeDS, dns.TypeHTTPS, dns.TypeMX, dns.TypeNS,
	dns.TypePTR, dns.TypeSOA, dns.TypeSRV, dns.TypeSVCB, dns.TypeTXT,
}

const numTypes = len(statTypes) + 1 // the last is "other"

// typeIndexes maps query types below 256 to their index in statTypes.
var typeIndexes = func() (t [256]uint8) {
	for i := range t {
		t[i] = uint8(numTypes - 1)
	}
	for i, qt := range statTypes {
		if qt < 256 {
			t[qt] = uint8(i)
		}
	}
	return t
}()

func typeIndex(qtype uint16) int {
	if qtype < 256 {
		return int(typeIndexes[qtype])
	}
	if qtype == dns.TypeCAA {
		return 3
	}
	return numTypes - 1
}

func typeName(i int) string {
	if i < len(statTypes) {
		return dns.TypeToString[statTypes[i]]
	}
	return "other"
}

// statRcodes are the response codes the server sends, in index order.
var statRcodes = [...]int{
	dns.RcodeSuccess, dns.RcodeFormatError, dns.RcodeServerFailure,
	dns.RcodeNameError, dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeBadVers,
	dns.RcodeBadCookie,
}

const numRcodes = len(statRcodes) + 1 // the last is "other", which we never send

func rcodeIndex(rcode int) int {
	if rcode >= 0 && rcode <= dns.RcodeRefused {
		return rcode
	}
	switch rcode {
	case dns.RcodeBadVers:
		return 6
	case dns.RcodeBadCookie:
		return 7
	}
	return numRcodes - 1
}

func rcodeName(i int) string {
	if i < len(statRcodes) {
		return dns.RcodeToString[statRcodes[i]]
	}
	return "other"
}

// latencyBounds are the histogram's upper bounds, in nanoseconds. An
// answer takes microseconds; the upper buckets catch a stalled process.
var latencyBounds = [...]uint64{
	10e3, 25e3, 50e3, 100e3, 250e3, 500e3,
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6,
}

// histogram counts observations per bucket (not cumulatively; the last is
// +Inf) and their sum in nanoseconds.
type histogram struct {
	counts [len(latencyBounds) + 1]atomic.Uint64
	sum    atomic.Uint64
}

func (h *histogram) observe(ns uint64) {
	i := 0
	for i < len(latencyBounds) && ns > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(ns)
}

// zoneStats are the counters of one zone, or of the queries outside all
// zones ("dropped").
type zoneStats struct {
	origin    string
	requests  [2][2][numTypes]atomic.Uint64 // proto (udp, tcp), family (IPv4, IPv6), type
	responses [numRcodes]atomic.Uint64
	do        atomic.Uint64
	truncated atomic.Uint64
	ecs       atomic.Uint64
	latency   [numTypes]histogram
}

// droppedZone labels queries that fell in no zone, as CoreDNS does.
const droppedZone = "dropped"

// poolStats are the counters of one pool, kept across snapshots.
type poolStats struct {
	zone, name string
	answers    map[string]*atomic.Uint64 // by datacenter of the first address; "none" for empty answers
	failOpen   atomic.Uint64
	fallback   atomic.Uint64
}

// noDatacenter labels pool answers without an address.
const noDatacenter = "none"

// poolView is a pool's counters as one state sees them: the answer
// counters in the order of the pool's datacenters.
type poolView struct {
	*poolStats
	byDC []*atomic.Uint64
	none *atomic.Uint64
}

// statsTable holds every counter, by zone origin and pool. It is changed
// under Server.mu, off the query path.
type statsTable struct {
	dropped zoneStats
	zones   map[string]*zoneStats
	pools   map[poolKey]*poolStats
}

type poolKey struct{ zone, name string }

func newStatsTable() *statsTable {
	return &statsTable{
		dropped: zoneStats{origin: droppedZone},
		zones:   map[string]*zoneStats{},
		pools:   map[poolKey]*poolStats{},
	}
}

// attach gives st the counters of its snapshot's zones and pools, taking
// prev's when the snapshot is the same (a GeoIP change), and forgets the
// counters of zones and pools that are gone. A snapshot rebuilt from
// prev's (zones.Change) costs the zones it changed, not all of them.
func (t *statsTable) attach(st, prev *state) {
	if prev != nil && prev.snap == st.snap {
		st.zoneStats, st.poolStats = prev.zoneStats, prev.poolStats
		return
	}
	if st.snap == nil {
		return
	}
	if ch := st.snap.Change(); prev != nil && prev.snap != nil && ch.From != 0 && ch.From == prev.snap.Version {
		ze := prev.zoneStats.edit(st.snap.ZoneSlots())
		pe := prev.poolStats.edit(st.snap.PoolSlots())
		for _, r := range ch.Removed {
			ze.set(r.Slot, nil)
			for _, p := range r.Pools {
				pe.set(p.Index, nil)
			}
		}
		liveZones, livePools := map[string]bool{}, map[poolKey]bool{}
		for _, r := range ch.Added {
			ze.set(r.Slot, t.zone(r.Origin))
			liveZones[r.Origin] = true
			for _, p := range r.Pools {
				pe.set(p.Index, t.view(p))
				livePools[poolKey{p.Zone.Origin, p.Name}] = true
			}
		}
		// Counters of what is gone for good, not compiled again.
		for _, r := range ch.Removed {
			if !liveZones[r.Origin] {
				delete(t.zones, r.Origin)
			}
			for _, p := range r.Pools {
				if k := (poolKey{p.Zone.Origin, p.Name}); !livePools[k] {
					delete(t.pools, k)
				}
			}
		}
		st.zoneStats, st.poolStats = ze.done(), pe.done()
		return
	}
	var noZones slots[*zoneStats]
	ze := noZones.edit(st.snap.ZoneSlots())
	live := map[string]bool{}
	for _, r := range st.snap.ZoneRefs() {
		ze.set(r.Slot, t.zone(r.Origin))
		live[r.Origin] = true
	}
	for origin := range t.zones {
		if !live[origin] {
			delete(t.zones, origin)
		}
	}
	var noPools slots[*poolView]
	pe := noPools.edit(st.snap.PoolSlots())
	livePools := map[poolKey]bool{}
	for _, p := range st.snap.Pools() {
		pe.set(p.Index, t.view(p))
		livePools[poolKey{p.Zone.Origin, p.Name}] = true
	}
	for k := range t.pools {
		if !livePools[k] {
			delete(t.pools, k)
		}
	}
	st.zoneStats, st.poolStats = ze.done(), pe.done()
}

// zone returns the counters of origin, made when new.
func (t *statsTable) zone(origin string) *zoneStats {
	zs := t.zones[origin]
	if zs == nil {
		zs = &zoneStats{origin: origin}
		t.zones[origin] = zs
	}
	return zs
}

// view returns the counters of p as its answers count them, its pool's
// made when new.
func (t *statsTable) view(p *zones.CompiledPool) *poolView {
	k := poolKey{p.Zone.Origin, p.Name}
	ps := t.pools[k]
	if ps == nil {
		ps = &poolStats{zone: k.zone, name: k.name, answers: map[string]*atomic.Uint64{}}
		t.pools[k] = ps
	}
	v := &poolView{poolStats: ps, byDC: make([]*atomic.Uint64, len(p.DCs)), none: ps.counter(noDatacenter)}
	for i, dc := range p.DCs {
		v.byDC[i] = ps.counter(dc.Name)
	}
	return v
}

func (ps *poolStats) counter(dc string) *atomic.Uint64 {
	c := ps.answers[dc]
	if c == nil {
		c = new(atomic.Uint64)
		ps.answers[dc] = c
	}
	return c
}

// record counts one packet and its reply (nil: none was sent). start is
// when the packet was read (nanotime).
func (s *Server) record(q *query, reply []byte, tcp bool, src netip.Addr, start int64) {
	zs := q.zs
	if zs == nil {
		zs = &s.stats.dropped
	}
	proto, fam := 0, 0
	if tcp {
		proto = 1
	}
	if src.Is6() {
		fam = 1
	}
	ti := typeIndex(q.qtype)
	zs.requests[proto][fam][ti].Add(1)
	if reply == nil {
		return
	}
	zs.responses[rcodeIndex(q.rcode)].Add(1)
	if q.do {
		zs.do.Add(1)
	}
	if q.ecs.present {
		zs.ecs.Add(1)
	}
	if !tcp && len(reply) > 2 && reply[2]&(flagTC>>8) != 0 {
		zs.truncated.Add(1)
	}
	zs.latency[ti].observe(uint64(max(nanotime()-start, 0)))
}

// recordPool counts a pool answer: under the pool that gave it, by the
// datacenter of its first address, and as a fallback of the pool asked.
func (st *state) recordPool(asked *zones.CompiledPool, ch *choice) {
	if v := st.poolView(ch.pool); v != nil {
		if ch.n == 0 || ch.first < 0 || ch.first >= len(v.byDC) {
			v.none.Add(1)
		} else {
			v.byDC[ch.first].Add(1)
		}
		if ch.failOpen {
			v.failOpen.Add(1)
		}
	}
	if ch.pool != asked {
		if v := st.poolView(asked); v != nil {
			v.fallback.Add(1)
		}
	}
}

func (st *state) poolView(p *zones.CompiledPool) *poolView {
	if p == nil {
		return nil
	}
	return st.poolStats.at(p.Index)
}

// zoneStatsFor returns the counters of a's zone, or nil.
func (st *state) zoneStatsFor(a *zones.Answer) *zoneStats {
	if a.Zone == nil {
		return nil
	}
	return st.zoneStats.at(a.Zone.Slot)
}

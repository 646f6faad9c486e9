package zones

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
)

// Snapshot is an immutable, query-ready compilation of zones. It is built
// off the query path by Build and never modified afterwards, so any number
// of goroutines may read it without locks.
//
// Every answer the snapshot can give is computed and packed at build time
// (see Answer); a lookup is a handful of map reads keyed by lower-case
// wire-format names, which lets the query path avoid allocations.
type Snapshot struct {
	// Version orders snapshots; a server never replaces a snapshot with an
	// older one.
	Version uint64

	// base and over map lower-case wire-format origins to their trees.
	// over holds what changed since base was made (nil for a zone
	// removed), so that a change of one zone copies neither the map nor
	// the other trees; Rebuild folds over into a new base once it grows
	// (rebuild.go). Both are never written once the snapshot is built.
	base, over map[string]*zoneTree
	own        bool     // base is this snapshot's, being built from nothing
	count      int      // zones served
	names      []string // origins, sorted, for Zones
	npools     int      // pools served
	// allPools is every pool, made on the first call of Pools.
	poolsOnce sync.Once
	allPools  []*CompiledPool
	// rejected holds, by wire key, each zone given that could not be
	// compiled and why, so that Rebuild does not try an unchanged broken
	// zone again.
	rejected map[string]rejection
	// invalid lists the zones that could not be compiled, by origin.
	invalid []InvalidZone
	// slots is one more than the highest pool Index, free the indices
	// below it that no pool holds; zoneSlots and zoneFree the same for
	// ZoneRef.Slot. A zone compiled again keeps its pools' indices.
	slots, zoneSlots int
	free, zoneFree   []int
	// rampUntil is when the last slow start of any pool ends.
	rampUntil time.Time
	// resignAt is when the first zone's signatures are due to be renewed.
	resignAt time.Time
	// change is what this snapshot changed from the one it was rebuilt
	// from.
	change Change
}

// rejection is a zone that could not be compiled, and why.
type rejection struct {
	z   *Zone
	err error
}

// ResignAt is when the signatures of the first signed zone are due to be
// made again: Rebuild then compiles that zone again, and the snapshot
// should be rebuilt at that time. Zero when no zone is signed.
func (s *Snapshot) ResignAt() time.Time { return s.resignAt }

// RampUntil is when the last slow start among the snapshot's pools ends:
// until then weights grow with time, and the snapshot should be rebuilt
// every so often (Rebuild recompiles only the zones that ramp). Zero when
// nothing ramps.
func (s *Snapshot) RampUntil() time.Time { return s.rampUntil }

// Pools returns every pool of the snapshot. The first call makes the list
// (the query path never needs it).
func (s *Snapshot) Pools() []*CompiledPool {
	s.poolsOnce.Do(func() {
		s.allPools = make([]*CompiledPool, 0, s.npools)
		s.each(func(_ string, t *zoneTree) { s.allPools = append(s.allPools, t.pools...) })
	})
	return s.allPools
}

// PoolCount is the number of pools, len(Pools()) without making the list.
func (s *Snapshot) PoolCount() int { return s.npools }

// PoolSlots bounds the pools' Index values: every Index is below it. Slices
// indexed by pool hold this many entries; indices of pools that are gone
// are given to new pools.
func (s *Snapshot) PoolSlots() int { return s.slots }

// zoneTree is one zone inside a snapshot.
type zoneTree struct {
	origin string
	ref    *ZoneRef         // shared by the zone's answers and pools
	nodes  map[string]*node // key: lower-case wire name; includes empty non-terminals
	pools  []*CompiledPool  // the zone's pools, in definition order
	// rampUntil is when the zone's last slow start ends; a tree that ramps
	// is compiled again by every Rebuild until then.
	rampUntil time.Time
	// resignAt is when the signatures made at build time are due to be
	// made again; zero for an unsigned zone.
	resignAt time.Time
	keys     *signing.Keyset
	// src is the zone compiled, and version the version of the snapshot
	// that first served it: an invalid zone keeps being served from
	// them, and is compiled again from src when its weights or
	// signatures are due.
	src     *Zone
	version uint64
	// serial is the SOA serial served, fileSerial the one the zone's
	// source gave and digest its content's hash (serial.go): the next
	// version of the zone decides its serial from them.
	serial     uint32
	fileSerial uint32
	digest     uint64
	// xfr is the zone as transferred, made at the first TransferRecords.
	xfrOnce sync.Once
	xfr     []dns.RR

	nxdomain *Answer // NXDOMAIN with the SOA in authority (RFC 2308 section 2.1)
	nodata   *Answer // NODATA with the SOA in authority (RFC 2308 section 2.2)
}

// node is one name of a zone: a name with records or an empty
// non-terminal (RFC 4592 section 2.2.2), which exists but owns nothing.
type node struct {
	name   string // canonical presentation form
	rrsets map[uint16][]dns.RR

	answers map[uint16]*Answer // per type owned (or, at a CNAME, per type the chain ends in)
	other   *Answer            // any other type: NODATA, or the CNAME chain ending in NODATA
	any     *Answer            // qtype ANY (RFC 8482)

	// referral is set on a delegation point and on every name below one:
	// queries there get the referral instead of data (RFC 1034 4.3.2 3b).
	referral *Answer
	cut      bool // this node itself is a delegation point

	wildcard *node // the "*" child of this node, the source of synthesis (RFC 4592)

	pool *CompiledPool // A and AAAA are chosen per client
}

// ZoneRef identifies a zone to the server's per-zone statistics: every
// answer and pool points to its zone's.
type ZoneRef struct {
	// Origin is the zone's apex, fully qualified and lower case.
	Origin string
	// Keys sign the zone's answers; nil when it is not signed.
	Keys *signing.Keyset
	// Slot numbers the zones of a snapshot from 0, as CompiledPool.Index
	// numbers pools: a zone keeps its slot while it is served, compiled
	// again or not, and a zone removed leaves its slot to another.
	Slot int
	// Pools are the zone's pools.
	Pools []*CompiledPool
}

// ZoneSlots bounds the zones' Slot values: every Slot is below it.
func (s *Snapshot) ZoneSlots() int { return s.zoneSlots }

// ZoneRefs returns the snapshot's zones, in no particular order.
func (s *Snapshot) ZoneRefs() []*ZoneRef {
	out := make([]*ZoneRef, 0, s.count)
	s.each(func(_ string, t *zoneTree) { out = append(out, t.ref) })
	return out
}

// Zones returns the origins of the snapshot's zones, sorted.
func (s *Snapshot) Zones() []string { return s.names }

// Lookup finds the answer to a query for lname and qtype. lname is the
// query name in lower-case wire format. It returns nil when no zone of
// the snapshot contains the name, which the server answers with REFUSED.
//
// Lookup follows RFC 1034 section 4.3.2: find the closest enclosing zone,
// stop at a zone cut with a referral, answer exact matches, synthesize
// from a wildcard at the closest encloser (RFC 4592 section 3.3.1), and
// otherwise deny the name.
func (s *Snapshot) Lookup(lname []byte, qtype uint16) *Answer {
	z, at := s.findZone(lname)
	if z == nil {
		return nil
	}
	if qtype == dns.TypeDS && at == 0 && lname[0] != 0 {
		// DS at a zone's apex is its parent's data: a server of both
		// answers it from the parent (RFC 4035 section 3.1.4.1).
		if p, _ := s.findZone(lname[int(lname[0])+1:]); p != nil {
			z = p
		}
	}
	off := 0
	for {
		n := z.nodes[string(lname[off:])]
		if n == nil {
			if lname[off] == 0 { // cannot happen: the apex is a node
				return z.nxdomain
			}
			off += int(lname[off]) + 1
			continue
		}
		if off == 0 {
			return n.answer(qtype)
		}
		// n is the closest encloser of a name that does not exist.
		if n.referral != nil {
			return n.referral
		}
		if n.wildcard != nil {
			return n.wildcard.answer(qtype)
		}
		return z.nxdomain
	}
}

// answer returns the node's answer for qtype.
func (n *node) answer(qtype uint16) *Answer {
	// DS lives on the parent side of a cut (RFC 4035 section 3.1.4.1), so a
	// DS query at the delegation point is answered from this zone.
	if n.referral != nil && !(n.cut && qtype == dns.TypeDS) {
		return n.referral
	}
	if qtype == dns.TypeANY {
		return n.any
	}
	if a := n.answers[qtype]; a != nil {
		return a
	}
	return n.other
}

// findZone returns the zone that is the longest suffix of lname, and the
// offset in lname where its origin starts.
func (s *Snapshot) findZone(lname []byte) (*zoneTree, int) {
	for off := 0; off < len(lname); off += int(lname[off]) + 1 {
		if z := s.tree(string(lname[off:])); z != nil {
			return z, off
		}
		if lname[off] == 0 {
			break
		}
	}
	return nil, 0
}

// Build validates zs and compiles them into a Snapshot with the given
// version. An error in any zone fails the whole build: Build is for tools
// that must refuse invalid input (apply, check); a server reloading its
// zones uses Rebuild, which serves the valid ones.
func Build(zs []*Zone, version uint64) (*Snapshot, error) {
	s := rebuild(nil, zs, version, time.Now())
	switch len(s.invalid) {
	case 0:
		return s, nil
	case 1:
		return nil, s.invalid[0].Err
	}
	errs := make([]error, len(s.invalid))
	for i, iz := range s.invalid {
		errs[i] = iz.Err
	}
	return nil, errors.Join(errs...)
}

// ErrUnsigned is the reason a zone that was signed is refused when it
// comes without keys: its DS may be at the parent, and answers without
// signatures would then fail validation (bogus) until the DS is gone.
var ErrUnsigned = errors.New("would go unsigned while its DS may be at the parent")

// InvalidZone is a zone Rebuild could not compile from the data it was
// given, and why.
type InvalidZone struct {
	// Origin is the zone's apex, fully qualified and lower case.
	Origin string
	// Err says what is wrong: Zone.Invalid, validation errors (Errors,
	// naming source and line), ErrUnsigned or a zone defined twice.
	Err error
	// KeptVersion is the version of the snapshot that first served the
	// data still served for the zone, its last good version; zero when
	// the zone never was valid (since the process started), and is not
	// served.
	KeptVersion uint64
	// Since is when the zone was first found invalid, by the rebuilds
	// leading to this snapshot.
	Since time.Time
}

// Invalid returns the zones given to the Rebuild of this snapshot that
// could not be compiled, sorted by origin. Each is served at its last good
// version if an earlier snapshot had one (KeptVersion), and not at all
// otherwise.
func (s *Snapshot) Invalid() []InvalidZone { return s.invalid }

// wireKey returns the lower-case wire form of name as a map key.
func wireKey(name string) (string, error) {
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return "", fmt.Errorf("bad name %q: %w", name, err)
	}
	// Lower the octets, not the presentation form, so that an escaped
	// letter (\065) folds too; length octets are below 64, never letters.
	return lowerASCII(string(buf[:off])), nil
}

// WireName returns the lower-case wire form of a presentation name, the
// form Lookup takes. It is meant for tests and tools, not the query path.
func WireName(name string) ([]byte, error) {
	k, err := wireKey(name)
	return []byte(k), err
}

// buildTree compiles one validated zone; prev is the tree of its origin
// served before, if any, for the serial.
func buildTree(z *Zone, now time.Time, prev *zoneTree) (*zoneTree, error) {
	t, pools, err := compileTree(z, now, prev)
	if err != nil {
		return nil, err
	}
	t.pools = pools
	for _, p := range pools {
		if p.RampUntil.After(t.rampUntil) {
			t.rampUntil = p.RampUntil
		}
	}
	t.setRef()
	t.ref.Keys, t.ref.Pools = t.keys, t.pools
	return t, nil
}

// setRef points the tree's answers and pools to its ZoneRef.
func (t *zoneTree) setRef() {
	t.ref = &ZoneRef{Origin: t.origin}
	set := func(a *Answer) {
		if a != nil {
			a.Zone = t.ref
		}
	}
	set(t.nxdomain)
	set(t.nodata)
	for _, n := range t.nodes {
		for _, a := range n.answers {
			set(a)
		}
		set(n.other)
		set(n.any)
		set(n.referral)
	}
	for _, p := range t.pools {
		p.Zone = t.ref
	}
}

func compileTree(z *Zone, now time.Time, prev *zoneTree) (*zoneTree, []*CompiledPool, error) {
	t := &zoneTree{origin: CanonicalName(z.Origin), nodes: map[string]*node{}}
	for _, r := range z.Records {
		name := CanonicalName(r.RR.Header().Name)
		n, err := t.ensure(name)
		if err != nil {
			return nil, nil, &Error{Source: z.Source, Line: r.Line, Msg: err.Error()}
		}
		rr := dns.Copy(r.RR)
		rr.Header().Name = name
		n.rrsets[rr.Header().Rrtype] = append(n.rrsets[rr.Header().Rrtype], rr)
	}
	apex := t.nodes[mustKey(t.origin)]
	soa, _ := apex.rrsets[dns.TypeSOA][0].(*dns.SOA)
	if soa == nil {
		return nil, nil, &Error{Source: z.Source, Msg: fmt.Sprintf("zone %s has no SOA record", t.origin)}
	}
	// The serial is settled before any answer holds the SOA (and before
	// signing), so that queries and transfers see the same one.
	t.fileSerial, t.digest = soa.Serial, contentDigest(z)
	t.serial = servedSerial(prev, z, soa.Serial, t.digest, now)
	soa.Serial = t.serial
	if z.Keys != nil {
		if err := addKeyRecords(t, z, apex, soa); err != nil {
			return nil, nil, err
		}
	}
	b := &builder{now: now, t: t, soa: negativeSOA(soa)}
	t.nxdomain = b.pack(&Answer{Rcode: dns.RcodeNameError, Authoritative: true, Ns: []dns.RR{b.soa}}, "")
	t.nodata = b.pack(&Answer{Rcode: dns.RcodeSuccess, Authoritative: true, Ns: []dns.RR{b.soa}}, "")
	if err := b.compilePools(z); err != nil {
		return nil, nil, err
	}

	// Delegation points first, so that every node knows whether it is
	// occluded before its answers are computed.
	keys := make([]string, 0, len(t.nodes))
	for k := range t.nodes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) < len(keys[j]) }) // parents first
	for _, k := range keys {
		n := t.nodes[k]
		if n.name != t.origin && len(n.rrsets[dns.TypeNS]) > 0 {
			n.cut = true
		}
	}
	for _, k := range keys {
		n := t.nodes[k]
		if cut := b.topCut(n.name); cut != nil {
			if cut.referral == nil {
				cut.referral = b.referral(cut)
			}
			n.referral = cut.referral
		}
		if p := parentName(n.name); n.name != t.origin && isWildcard(n.name) && p != "" {
			t.nodes[mustKey(p)].wildcard = n
		}
	}
	for _, k := range keys {
		n := t.nodes[k]
		if n.pool != nil && n.referral != nil {
			return nil, nil, &Error{Source: z.Source, Line: n.pool.Source.Line, Msg: fmt.Sprintf("pool %s is below the delegation at %s", n.name, parentName(n.name))}
		}
		if n.referral != nil && !n.cut {
			continue // occluded: only reachable as glue
		}
		b.answers(n)
	}
	if z.Keys != nil {
		var id uint64
		if err := b.signTree(z.Keys, now, &id); err != nil {
			return nil, nil, &Error{Source: z.Source, Msg: fmt.Sprintf("zone %s: %v", t.origin, err)}
		}
		t.keys, t.resignAt = z.Keys, z.Keys.Policy.RefreshAt(now)
	}
	return t, b.pools, nil
}

// addKeyRecords publishes a signed zone's keys at its apex: DNSKEY, and
// CDS and CDNSKEY for the parent to take up (RFC 7344, RFC 8078), with
// the SOA's TTL. A signed zone's own records must not hold what signing
// makes.
func addKeyRecords(t *zoneTree, z *Zone, apex *node, soa *dns.SOA) error {
	if z.Keys.Zone != t.origin {
		return &Error{Source: z.Source, Msg: fmt.Sprintf("zone %s is given the keys of %s", t.origin, z.Keys.Zone)}
	}
	for _, r := range z.Records {
		switch r.RR.Header().Rrtype {
		case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM:
			return &Error{Source: z.Source, Line: r.Line, Msg: fmt.Sprintf("%s record in a zone Meridian signs: its keys, signatures and denial are made from its keys", dns.TypeToString[r.RR.Header().Rrtype])}
		}
	}
	ttl := soa.Hdr.Ttl
	apex.rrsets[dns.TypeDNSKEY] = z.Keys.DNSKEYs(ttl)
	cds, cdnskey := z.Keys.CDS(ttl)
	apex.rrsets[dns.TypeCDS], apex.rrsets[dns.TypeCDNSKEY] = cds, cdnskey
	return nil
}

// ensure returns the node for name, creating it and any empty
// non-terminals between it and the apex.
func (t *zoneTree) ensure(name string) (*node, error) {
	if !dns.IsSubDomain(t.origin, name) {
		return nil, fmt.Errorf("%s is outside zone %s", name, t.origin)
	}
	key, err := wireKey(name)
	if err != nil {
		return nil, err
	}
	n := t.nodes[key]
	if n == nil {
		n = &node{name: name, rrsets: map[uint16][]dns.RR{}}
		t.nodes[key] = n
		if name != t.origin {
			if _, err := t.ensure(parentName(name)); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

func (t *zoneTree) node(name string) *node {
	k, err := wireKey(name)
	if err != nil {
		return nil
	}
	return t.nodes[k]
}

func mustKey(name string) string {
	k, err := wireKey(name)
	if err != nil {
		panic(err) // names here were packed once already
	}
	return k
}

// parentName returns name without its first label, or "" for the root.
func parentName(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end {
		return ""
	}
	return name[off:]
}

func isWildcard(name string) bool { return len(name) >= 2 && name[0] == '*' && name[1] == '.' }

// negativeSOA returns the SOA as it appears in negative answers: its TTL
// is the lesser of the SOA's TTL and its MINIMUM field (RFC 2308 section 3).
func negativeSOA(soa *dns.SOA) *dns.SOA {
	c := dns.Copy(soa).(*dns.SOA)
	if c.Minttl < c.Hdr.Ttl {
		c.Hdr.Ttl = c.Minttl
	}
	return c
}

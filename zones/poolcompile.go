package zones

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CompiledPool is a pool as the query path uses it: datacenters by index,
// endpoints grouped per family and datacenter with eligibility decided,
// cumulative weights ready for sampling. It is immutable.
type CompiledPool struct {
	Name       string
	OwnerWire  []byte // lower-case wire name, for owners that cannot point to the question
	TTL        uint32
	MaxAnswers int
	Geo        GeoMode
	Sticky     bool
	Spill      int
	AllDown    AllDownMode
	Fallback   *CompiledPool
	// NoData is the zone's NODATA answer, used by the empty all-down mode.
	NoData *Answer

	DCs   []PoolDC
	Rules []CompiledRule
	// Family holds the IPv4 (index 0) and IPv6 (index 1) endpoints.
	Family [2]FamilySet
	// Geometry identifies everything a per-location datacenter ordering
	// depends on (coordinates, bias, country and continent rules), so
	// that orderings can be shared between pools and snapshots.
	Geometry string
	// HasCIDRRules tells whether any rule matches on client addresses.
	HasCIDRRules bool

	// Source is the pool as defined, for explanations.
	Source *Pool
	// RampUntil is when the last slow start of the pool's endpoints ends;
	// until then the pool must be compiled again now and then, as weights
	// grow with time. Zero when nothing ramps.
	RampUntil time.Time

	// Index numbers the pools of a snapshot from 0, so that the server can
	// keep per-pool data in slices.
	Index int
	// Zone is the zone that defines the pool.
	Zone *ZoneRef
}

// PoolDC is a datacenter of a pool.
type PoolDC struct {
	Name               string
	Lat, Lon           float64
	Bias               float64
	Country, Continent string
}

// CompiledRule is a topology rule with datacenter indices into DCs.
type CompiledRule struct {
	CIDRs       []netip.Prefix
	Countries   []string
	Continents  []string
	Datacenters []uint8
}

// FamilySet holds a pool's endpoints of one address family.
type FamilySet struct {
	// Eligible lists, per datacenter index, the endpoints that may be
	// answered: admin active and healthy (or unknown, if so configured).
	Eligible []DCEndpoints
	// Active lists, per datacenter, every admin-active endpoint: the
	// fail-open answer.
	Active []DCEndpoints
	// Configured tells whether the pool has any endpoint of this family;
	// a pool without one answers NODATA for it.
	Configured bool
	// Present tells, per datacenter, whether it has any endpoint of this
	// family, whatever its state: such a datacenter is a client's
	// "nearest" even when none of its endpoints is eligible.
	Present []bool
}

// DCEndpoints are the endpoints of one datacenter in one family, with
// cumulative weights for weighted sampling.
type DCEndpoints struct {
	Endpoints []PoolEndpoint
	Cum       []uint64 // Cum[i] = sum of weights of Endpoints[0..i]
	Total     uint64
}

// PoolEndpoint is an endpoint ready to be written into an answer.
type PoolEndpoint struct {
	Addr   netip.Addr
	Weight uint32
	// Key is a stable hash of the address, for rendezvous hashing.
	Key uint64
}

// MaxPoolDatacenters bounds the datacenters one pool may use, so that
// orderings fit in bytes.
const MaxPoolDatacenters = 255

// Eligible reports whether an endpoint is answered in normal operation.
func (p *Pool) Eligible(e *Endpoint) bool {
	if e.Admin != AdminActive {
		return false
	}
	return e.Health == HealthUp || (e.Health == HealthUnknown && p.UnknownIsUp)
}

// compilePools compiles the pools of a validated zone and attaches them
// to their nodes.
func (b *builder) compilePools(z *Zone) error {
	dcs := map[string]Datacenter{}
	for _, dc := range z.Datacenters {
		dcs[dc.Name] = dc
	}
	byName := map[string]*CompiledPool{}
	for i := range z.Pools {
		p := &z.Pools[i]
		cp, err := compilePool(p, dcs, b.now)
		if err != nil {
			return &Error{Source: z.Source, Line: p.Line, Msg: err.Error()}
		}
		cp.NoData = b.t.nodata
		byName[p.Name] = cp
		b.pools = append(b.pools, cp)
	}
	for _, cp := range byName {
		if cp.AllDown == Fallback {
			cp.Fallback = byName[cp.Source.FallbackTo]
		}
		n, err := b.t.ensure(cp.Name)
		if err != nil {
			return &Error{Source: z.Source, Line: cp.Source.Line, Msg: err.Error()}
		}
		n.pool = cp
	}
	return nil
}

// compilePool compiles p; now is the time slow starts are computed for.
func compilePool(p *Pool, dcs map[string]Datacenter, now time.Time) (*CompiledPool, error) {
	owner, err := wireKey(p.Name)
	if err != nil {
		return nil, err
	}
	cp := &CompiledPool{
		Name: p.Name, OwnerWire: []byte(owner), TTL: p.TTL, MaxAnswers: p.MaxAnswers,
		Geo: p.Geo, Sticky: p.Sticky, Spill: p.Spill, AllDown: p.WhenAllDown, Source: p,
	}
	// Datacenters in the order the pool first uses them.
	index := map[string]uint8{}
	use := func(name string) (uint8, error) {
		if i, ok := index[name]; ok {
			return i, nil
		}
		if len(cp.DCs) == MaxPoolDatacenters {
			return 0, fmt.Errorf("pool %s uses more than %d datacenters", p.Name, MaxPoolDatacenters)
		}
		dc := dcs[name]
		i := uint8(len(cp.DCs))
		index[name] = i
		cp.DCs = append(cp.DCs, PoolDC{Name: name, Lat: dc.Lat, Lon: dc.Lon, Bias: p.Bias[name], Country: dc.Country, Continent: dc.Continent})
		return i, nil
	}
	for _, e := range p.Endpoints {
		if _, err := use(e.Datacenter); err != nil {
			return nil, err
		}
	}
	for _, r := range p.Rules {
		cr := CompiledRule{CIDRs: r.CIDRs, Countries: r.Countries, Continents: r.Continents}
		for _, name := range r.Datacenters {
			i, err := use(name)
			if err != nil {
				return nil, err
			}
			cr.Datacenters = append(cr.Datacenters, i)
		}
		cp.HasCIDRRules = cp.HasCIDRRules || len(r.CIDRs) > 0
		cp.Rules = append(cp.Rules, cr)
	}
	for f := range cp.Family {
		cp.Family[f].Eligible = make([]DCEndpoints, len(cp.DCs))
		cp.Family[f].Active = make([]DCEndpoints, len(cp.DCs))
		cp.Family[f].Present = make([]bool, len(cp.DCs))
	}
	for i := range p.Endpoints {
		e := &p.Endpoints[i]
		f := 0
		if e.Addr.Is6() {
			f = 1
		}
		fs := &cp.Family[f]
		fs.Configured = true
		pe := PoolEndpoint{Addr: e.Addr, Weight: e.EffectiveWeight(p.ShedLoad), Key: addrKey(e.Addr)}
		if p.Check != nil && p.Check.SlowStart > 0 && e.Health == HealthUp && !e.UpSince.IsZero() {
			if end := e.UpSince.Add(p.Check.SlowStart); end.After(now) {
				// Slow start: a tenth of the weight at once, the rest in
				// proportion to the time since recovery.
				f := max(0.1, float64(now.Sub(e.UpSince))/float64(p.Check.SlowStart))
				pe.Weight = max(1, uint32(float64(pe.Weight)*min(f, 1)))
				if end.After(cp.RampUntil) {
					cp.RampUntil = end
				}
			}
		}
		dc := index[e.Datacenter]
		fs.Present[dc] = true
		if e.Admin == AdminActive {
			// Fail-open answers every active endpoint; a shed one keeps a
			// token weight so that weighted choices stay defined.
			ape := pe
			if shed := e.Weight > 0 && pe.Weight == 0; shed {
				ape.Weight = 1
			}
			fs.Active[dc].add(ape)
		}
		// A shed endpoint (its agent's load took its weight to 0) takes no
		// new clients, but counts for fail-open. A configured weight of 0
		// is a backup, answered after the others.
		if p.Eligible(e) && (pe.Weight > 0 || e.Weight == 0) {
			fs.Eligible[dc].add(pe)
		}
	}
	cp.Geometry = geometry(cp)
	if p.Check != nil && (degraded(p) || !cp.RampUntil.IsZero()) {
		// Health-aware TTL: while checks find trouble, have not judged
		// yet, or an endpoint ramps up, resolvers should come back soon.
		cp.TTL = min(cp.TTL, cmp.Or(p.Check.DegradedTTL, DefaultDegradedTTL))
	}
	return cp, nil
}

// degraded reports whether an active endpoint of p is down or unjudged.
func degraded(p *Pool) bool {
	for _, e := range p.Endpoints {
		if e.Admin == AdminActive && e.Health != HealthUp {
			return true
		}
	}
	return false
}

func (d *DCEndpoints) add(e PoolEndpoint) {
	d.Endpoints = append(d.Endpoints, e)
	d.Total += uint64(e.Weight)
	d.Cum = append(d.Cum, d.Total)
}

// addrKey hashes an address with FNV-1a: stable across processes and
// versions, so every server of a fleet gives a sticky client the same
// order.
func addrKey(a netip.Addr) uint64 {
	b := a.As16()
	return fnv64(fnvOffset, b[:])
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv64 continues an FNV-1a hash over b. Written out rather than taken
// from hash/fnv so that the query path does not allocate a hasher.
func fnv64(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// geometry renders what a per-location ordering depends on.
func geometry(cp *CompiledPool) string {
	// strconv, not fmt: this runs for every pool of a first load.
	b := strconv.AppendInt(make([]byte, 0, 16+len(cp.DCs)*32), int64(cp.Geo), 10)
	b = append(b, '|')
	for _, dc := range cp.DCs {
		b = strconv.AppendFloat(b, dc.Lat, 'g', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, dc.Lon, 'g', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, dc.Bias, 'g', -1, 64)
		b = append(b, ';')
	}
	if len(cp.Rules) == 0 {
		return string(b)
	}
	for _, r := range cp.Rules {
		cs := append([]string(nil), r.Countries...)
		sort.Strings(cs)
		ks := append([]string(nil), r.Continents...)
		sort.Strings(ks)
		b = fmt.Appendf(b, "|%s/%s/%v", strings.Join(cs, ","), strings.Join(ks, ","), r.Datacenters)
	}
	return string(b)
}

// SubnetKey hashes the first bits of a client address for sticky
// answers.
func SubnetKey(a netip.Addr, bits int) uint64 {
	p, _ := a.Prefix(bits)
	b := p.Addr().As16()
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(bits))
	return fnv64(fnv64(fnvOffset, b[:]), l[:])
}

package dnsserver

import (
	"math"
	"math/bits"
	"net/netip"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/zones"
)

// maxPoolAnswers bounds max_answers so that a choice fits in a fixed
// array on the stack.
const maxPoolAnswers = 64

// Sticky answers hash the client's subnet at these lengths (the usual ECS
// source prefixes, RFC 7871 section 11.1).
const (
	stickyBits4 = 24
	stickyBits6 = 56
)

// client is who a pool answer is chosen for.
type client struct {
	// addr locates the client: the ECS address when the query carries
	// one, else the source address. Invalid when the resolver asked us not
	// to use any (ECS source prefix 0, RFC 7871 section 7.1.2).
	addr netip.Addr
	// bits is how much of addr is known: the ECS source prefix, or the
	// full address length.
	bits int
}

// choice is the outcome of selection: the endpoints to answer, in order,
// and the ECS scope the answer is valid for.
type choice struct {
	eps   [maxPoolAnswers]*zones.PoolEndpoint
	n     int
	scope int
	// pool is the pool that answered: the asked one or a fallback.
	pool *zones.CompiledPool
	// failOpen tells that nothing was eligible and active endpoints were
	// answered regardless of health.
	failOpen bool
	// first is the index in pool.DCs of the datacenter of eps[0]; -1 when
	// n is 0.
	first int
}

// orderBuf is scratch space for a datacenter order. It lives in the
// worker's query, not on the stack, because the tracer may see it.
type orderBuf [zones.MaxPoolDatacenters]uint8

// tracer receives the steps of a selection; explain uses it, the query
// path passes nil.
type tracer interface {
	located(idx int32, loc geo.Location, network netip.Prefix, haveDB bool)
	ordered(p *zones.CompiledPool, order []uint8, rule int)
	spilled(from, to string)
	allDown(p *zones.CompiledPool, mode zones.AllDownMode)
}

// choose selects the endpoints of family fam of pool p for client c.
// rng is the worker's random state. It allocates nothing.
func (st *state) choose(p *zones.CompiledPool, fam int, c client, rng *uint64, buf *orderBuf, gc *geoCache, tr tracer, ch *choice) {
	ch.n, ch.scope, ch.pool, ch.failOpen, ch.first = 0, 0, p, false, -1
	for hop := 0; ; hop++ {
		order := st.order(p, c, buf[:len(p.DCs)], gc, &ch.scope, tr)
		fs := &p.Family[fam]
		key := uint64(0)
		if p.Sticky && c.addr.IsValid() {
			bits := stickyBits4
			if c.addr.Is6() {
				bits = stickyBits6
			}
			bits = min(bits, c.bits)
			key = zones.SubnetKey(c.addr, bits)
			ch.scope = max(ch.scope, bits)
		}
		pickFrom(p, fs, fs.Eligible, order, key, rng, tr, ch)
		if ch.n > 0 {
			return
		}
		if tr != nil {
			tr.allDown(p, p.AllDown)
		}
		switch p.AllDown {
		case zones.FailOpen:
			ch.failOpen = true
			pickFrom(p, fs, fs.Active, order, key, rng, tr, ch)
			return
		case zones.Fallback:
			if p.Fallback == nil || hop > st.snap.PoolCount() {
				return // validation forbids loops; this guards the query path anyway
			}
			p = p.Fallback
			ch.pool = p
			continue
		default:
			return
		}
	}
}

// order returns p's datacenters for c, preferred first, and raises scope
// to the longest network the decision depended on.
func (st *state) order(p *zones.CompiledPool, c client, order []uint8, gc *geoCache, scope *int, tr tracer) []uint8 {
	for i := range order {
		order[i] = uint8(i)
	}
	if p.Geo == zones.GeoNone {
		if tr != nil {
			tr.ordered(p, order, -1)
		}
		return order
	}
	rule := -1
	var t *orderTable
	if st.db != nil {
		t = st.tables.at(p.Index)
	}
	if t != nil && c.addr.IsValid() {
		idx, network := gc.lookup(st, c.addr)
		*scope = max(*scope, network.Bits())
		if tr != nil {
			var loc geo.Location
			if idx != geo.NoLocation {
				loc = st.db.Location(idx)
			}
			tr.located(idx, loc, network, true)
		}
		if idx != geo.NoLocation {
			copy(order, t.order[int(idx)*t.nDC:])
			rule = int(t.rule[idx])
		}
	} else if tr != nil {
		tr.located(geo.NoLocation, geo.Location{}, netip.Prefix{}, st.db != nil)
	}
	if p.HasCIDRRules && c.addr.IsValid() {
		for i, r := range p.Rules {
			for _, cidr := range r.CIDRs {
				if cidr.Addr().Is4() != c.addr.Is4() {
					continue
				}
				if cidr.Contains(c.addr) {
					// The answer holds across the rule's network.
					*scope = max(*scope, cidr.Bits())
					if rule < 0 || i < rule {
						rule = i
					}
					continue
				}
				// The answer holds for the client's network up to the
				// first bit where it leaves the rule's network.
				*scope = max(*scope, commonBits(c.addr, cidr.Addr())+1)
			}
		}
	}
	if rule >= 0 {
		order = applyRule(order, p.Rules[rule].Datacenters)
	}
	if tr != nil {
		tr.ordered(p, order, rule)
	}
	return order
}

// commonBits returns the length of the prefix a and b share.
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	if a.Is4() {
		n = -96 // count only the IPv4 bits
	}
	for i := range x {
		if d := x[i] ^ y[i]; d != 0 {
			return n + bits.LeadingZeros8(d)
		}
		n += 8
	}
	return n
}

// applyRule puts the rule's datacenters first, in its order, followed by
// the others in their current (nearest-first) order.
func applyRule(order []uint8, first []uint8) []uint8 {
	var rest [zones.MaxPoolDatacenters]uint8
	n := 0
	for _, dc := range order {
		if !containsDC(first, dc) {
			rest[n] = dc
			n++
		}
	}
	k := copy(order, first)
	copy(order[k:], rest[:n])
	return order
}

func containsDC(list []uint8, dc uint8) bool {
	for _, x := range list {
		if x == dc {
			return true
		}
	}
	return false
}

// pickFrom fills ch from sets, walking datacenters in order. When the
// nearest datacenter of the family has nothing to give, its clients are
// spread over the next Spill datacenters in proportion to their weight, so
// that one site's failure does not land on a single neighbour.
func pickFrom(p *zones.CompiledPool, fs *zones.FamilySet, sets []zones.DCEndpoints, order []uint8, key uint64, rng *uint64, tr tracer, ch *choice) {
	limit := min(p.MaxAnswers, maxPoolAnswers)
	first := -1
	for i, dc := range order {
		if fs.Present[dc] {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	spill := -1
	if len(sets[order[first]].Endpoints) == 0 {
		spill = chooseSpill(p, sets, order[first+1:], key, rng)
		if spill >= 0 {
			if tr != nil {
				tr.spilled(p.DCs[order[first]].Name, p.DCs[order[first+1+spill]].Name)
			}
			spill += first + 1
			takeFrom(&sets[order[spill]], limit, key, rng, ch)
			if ch.n > 0 {
				ch.first = int(order[spill])
			}
		}
	}
	for i := first; i < len(order) && ch.n < limit; i++ {
		if i != spill {
			takeFrom(&sets[order[i]], limit, key, rng, ch)
			if ch.first < 0 && ch.n > 0 {
				ch.first = int(order[i])
			}
		}
	}
}

// chooseSpill picks among the first Spill datacenters of order that have
// endpoints, with probability proportional to their total weight, and
// returns its position in order, or -1.
func chooseSpill(p *zones.CompiledPool, sets []zones.DCEndpoints, order []uint8, key uint64, rng *uint64) int {
	var total uint64
	var cand [zones.MaxPoolDatacenters]int
	n := 0
	for i, dc := range order {
		if n == p.Spill {
			break
		}
		if len(sets[dc].Endpoints) > 0 {
			cand[n] = i
			n++
			total += max(sets[dc].Total, 1)
		}
	}
	if n == 0 {
		return -1
	}
	r := draw(key, 0x5b1d, rng) % total
	for _, i := range cand[:n] {
		w := max(sets[order[i]].Total, 1)
		if r < w {
			return i
		}
		r -= w
	}
	return cand[n-1]
}

// takeFrom appends up to limit-ch.n endpoints of one datacenter in weighted
// random order (successive weighted sampling without replacement), or, for
// a sticky pool (key != 0), in weighted rendezvous-hash order, which moves
// few clients when endpoints come and go.
func takeFrom(d *zones.DCEndpoints, limit int, key uint64, rng *uint64, ch *choice) {
	want := min(limit-ch.n, len(d.Endpoints))
	if want <= 0 {
		return
	}
	start := ch.n
	if key != 0 {
		takeRendezvous(d, want, key, ch)
		return
	}
	for tries := 0; ch.n-start < want && d.Total > 0 && tries < 8*want; tries++ {
		r := xorshift(rng) % d.Total
		i := searchCum(d.Cum, r)
		if !taken(ch.eps[start:ch.n], &d.Endpoints[i]) {
			ch.eps[ch.n] = &d.Endpoints[i]
			ch.n++
		}
	}
	// Zero-weight endpoints (backups), or bad luck: the rest in order.
	for i := 0; i < len(d.Endpoints) && ch.n-start < want; i++ {
		if !taken(ch.eps[start:ch.n], &d.Endpoints[i]) {
			ch.eps[ch.n] = &d.Endpoints[i]
			ch.n++
		}
	}
}

// takeRendezvous appends the want endpoints with the highest weighted
// rendezvous score -w/ln(u), u a hash of (client subnet, endpoint) in (0,1).
func takeRendezvous(d *zones.DCEndpoints, want int, key uint64, ch *choice) {
	var scores [maxPoolAnswers]float64
	start := ch.n
	for i := range d.Endpoints {
		e := &d.Endpoints[i]
		h := mix(key ^ e.Key)
		u := (float64(h>>11) + 0.5) / (1 << 53)
		s := -float64(max(e.Weight, 1)) / math.Log(u)
		if e.Weight == 0 {
			s /= 1e12 // backups sort after everything weighted
		}
		// Insertion into the top-want list.
		n := ch.n - start
		if n == want && s <= scores[n-1] {
			continue
		}
		j := min(n, want-1)
		for j > 0 && scores[j-1] < s {
			scores[j] = scores[j-1]
			ch.eps[start+j] = ch.eps[start+j-1]
			j--
		}
		scores[j] = s
		ch.eps[start+j] = e
		if n < want {
			ch.n++
		}
	}
}

func taken(list []*zones.PoolEndpoint, e *zones.PoolEndpoint) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

// searchCum returns the first index whose cumulative weight exceeds r.
func searchCum(cum []uint64, r uint64) int {
	lo, hi := 0, len(cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] <= r {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// draw returns a sticky hash when key is set, else a random number.
func draw(key, salt uint64, rng *uint64) uint64 {
	if key != 0 {
		return mix(key ^ salt)
	}
	return xorshift(rng)
}

// xorshift is xorshift64*: fast, statistically fine for spreading load,
// and its state lives in the worker, so there is no shared generator.
func xorshift(s *uint64) uint64 {
	x := *s
	if x == 0 {
		x = 0x9E3779B97F4A7C15
	}
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*s = x
	return x * 0x2545F4914F6CDD1D
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	x ^= x >> 31
	return x
}

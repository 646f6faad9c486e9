package zones

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// TestPatchMatchesRebuild drives two snapshots through the same random
// changes: one by Patch, given only what changed, the other by Rebuild,
// given every zone. Zones change, break (Invalid), are fixed, removed and
// added. After every step both serve the same zones, at the same
// generations, with the same invalid zones and last good versions, and
// pool indices are unique and below PoolSlots. 300 zones make the first
// build compile on several goroutines (run it with -race).
func TestPatchMatchesRebuild(t *testing.T) {
	const n = 300
	rng := rand.New(rand.NewPCG(1, 2))
	cur := map[string]*Zone{}
	gen := map[string]int{}
	origin := func(i int) string { return "z" + strconv.Itoa(i) + ".test." }
	make1 := func(o string, g int, broken bool) *Zone {
		z := zoneGen(t, o, g)
		p := NewPool("p." + o)
		p.MaxAnswers = g%4 + 1
		p.Endpoints = []Endpoint{{Addr: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", g%250, len(o))), Datacenter: "dc", Weight: 1}}
		z.Datacenters = []Datacenter{{Name: "dc"}}
		z.Pools = []Pool{p}
		if broken {
			z.Invalid = errors.New("broken at generation " + strconv.Itoa(g))
		}
		return z
	}
	for i := range n {
		cur[origin(i)] = make1(origin(i), 1, false)
		gen[origin(i)] = 1
	}
	all := func() []*Zone {
		var out []*Zone
		for _, z := range cur {
			out = append(out, z)
		}
		return out
	}
	sp, err := Build(all(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sr := sp
	next := n
	for step := 2; step < 60; step++ {
		var changed []*Zone
		var removed []string
		for range 1 + rng.IntN(8) {
			switch o := origin(rng.IntN(next)); rng.IntN(5) {
			case 0: // removed (or, when gone, added back)
				if cur[o] != nil {
					delete(cur, o)
					removed = append(removed, o)
					continue
				}
				fallthrough
			case 1, 2: // changed
				gen[o]++
				cur[o] = make1(o, gen[o], false)
				changed = append(changed, cur[o])
			case 3: // broken
				gen[o]++
				cur[o] = make1(o, gen[o], true)
				changed = append(changed, cur[o])
			case 4: // a new zone
				o = origin(next)
				next++
				gen[o] = 1
				cur[o] = make1(o, 1, rng.IntN(3) == 0)
				changed = append(changed, cur[o])
			}
		}
		// Only the last version of a zone changed twice in one step, and
		// none of one changed and then removed.
		changed = slices.DeleteFunc(changed, func(z *Zone) bool { return cur[z.Origin] != z })
		if sp, err = Patch(sp, changed, removed, uint64(step)); err != nil {
			t.Fatal(err)
		}
		if sr, err = Rebuild(sr, all(), uint64(step)); err != nil {
			t.Fatal(err)
		}
		if a, b := sp.Zones(), sr.Zones(); !slices.Equal(a, b) {
			t.Fatalf("step %d: zones differ:\npatch   %v\nrebuild %v", step, a, b)
		}
		for _, o := range sp.Zones() {
			if a, b := servedGen(t, sp, o), servedGen(t, sr, o); a != b {
				t.Fatalf("step %d: %s at generation %d by patch, %d by rebuild", step, o, a, b)
			}
			pa, pb := sp.Lookup(mustWire(t, "p."+o), dns.TypeA), sr.Lookup(mustWire(t, "p."+o), dns.TypeA)
			if pa.Pool.MaxAnswers != pb.Pool.MaxAnswers {
				t.Fatalf("step %d: pool of %s differs", step, o)
			}
		}
		ia, ib := sp.Invalid(), sr.Invalid()
		if len(ia) != len(ib) {
			t.Fatalf("step %d: invalid %v by patch, %v by rebuild", step, ia, ib)
		}
		for i := range ia {
			if ia[i].Origin != ib[i].Origin || ia[i].KeptVersion != ib[i].KeptVersion || ia[i].Err.Error() != ib[i].Err.Error() {
				t.Fatalf("step %d: invalid %+v by patch, %+v by rebuild", step, ia[i], ib[i])
			}
		}
		for _, s := range []*Snapshot{sp, sr} {
			seen := map[int]bool{}
			for _, p := range s.Pools() {
				if seen[p.Index] || p.Index >= s.PoolSlots() {
					t.Fatalf("step %d: pool %s index %d (of %d) not unique", step, p.Name, p.Index, s.PoolSlots())
				}
				seen[p.Index] = true
			}
			if len(s.Pools()) != s.PoolCount() || len(s.ZoneRefs()) != len(s.Zones()) {
				t.Fatalf("step %d: %d pools, PoolCount %d; %d refs, %d zones", step, len(s.Pools()), s.PoolCount(), len(s.ZoneRefs()), len(s.Zones()))
			}
		}
	}
}

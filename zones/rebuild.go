package zones

import (
	"cmp"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"
)

// Change is what a snapshot changed from the snapshot it was rebuilt
// from, for a server that keeps state per zone and per pool: it updates
// the slots of the zones removed (first: a zone compiled again keeps its
// slots) and then of those added, instead of going over every pool.
type Change struct {
	// From is the version of the snapshot it was rebuilt from; zero for
	// a snapshot built from nothing.
	From uint64
	// Removed are the zones gone or replaced, Added the zones new or
	// compiled again (a zone compiled again is in both).
	Removed, Added []*ZoneRef
}

// Change returns what s changed from the snapshot it was rebuilt from.
func (s *Snapshot) Change() Change { return s.change }

// tree returns the tree of the zone whose lower-case wire-format origin
// is key, or nil.
func (s *Snapshot) tree(key string) *zoneTree {
	if s.over != nil {
		if t, ok := s.over[key]; ok {
			return t
		}
	}
	return s.base[key]
}

// each calls fn for every zone served.
func (s *Snapshot) each(fn func(key string, t *zoneTree)) {
	for k, t := range s.base {
		if _, ok := s.over[k]; !ok {
			fn(k, t)
		}
	}
	for k, t := range s.over {
		if t != nil {
			fn(k, t)
		}
	}
}

// foldAt is how many changed zones over holds before Rebuild folds it into
// a new base: a fold copies the base map (about 40 µs per thousand zones),
// and a lookup reads over first while it is not empty.
func foldAt(base int) int { return max(16, base/64) }

// Rebuild compiles zs into a Snapshot with the given version, each zone
// on its own. A zone that is Invalid or fails validation or compiling
// does not stop the others: prev's compiled version of the same origin,
// its last good one, is served instead, or, when prev has none, the zone
// is left out; either way it is listed by Invalid. So one zone broken by a
// manual edit in the database does not hold back every other zone's
// changes. A zone that prev served signed and that comes without keys is
// refused the same way (ErrUnsigned): it never flips to unsigned while a
// server runs.
//
// Rebuild reuses the work of prev: a zone given as the very *Zone that
// prev was built from is taken over compiled, without being validated or
// compiled again, so that one change in a large data set costs the
// changed zones, not the whole set (and Patch, given only the changes,
// does not even look at the others); the same goes for a *Zone prev
// refused. Callers must not modify a Zone once it has been built (stores
// hand out new Zones for changed data).
//
// Rebuild fails only when it has no prev and not one of the zones given
// can be served: a server starting with nothing but broken zones should
// say so rather than answer REFUSED to everything.
func Rebuild(prev *Snapshot, zs []*Zone, version uint64) (*Snapshot, error) {
	s := rebuild(prev, zs, version, time.Now())
	if prev == nil && len(zs) > 0 && s.count == 0 {
		return nil, fmt.Errorf("zones: no zone can be served: %w", s.invalid[0].Err)
	}
	return s, nil
}

// Patch is Rebuild given only what changed since prev: the zones that are
// new or changed (new *Zones), and the origins of the zones removed. Every
// other zone of prev is taken over as it is, so that the cost is that of
// the changes, whatever the number of zones. An origin both removed and
// given anew is replaced.
func Patch(prev *Snapshot, changed []*Zone, removed []string, version uint64) (*Snapshot, error) {
	if prev == nil {
		return Rebuild(nil, changed, version)
	}
	now := time.Now()
	items, seen := itemsOf(changed)
	for _, o := range removed {
		key, err := wireKey(CanonicalName(o))
		if err != nil {
			continue // never served
		}
		if _, ok := seen[key]; ok {
			continue // removed and given anew: replaced
		}
		seen[key] = len(items)
		items = append(items, item{key: key, origin: CanonicalName(o)})
	}
	return apply(prev, items, version, now), nil
}

// Check tells whether z can be served: it runs on z alone what Rebuild
// runs on a zone it has not seen (Zone.Invalid, validation, compiling)
// and returns why not, or nil. Tools use it to show a zone's state.
func Check(z *Zone) error {
	if s := rebuild(nil, []*Zone{z}, 0, time.Now()); len(s.invalid) > 0 {
		return s.invalid[0].Err
	}
	return nil
}

// item is one zone for apply to change: z compiled (or refused with err)
// for the origin of key, or, with z and err nil, the zone removed.
type item struct {
	key, origin string
	z           *Zone
	err         error
	// keep: compile the last good version again (its weights or
	// signatures are due), z staying refused.
	keep bool
	// Set by apply's compile step:
	t      *zoneTree
	cerr   error
	reused bool // t is prev's tree, taken over
}

// removal reports whether the item removes its zone (1) or not (0).
func (it *item) removal() int {
	if it.z == nil && it.err == nil && !it.keep {
		return 1
	}
	return 0
}

// newItem makes the item of z; ok is false when z's origin is no name,
// the item then holding why.
func newItem(z *Zone) (item, bool) {
	origin := CanonicalName(z.Origin)
	key, err := wireKey(origin)
	if err != nil {
		return item{origin: origin, z: z, err: &Error{Source: z.Source, Msg: fmt.Sprintf("zone %s: %v", z.Origin, err)}}, false
	}
	return item{key: key, origin: origin, z: z}, true
}

// itemsOf makes the items of zs, and says which item holds each origin
// (by wire key). An origin given twice is wrong as a whole: neither copy
// may be served.
func itemsOf(zs []*Zone) (items []item, byKey map[string]int) {
	byKey = make(map[string]int, len(zs))
	for _, z := range zs {
		it, ok := newItem(z)
		if !ok {
			items = append(items, it)
			continue
		}
		if i, dup := byKey[it.key]; dup {
			if items[i].err == nil {
				items[i].err = duplicate(items[i].z, z)
			}
			continue
		}
		byKey[it.key] = len(items)
		items = append(items, it)
	}
	return items, byKey
}

func duplicate(first, second *Zone) error {
	return &Error{Source: second.Source, Msg: fmt.Sprintf("zone %s is defined twice (also in %s)", CanonicalName(first.Origin), first.Source)}
}

// rebuild is Rebuild, failing no zone but the ones at fault: it finds
// which zones of zs differ from prev's, and which of prev's are gone, and
// hands those to apply.
func rebuild(prev *Snapshot, zs []*Zone, version uint64, now time.Time) *Snapshot {
	items, byKey := itemsOf(zs)
	if prev != nil {
		// Unchanged zones are left out: apply takes them over.
		kept := items[:0]
		for _, it := range items {
			if it.key != "" && it.err == nil {
				if r, bad := prev.rejected[it.key]; bad && r.z == it.z {
					continue // refused before, as it is: still refused
				}
				if t := prev.tree(it.key); t != nil && t.src == it.z {
					continue
				}
			}
			kept = append(kept, it)
		}
		items = kept
		prev.each(func(key string, t *zoneTree) {
			if _, ok := byKey[key]; !ok {
				items = append(items, item{key: key, origin: t.origin})
			}
		})
		for key, r := range prev.rejected {
			if _, ok := byKey[key]; !ok && prev.tree(key) == nil {
				items = append(items, item{key: key, origin: CanonicalName(r.z.Origin)})
			}
		}
	}
	return apply(prev, items, version, now)
}

// apply makes the snapshot that is prev with items changed: each zone
// compiled (several at once, when there are many), refused or removed,
// and the trees of prev whose weights ramp or whose signatures are due
// compiled again.
func apply(prev *Snapshot, items []item, version uint64, now time.Time) *Snapshot {
	s := &Snapshot{Version: version, rejected: map[string]rejection{}}
	if prev == nil {
		s.base, s.own = make(map[string]*zoneTree, len(items)), true
	} else {
		s.change.From = prev.Version
		s.base, s.count, s.names, s.npools = prev.base, prev.count, prev.names, prev.npools
		s.over = maps.Clone(prev.over)
		maps.Copy(s.rejected, prev.rejected)
		s.slots, s.zoneSlots = prev.slots, prev.zoneSlots
		s.free, s.zoneFree = slices.Clone(prev.free), slices.Clone(prev.zoneFree)
		items = append(items, prev.due(items, now)...)
	}
	// Removals first, so that their slots go to the zones added.
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(b.removal(), a.removal()) })
	compileAll(prev, items, version, now)

	touched := map[string]bool{}
	namesDirty := prev == nil
	var invalid []InvalidZone
	for i := range items {
		it := &items[i]
		touched[it.origin] = true
		var old *zoneTree
		if prev != nil && it.key != "" {
			old = prev.tree(it.key)
		}
		if it.removal() == 1 {
			delete(s.rejected, it.key)
			if old != nil {
				s.set(it.key, nil)
				s.release(old)
				namesDirty = true
			}
			continue
		}
		if it.cerr == nil && !it.keep {
			delete(s.rejected, it.key)
			s.put(it.key, it.t, old, it.reused)
			namesDirty = namesDirty || old == nil
			continue
		}
		// Refused: the last good version stays, compiled again if due.
		if !it.keep && it.key != "" {
			s.rejected[it.key] = rejection{it.z, it.cerr}
		}
		var kept *zoneTree
		if old != nil {
			kept = old
			if it.keep || !current(old, now) {
				kept = it.t // compiled again from old.src, or nil
			}
			if kept != old {
				s.set(it.key, kept)
				if kept == nil {
					s.release(old)
					namesDirty = true
				} else {
					s.replace(kept, old)
				}
			}
		}
		err := it.cerr
		if it.keep {
			err = prev.rejected[it.key].err
		}
		invalid = append(invalid, s.invalidated(prev, it.origin, err, kept, now))
	}
	if prev != nil {
		for _, iz := range prev.invalid {
			if !touched[iz.Origin] {
				invalid = append(invalid, iz)
			}
		}
	}
	sort.Slice(invalid, func(i, j int) bool { return invalid[i].Origin < invalid[j].Origin })
	s.invalid = invalid
	if s.over != nil && len(s.over) > foldAt(len(s.base)) {
		s.fold()
	}
	s.own = false
	if namesDirty {
		s.names = make([]string, 0, s.count)
		s.each(func(_ string, t *zoneTree) { s.names = append(s.names, t.origin) })
		sort.Strings(s.names)
	}
	s.times(prev, items)
	return s
}

// due returns the items of prev's trees whose weights ramp or whose
// signatures are due, and that items does not change: they are compiled
// again (RampUntil, ResignAt). A zone served at its last good version is
// compiled from it.
func (prev *Snapshot) due(items []item, now time.Time) []item {
	if prev.rampUntil.IsZero() && (prev.resignAt.IsZero() || now.Before(prev.resignAt)) {
		return nil
	}
	given := make(map[string]bool, len(items))
	for _, it := range items {
		given[it.key] = true
	}
	var out []item
	prev.each(func(key string, t *zoneTree) {
		if given[key] || current(t, now) {
			return
		}
		if r, bad := prev.rejected[key]; bad {
			out = append(out, item{key: key, origin: t.origin, z: r.z, keep: true})
			return
		}
		out = append(out, item{key: key, origin: t.origin, z: t.src})
	})
	return out
}

// compileAll compiles the items that need it, on every core when there
// are many (a first load): zones compile independently.
func compileAll(prev *Snapshot, items []item, version uint64, now time.Time) {
	work := func(it *item) {
		if it.z == nil && it.err == nil {
			return // removed
		}
		var old *zoneTree
		if prev != nil && it.key != "" {
			old = prev.tree(it.key)
		}
		if it.keep {
			if old != nil {
				it.t = recompile(old, now)
			}
			return
		}
		it.t, it.reused, it.cerr = compile(prev, it, old, version, now)
		if it.cerr != nil && old != nil && !current(old, now) {
			it.t = recompile(old, now)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(items)/64)
	if workers < 2 {
		for i := range items {
			work(&items[i])
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, len(items))
	for i := range items {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				work(&items[i])
			}
		})
	}
	wg.Wait()
}

// compile returns the item's zone compiled, or why it cannot be served;
// reused reports a tree of prev taken over. old is prev's tree of the
// zone's origin.
func compile(prev *Snapshot, it *item, old *zoneTree, version uint64, now time.Time) (t *zoneTree, reused bool, err error) {
	z := it.z
	if it.err != nil {
		return nil, false, it.err
	}
	if prev != nil {
		if r, bad := prev.rejected[it.key]; bad && r.z == z {
			return nil, false, r.err
		}
	}
	var was *zoneTree // prev's tree of this very *Zone
	if old != nil && old.src == z {
		was = old
	}
	if was != nil && current(was, now) {
		return was, true, nil
	}
	if z.Invalid != nil {
		return nil, false, z.Invalid
	}
	if err := Validate(z); err != nil {
		return nil, false, err
	}
	if old != nil && old.keys != nil && z.Keys == nil {
		return nil, false, fmt.Errorf("%s: zone %s %w", z.Source, CanonicalName(z.Origin), ErrUnsigned)
	}
	t, err = buildTree(z, now, old)
	if err != nil {
		return nil, false, err
	}
	t.src, t.version = z, version
	if was != nil {
		t.version = was.version // the same data, compiled again
	}
	return t, false, nil
}

// recompile compiles old's zone again, for its weights or signatures,
// keeping its version; nil when that fails (it should not: it compiled
// before).
func recompile(old *zoneTree, now time.Time) *zoneTree {
	t, err := buildTree(old.src, now, old)
	if err != nil {
		return nil
	}
	t.src, t.version = old.src, old.version
	return t
}

// current reports whether t can be taken over as it is: its weights do
// not ramp (they grew since) and its signatures are not due for renewal.
func current(t *zoneTree, now time.Time) bool {
	return t.rampUntil.IsZero() && (t.resignAt.IsZero() || now.Before(t.resignAt))
}

// set makes key's tree t (nil: none) in s: in its own base while it is
// built from nothing, else in over.
func (s *Snapshot) set(key string, t *zoneTree) {
	if s.own {
		if t == nil {
			delete(s.base, key)
		} else {
			s.base[key] = t
		}
		return
	}
	if s.over == nil {
		s.over = map[string]*zoneTree{}
	}
	s.over[key] = t
}

// put serves t for key in place of old (nil: a new zone); reused reports
// that t is old, taken over.
func (s *Snapshot) put(key string, t, old *zoneTree, reused bool) {
	if reused && t == old {
		return
	}
	if old == nil {
		s.number(t)
		s.set(key, t)
		s.count++
		s.npools += len(t.pools)
		s.change.Added = append(s.change.Added, t.ref)
		return
	}
	s.set(key, t)
	s.replace(t, old)
}

// replace gives t, which replaces old for the same origin, old's slots,
// and records the change.
func (s *Snapshot) replace(t, old *zoneTree) {
	t.ref.Slot = old.ref.Slot
	idx := make(map[string]int, len(old.pools))
	for _, p := range old.pools {
		idx[p.Name] = p.Index
	}
	for _, p := range t.pools {
		if i, ok := idx[p.Name]; ok {
			p.Index = i
			delete(idx, p.Name)
		} else {
			p.Index = s.alloc(&s.slots, &s.free)
		}
	}
	for _, i := range idx {
		s.free = append(s.free, i)
	}
	s.npools += len(t.pools) - len(old.pools)
	s.change.Removed = append(s.change.Removed, old.ref)
	s.change.Added = append(s.change.Added, t.ref)
}

// number gives a new zone's tree and pools their slots.
func (s *Snapshot) number(t *zoneTree) {
	for _, p := range t.pools {
		p.Index = s.alloc(&s.slots, &s.free)
	}
	t.ref.Slot = s.alloc(&s.zoneSlots, &s.zoneFree)
}

// alloc returns a free slot, or a new one.
func (s *Snapshot) alloc(slots *int, free *[]int) int {
	if n := len(*free); n > 0 {
		i := (*free)[n-1]
		*free = (*free)[:n-1]
		return i
	}
	*slots++
	return *slots - 1
}

// release frees the slots of old, a zone no longer served.
func (s *Snapshot) release(old *zoneTree) {
	for _, p := range old.pools {
		s.free = append(s.free, p.Index)
	}
	s.zoneFree = append(s.zoneFree, old.ref.Slot)
	s.count--
	s.npools -= len(old.pools)
	s.change.Removed = append(s.change.Removed, old.ref)
}

// fold makes base hold over's changes, in a new map.
func (s *Snapshot) fold() {
	base := make(map[string]*zoneTree, s.count)
	s.each(func(k string, t *zoneTree) { base[k] = t })
	s.base, s.over = base, nil
}

// times sets when s must be rebuilt for ramps and signatures: from every
// tree when prev's were set or there is no prev (a tree that ramps or is
// signed may have been replaced), else from the trees items added.
func (s *Snapshot) times(prev *Snapshot, items []item) {
	if prev == nil || !prev.rampUntil.IsZero() || !prev.resignAt.IsZero() {
		s.each(func(_ string, t *zoneTree) { s.addTimes(t) })
		return
	}
	for _, it := range items {
		if it.t != nil {
			s.addTimes(it.t)
		}
	}
}

func (s *Snapshot) addTimes(t *zoneTree) {
	if t.rampUntil.After(s.rampUntil) {
		s.rampUntil = t.rampUntil
	}
	if !t.resignAt.IsZero() && (s.resignAt.IsZero() || t.resignAt.Before(s.resignAt)) {
		s.resignAt = t.resignAt
	}
}

// invalidated returns the entry of origin, which could not be compiled,
// with kept the tree served instead (nil: none).
func (s *Snapshot) invalidated(prev *Snapshot, origin string, err error, kept *zoneTree, now time.Time) InvalidZone {
	iz := InvalidZone{Origin: origin, Err: err, Since: now}
	if kept != nil {
		iz.KeptVersion = kept.version
	}
	if prev != nil {
		if i, ok := slices.BinarySearchFunc(prev.invalid, origin, func(z InvalidZone, o string) int { return cmp.Compare(z.Origin, o) }); ok {
			iz.Since = prev.invalid[i].Since
		}
	}
	return iz
}

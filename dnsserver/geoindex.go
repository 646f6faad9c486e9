package dnsserver

import (
	"sort"
	"time"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/zones"
)

// state is what the query path reads: a snapshot and, when a GeoIP
// database is loaded, the datacenter orderings precomputed for it. It is
// immutable and replaced as a whole.
type state struct {
	snap   *zones.Snapshot
	db     *geo.DB
	geoID  uint64             // names db for the loops' GeoIP caches (geoCache); 0: none
	tables slots[*orderTable] // by pool Index; nil for pools that need none

	zoneStats slots[*zoneStats] // by ZoneRef.Slot
	poolStats slots[*poolView]  // by pool Index
	published time.Time         // when snap was published
}

// orderTable holds, for every location of a database, a pool geometry's
// datacenter order (nearest first, bias applied) and the first country or
// continent rule that matches there. Precomputing it at load is what keeps
// a geo answer as cheap as a static one (gdnsd does the same).
type orderTable struct {
	geometry string // of the pools it serves (zones.CompiledPool.Geometry)
	nDC      int
	order    []uint8 // location i: order[i*nDC : (i+1)*nDC]
	rule     []int16 // location i: index of the first matching rule, or -1
}

// buildState compiles the state for snap and db, reusing the tables of
// the previous state where the pool's geometry and the database are
// unchanged, so that a health change or a change in one zone of many does
// not recompute orderings. A snapshot rebuilt from the previous state's
// says which zones it removed and added (zones.Change): only their pools
// are looked at. Pools keep their Index while their zone is served.
func buildState(snap *zones.Snapshot, db *geo.DB, prev *state) *state {
	st := &state{snap: snap, db: db}
	if db != nil {
		if prev != nil && prev.db == db {
			st.geoID = prev.geoID
		} else {
			st.geoID = geoIDs.Add(1)
		}
	}
	if snap == nil || db == nil {
		return st
	}
	if prev == nil || prev.db != db {
		prev = nil
	}
	if ch := snap.Change(); prev != nil && prev.snap != nil && ch.From != 0 && ch.From == prev.snap.Version {
		e := prev.tables.edit(snap.PoolSlots())
		// A pool compiled again mostly has the geometry it had.
		cache := tableCache{}
		for _, r := range ch.Removed {
			for _, p := range r.Pools {
				if t := prev.tables.at(p.Index); t != nil {
					cache[t.geometry] = t
				}
				e.set(p.Index, nil)
			}
		}
		for _, r := range ch.Added {
			for _, p := range r.Pools {
				if p.Geo == zones.GeoNone {
					continue
				}
				e.set(p.Index, cache.get(p, db))
			}
		}
		st.tables = e.done()
		return st
	}
	var none slots[*orderTable]
	e := none.edit(snap.PoolSlots())
	var missing []*zones.CompiledPool
	for _, p := range snap.Pools() {
		if p.Geo == zones.GeoNone {
			continue
		}
		if prev != nil {
			if t := prev.tables.at(p.Index); t != nil && t.geometry == p.Geometry {
				e.set(p.Index, t)
				continue
			}
		}
		missing = append(missing, p)
	}
	if len(missing) > 0 {
		// Pools are new or moved: share tables by geometry, with those
		// of the previous state too.
		cache := tableCache{}
		if prev != nil {
			for i := range prev.tables.len() {
				if t := prev.tables.at(i); t != nil {
					cache[t.geometry] = t
				}
			}
		}
		for _, p := range missing {
			e.set(p.Index, cache.get(p, db))
		}
	}
	st.tables = e.done()
	return st
}

// tableCache shares the order tables of one state between the pools of
// one geometry.
type tableCache map[string]*orderTable

// get returns the table of p's geometry, made when the cache has none.
func (c tableCache) get(p *zones.CompiledPool, db *geo.DB) *orderTable {
	t := c[p.Geometry]
	if t == nil {
		t = newOrderTable(p, db)
		c[p.Geometry] = t
	}
	return t
}

func newOrderTable(p *zones.CompiledPool, db *geo.DB) *orderTable {
	n := len(p.DCs)
	t := &orderTable{geometry: p.Geometry, nDC: n, order: make([]uint8, db.Len()*n), rule: make([]int16, db.Len())}
	dist := make([]float64, n)
	for i := 0; i < db.Len(); i++ {
		loc := db.Location(int32(i))
		order := t.order[i*n : (i+1)*n]
		rankDatacenters(p, loc, order, dist)
		t.rule[i] = -1
		if p.Geo == zones.GeoRules {
			for ri, r := range p.Rules {
				if contains(r.Countries, loc.Country) || contains(r.Continents, loc.Continent) {
					t.rule[i] = int16(ri)
					break
				}
			}
		}
	}
	return t
}

// rankDatacenters writes the pool's datacenter indices into order, nearest
// to loc first. Without coordinates, datacenters in the client's country
// come first, then those on its continent, then the rest, each group in
// configuration order. dist is scratch space of len(order).
func rankDatacenters(p *zones.CompiledPool, loc geo.Location, order []uint8, dist []float64) {
	for i, dc := range p.DCs {
		order[i] = uint8(i)
		switch {
		case loc.HasCoords:
			dist[i] = geo.Distance(loc.Lat, loc.Lon, dc.Lat, dc.Lon) + dc.Bias
		case loc.Country != "" && dc.Country == loc.Country:
			dist[i] = 0
		case loc.Continent != "" && dc.Continent == loc.Continent:
			dist[i] = 1
		default:
			dist[i] = 2
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return dist[order[a]] < dist[order[b]] })
}

func contains(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package store

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/meridiandns/meridian/zones"
)

// Health holds endpoint health found by an in-process checker, for the
// embedded default: without a database, "meridian serve" probes the
// endpoints itself and keeps what it finds here, in memory. WithHealth
// lays it over a store's data.
type Health struct {
	mu      sync.Mutex
	states  map[healthKey]zones.HealthState // what the probes found
	agents  map[healthKey]agentReport       // what agents said, until it expires
	admin   map[healthKey]zones.AdminState  // what operators set
	version uint64
	notify  chan struct{}
	last    *Data // the last data WithHealth loaded, with health laid over
	onLoad  func(*Data)
}

// OnLoad has f called with the data of every load through WithHealth, so
// that an in-process checker follows the zones without reading them
// again. Set it before the first load; f must return quickly.
func (h *Health) OnLoad(f func(*Data)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onLoad = f
}

// agentReport is an agent's word on its endpoint, valid until expires.
type agentReport struct {
	up      bool
	expires time.Time
}

type healthKey struct {
	pool string
	addr netip.Addr
}

// NewHealth returns an empty Health: every endpoint as its zone says.
func NewHealth() *Health {
	return &Health{states: map[healthKey]zones.HealthState{}, agents: map[healthKey]agentReport{},
		admin: map[healthKey]zones.AdminState{}, notify: make(chan struct{}, 1)}
}

// changedLocked counts a change and wakes the watcher; h.mu is held.
func (h *Health) changedLocked() {
	h.version++
	select {
	case h.notify <- struct{}{}:
	default: // a change is pending already
	}
}

// SetAgent records an agent's report for ttl: while it holds, up or down
// decides the endpoint's health over what the probes found. When it
// expires the probes decide again (and the watcher hears of it).
func (h *Health) SetAgent(pool string, addr netip.Addr, up bool, ttl time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{zones.CanonicalName(pool), addr}
	expires := time.Now().Add(ttl)
	h.agents[k] = agentReport{up: up, expires: expires}
	h.changedLocked()
	time.AfterFunc(ttl, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if r, ok := h.agents[k]; ok && !r.expires.After(time.Now()) {
			delete(h.agents, k)
			h.changedLocked()
		}
	})
}

// SetAdmin records an operator's admin state for an endpoint, over what
// its zone file says, and returns the state it had.
func (h *Health) SetAdmin(pool string, addr netip.Addr, state zones.AdminState, fromZone zones.AdminState) zones.AdminState {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{zones.CanonicalName(pool), addr}
	old, ok := h.admin[k]
	if !ok {
		old = fromZone
	}
	h.admin[k] = state
	h.changedLocked()
	return old
}

// Last returns the data last loaded through WithHealth, health and admin
// states laid over; nil before the first load.
func (h *Health) Last() *Data {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Set records an endpoint's health and reports whether it changed.
func (h *Health) Set(pool string, addr netip.Addr, state zones.HealthState) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := healthKey{zones.CanonicalName(pool), addr}
	if old, ok := h.states[k]; ok && old == state {
		return false
	}
	h.states[k] = state
	h.changedLocked()
	return true
}

// WithHealth returns a Store whose data is inner's with the health in h
// laid over its endpoints, and which also reports changes of h.
func WithHealth(inner Store, h *Health) Store { return &healthStore{inner: inner, h: h} }

type healthStore struct {
	inner Store
	h     *Health
}

// Load implements Store. Zones whose endpoints h knows nothing of are
// passed on as they are (the same *Zone, so that a rebuild reuses them);
// the others are copied with the health set. The version is inner's
// scaled up with h's, so that both kinds of change move it forward.
func (s *healthStore) Load(ctx context.Context) (*Data, error) {
	d, err := s.inner.Load(ctx)
	if err != nil {
		return nil, err
	}
	s.h.mu.Lock()
	out := &Data{Version: d.Version + s.h.version, Zones: make([]*zones.Zone, 0, len(d.Zones))}
	for _, z := range d.Zones {
		out.Zones = append(out.Zones, s.overlay(z))
	}
	s.h.last = out
	onLoad := s.h.onLoad
	s.h.mu.Unlock()
	if onLoad != nil {
		onLoad(out)
	}
	return out, nil
}

// overlay returns z with h's health applied; h.mu is held.
func (s *healthStore) overlay(z *zones.Zone) *zones.Zone {
	var c *zones.Zone
	for pi := range z.Pools {
		p := &z.Pools[pi]
		for ei := range p.Endpoints {
			e := &p.Endpoints[ei]
			k := healthKey{p.Name, e.Addr}
			// An agent's fresh report wins over the probes.
			st, ok := s.h.states[k]
			if r, fresh := s.h.agents[k]; fresh && r.expires.After(time.Now()) {
				st, ok = zones.HealthDown, true
				if r.up {
					st = zones.HealthUp
				}
			}
			admin, adminSet := s.h.admin[k]
			if (!ok || st == e.Health) && (!adminSet || admin == e.Admin) {
				continue
			}
			if c == nil {
				cp := *z
				cp.Pools = append([]zones.Pool(nil), z.Pools...)
				c = &cp
			}
			if &c.Pools[pi].Endpoints[0] == &z.Pools[pi].Endpoints[0] {
				c.Pools[pi].Endpoints = append([]zones.Endpoint(nil), p.Endpoints...)
			}
			if ok {
				c.Pools[pi].Endpoints[ei].Health = st
			}
			if adminSet {
				c.Pools[pi].Endpoints[ei].Admin = admin
			}
		}
	}
	if c == nil {
		return z
	}
	return c
}

// Watch implements Store: it reports inner's changes and h's.
func (s *healthStore) Watch(ctx context.Context, changed func()) error {
	var mu sync.Mutex // changed is never called concurrently
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		changed()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.h.notify:
				report()
			}
		}
	}()
	err := s.inner.Watch(ctx, report)
	cancel()
	<-done
	return err
}

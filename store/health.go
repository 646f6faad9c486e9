package store

import (
	"context"
	"net/netip"
	"sync"

	"github.com/meridiandns/meridian/zones"
)

// Health holds endpoint health found by an in-process checker, for the
// embedded default: without a database, "meridian serve" probes the
// endpoints itself and keeps what it finds here, in memory. WithHealth
// lays it over a store's data.
type Health struct {
	mu      sync.Mutex
	states  map[healthKey]zones.HealthState
	version uint64
	notify  chan struct{}
}

type healthKey struct {
	pool string
	addr netip.Addr
}

// NewHealth returns an empty Health: every endpoint as its zone says.
func NewHealth() *Health {
	return &Health{states: map[healthKey]zones.HealthState{}, notify: make(chan struct{}, 1)}
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
	h.version++
	select {
	case h.notify <- struct{}{}:
	default: // a change is pending already
	}
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
	defer s.h.mu.Unlock()
	out := &Data{Version: d.Version + s.h.version, Zones: make([]*zones.Zone, 0, len(d.Zones))}
	for _, z := range d.Zones {
		out.Zones = append(out.Zones, s.overlay(z))
	}
	return out, nil
}

// overlay returns z with h's health applied; h.mu is held.
func (s *healthStore) overlay(z *zones.Zone) *zones.Zone {
	var c *zones.Zone
	for pi := range z.Pools {
		p := &z.Pools[pi]
		for ei := range p.Endpoints {
			st, ok := s.h.states[healthKey{p.Name, p.Endpoints[ei].Addr}]
			if !ok || st == p.Endpoints[ei].Health {
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
			c.Pools[pi].Endpoints[ei].Health = st
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

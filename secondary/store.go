package secondary

import (
	"context"
	"fmt"
	"sync"

	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// Store returns a store.Store that adds the copies of the secondary
// zones to every Load of inner, and whose Watch also reports each copy
// installed or dropped. A zone both in inner and secondary fails the
// Load. Only one Watch may run at a time.
func (m *Manager) Store(inner store.Store) store.Store {
	return &secStore{inner: inner, m: m}
}

type secStore struct {
	inner store.Store
	m     *Manager

	mu   sync.Mutex
	last uint64
}

// Load implements store.Store. The version is inner's, or one more than
// the last returned when that is greater, so that a new copy, which
// inner knows nothing of, still makes a later version.
func (s *secStore) Load(ctx context.Context) (*store.Data, error) {
	d, err := s.inner.Load(ctx)
	if err != nil {
		return nil, err
	}
	mine := s.m.Zones()
	out := &store.Data{Zones: make([]*zones.Zone, 0, len(d.Zones)+len(mine))}
	for _, z := range d.Zones {
		if _, ok := s.m.byName[zones.CanonicalName(z.Origin)]; ok {
			return nil, fmt.Errorf("store: zone %s is both a secondary zone and in %s", z.Origin, z.Source)
		}
		out.Zones = append(out.Zones, z)
	}
	out.Zones = append(out.Zones, mine...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = max(d.Version, s.last+1)
	out.Version = s.last
	return out, nil
}

// Watch implements store.Store: inner's changes and the copies'.
func (s *secStore) Watch(ctx context.Context, changed func()) error {
	var mu sync.Mutex // changed is never called concurrently
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		changed()
	}
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.inner.Watch(ictx, report) }()
	for {
		select {
		case <-ctx.Done():
			cancel()
			if errc != nil {
				<-errc
			}
			return nil
		case err := <-errc:
			if err != nil {
				return err
			}
			errc = nil // inner has nothing to watch; the copies still change
		case <-s.m.changed:
			report()
		}
	}
}

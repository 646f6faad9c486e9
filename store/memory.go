package store

import (
	"context"
	"slices"
	"sync"

	"github.com/meridiandns/meridian/zones"
)

// Memory is a Store holding zones in memory, for tests and for embedding
// Meridian in another program. Its versions count up from 1.
type Memory struct {
	mu       sync.Mutex
	zones    []*zones.Zone
	version  uint64
	watchers map[chan struct{}]struct{}
}

var _ Store = (*Memory)(nil)

// NewMemory returns a Memory holding zs at version 1.
func NewMemory(zs ...*zones.Zone) *Memory {
	return &Memory{zones: slices.Clone(zs), version: 1, watchers: map[chan struct{}]struct{}{}}
}

// Set replaces all zones with zs, bumps the version and notifies every
// watcher.
func (m *Memory) Set(zs ...*zones.Zone) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.zones = slices.Clone(zs)
	m.version++
	for w := range m.watchers {
		select {
		case w <- struct{}{}:
		default: // a notification is already pending; one is enough
		}
	}
}

// Load implements Store.
func (m *Memory) Load(ctx context.Context) (*Data, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return &Data{Zones: slices.Clone(m.zones), Version: m.version}, nil
}

// Watch implements Store. Several Sets in a row may be reported by one
// call of changed.
func (m *Memory) Watch(ctx context.Context, changed func()) error {
	w := make(chan struct{}, 1)
	m.mu.Lock()
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.watchers, w)
		m.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w:
			changed()
		}
	}
}

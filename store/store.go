// Package store provides the zone data the server answers from and tells
// when that data changed. Implementations hide where the data lives (zone
// files today, a database later); callers see only zones types.
package store

import (
	"context"
	"sync"
	"time"

	"github.com/meridiandns/meridian/zones"
)

// Store provides zone data and tells when it changed. Implementations are
// safe for concurrent use.
type Store interface {
	// Load returns a complete, consistent data set and its version. An
	// error in the data fails the whole Load, so that nothing half
	// loaded is ever served; or, where a store can tell which zone is at
	// fault, that zone alone comes back marked zones.Zone.Invalid, and
	// the reloader keeps serving its last good version (zones.Rebuild).
	Load(ctx context.Context) (*Data, error)
	// Watch blocks until ctx is done, calling changed (never concurrently)
	// whenever data may have changed. changed should return quickly; the
	// caller is expected to Load again. Watch returns nil once ctx is
	// done, or an error when it cannot watch any longer.
	Watch(ctx context.Context, changed func()) error
}

// Data is one complete data set. A Store never modifies a Data it
// returned, nor may the caller: stores share Zones between the data sets
// they return.
type Data struct {
	Zones []*zones.Zone
	// Version orders data sets: a later Load returns a greater version.
	Version uint64
	// Delta, when set, says how Zones differ from the data set of
	// version Delta.From, so that a caller holding what it made of that
	// one may apply only the difference (zones.Patch). A store that
	// cannot tell, and a wrapper that changes the zones, leave it nil.
	Delta *Delta
}

// Delta is the difference between two data sets of a store.
type Delta struct {
	// From is the version of the earlier data set.
	From uint64
	// Changed are the zones new or changed since (the *Zones of Zones),
	// Removed the origins of the zones gone.
	Changed []*zones.Zone
	Removed []string
}

// clock hands out versions that only move forward, also across restarts
// of the process: each version is at least the wall clock in nanoseconds
// and greater than the previous one.
type clock struct {
	mu   sync.Mutex
	last uint64
}

// next returns a version greater than every one returned before.
func (c *clock) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := uint64(time.Now().UnixNano())
	if v <= c.last {
		v = c.last + 1
	}
	c.last = v
	return v
}

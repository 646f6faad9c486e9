package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/meridiandns/meridian/zones"
)

func TestMemoryLoadSet(t *testing.T) {
	ctx := t.Context()
	a := &zones.Zone{Origin: "a.test."}
	b := &zones.Zone{Origin: "b.test."}
	m := NewMemory(a)

	d1, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d1.Zones) != 1 || d1.Zones[0] != a {
		t.Fatalf("Load zones = %v, want [a]", d1.Zones)
	}
	m.Set(a, b)
	d2, err := m.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d2.Zones) != 2 {
		t.Fatalf("Load after Set: %d zones, want 2", len(d2.Zones))
	}
	if d2.Version <= d1.Version {
		t.Errorf("version did not move forward: %d then %d", d1.Version, d2.Version)
	}
	if len(d1.Zones) != 1 {
		t.Errorf("Set changed an earlier Data: %d zones", len(d1.Zones))
	}
}

func TestMemoryWatch(t *testing.T) {
	m := NewMemory()
	ctx, cancel := context.WithCancel(t.Context())
	calls := make(chan struct{}, 10)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = m.Watch(ctx, func() { calls <- struct{}{} }) })

	// Watch registers asynchronously: Set until the first call arrives.
	deadline := time.After(5 * time.Second)
	for registered := false; !registered; {
		m.Set()
		select {
		case <-calls:
			registered = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("Watch never called changed")
		}
	}
	m.Set(&zones.Zone{Origin: "a.test."})
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("changed not called after Set")
	}
	cancel()
	wg.Wait()
	if werr != nil {
		t.Errorf("Watch = %v, want nil after cancel", werr)
	}
}

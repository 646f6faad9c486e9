package store

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridiandns/meridian/zones"
)

const healthZone = `origin: h.example.
soa: {ns: ns1, mbox: hm, serial: 1}
records: [{name: "@", type: NS, data: ns1}, {name: ns1, type: A, data: 192.0.2.53}]
datacenters: [{name: dc, lat: 1, lon: 1}]
pools:
  - name: www
    endpoints: [{address: 192.0.2.1, datacenter: dc}, {address: 192.0.2.2, datacenter: dc}]
`

func TestWithHealth(t *testing.T) {
	z, err := zones.Parse([]byte(healthZone), "h.yaml")
	if err != nil {
		t.Fatal(err)
	}
	other, err := zones.Parse([]byte(`origin: o.example.
soa: {ns: ns1, mbox: hm, serial: 1}
records: [{name: "@", type: NS, data: ns1}, {name: ns1, type: A, data: 192.0.2.53}]
`), "o.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mem := NewMemory(z, other)
	h := NewHealth()
	s := WithHealth(mem, h)
	ctx := context.Background()

	d1, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d1.Zones[0] != z || d1.Zones[1] != other {
		t.Error("zones without health changes were copied")
	}

	var reports atomic.Int64
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Watch(wctx, func() { reports.Add(1) }) }()
	defer func() { cancel(); <-done }()

	addr := netip.MustParseAddr("192.0.2.2")
	if !h.Set("www.h.example", addr, zones.HealthDown) {
		t.Error("first Set reported no change")
	}
	if h.Set("www.h.example.", addr, zones.HealthDown) {
		t.Error("same state reported as a change")
	}
	deadline := time.Now().Add(5 * time.Second)
	for reports.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a health change was not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d2, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Version <= d1.Version {
		t.Errorf("version %d after %d", d2.Version, d1.Version)
	}
	got := d2.Zones[0].Pools[0].Endpoints
	if got[1].Health != zones.HealthDown || got[0].Health != zones.HealthUnknown {
		t.Errorf("health not laid over: %+v", got)
	}
	if z.Pools[0].Endpoints[1].Health != zones.HealthUnknown {
		t.Error("the store's own zone was modified")
	}
	if d2.Zones[1] != other {
		t.Error("unaffected zone was copied")
	}
	// Changes of the inner store are reported too.
	before := reports.Load()
	mem.Set(z, other)
	for reports.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("an inner change was not reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealthAgentsAndAdmin checks the precedence of an agent's report over
// the probes, its expiry, and admin states set in memory.
func TestHealthAgentsAndAdmin(t *testing.T) {
	z, err := zones.Parse([]byte(healthZone), "h.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHealth()
	s := WithHealth(NewMemory(z), h)
	ctx := context.Background()
	addr := netip.MustParseAddr("192.0.2.1")
	ep := func() zones.Endpoint {
		d, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d.Zones[0].Pools[0].Endpoints[0]
	}
	h.Set("www.h.example.", addr, zones.HealthUp)
	h.SetAgent("www.h.example.", addr, false, 200*time.Millisecond)
	if e := ep(); e.Health != zones.HealthDown {
		t.Errorf("health %s with the agent saying down, want down", e.Health)
	}
	if h.Last() == nil || h.Last().Zones[0].Pools[0].Endpoints[0].Health != zones.HealthDown {
		t.Error("Last does not hold the data as served")
	}
	time.Sleep(300 * time.Millisecond)
	if e := ep(); e.Health != zones.HealthUp {
		t.Errorf("health %s after the report expired, want the probes' up", e.Health)
	}
	if old := h.SetAdmin("www.h.example.", addr, zones.AdminDrain, zones.AdminActive); old != zones.AdminActive {
		t.Errorf("old admin state %s", old)
	}
	if e := ep(); e.Admin != zones.AdminDrain {
		t.Errorf("admin %s, want drain", e.Admin)
	}
	if old := h.SetAdmin("www.h.example.", addr, zones.AdminActive, zones.AdminActive); old != zones.AdminDrain {
		t.Errorf("old admin state %s, want drain", old)
	}
}

package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// TestReadOverview reads back, in one snapshot, what checkers, an agent
// and an operator did, and agrees with EndpointHealth on the verdicts.
func TestReadOverview(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()

	mustRegister(t, conn, "c1", time.Minute)
	mustRegister(t, conn, "c2", time.Minute)
	mustRegister(t, conn, "gone", time.Minute)
	mustVerdict(t, conn, "c1", ep1, true, "")
	mustVerdict(t, conn, "c2", ep1, true, "")
	mustVerdict(t, conn, "gone", ep1, true, "")
	mustVerdict(t, conn, "c1", ep2, false, "connect: connection refused")
	mustVerdict(t, conn, "c2", ep2, false, "connect: connection refused")
	// "gone" stops heartbeating: it is listed as expired, its verdict is
	// not shown.
	healthExec(t, conn, "UPDATE checkers SET last_seen = now() - interval '1 hour' WHERE id = 'gone'")
	load, capacity := 0.25, 40
	if _, _, err := postgres.ReportAgent(ctx, conn, healthPool, ep1, postgres.Report{Status: postgres.AgentUp, Load: &load,
		Capacity: &capacity, Message: "v2", TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.SetAdmin(ctx, conn, healthPool, ep2, zones.AdminDrain, "rack move", "token:alice"); err != nil {
		t.Fatal(err)
	}

	ov, err := postgres.ReadOverview(ctx, conn, 3)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(ov.At) > time.Minute || ov.At.After(time.Now().Add(time.Minute)) {
		t.Errorf("At %v", ov.At)
	}
	if want := []postgres.OverviewDatacenter{{Zone: "health.example.", Name: "dc1", Lat: 50, Lon: 8, Country: "DE", Continent: "EU"}}; !slices.Equal(ov.Datacenters, want) {
		t.Errorf("datacenters %+v", ov.Datacenters)
	}
	var live []string
	for _, c := range ov.Checkers {
		if c.Live {
			live = append(live, c.ID)
		}
		if c.Region != "region-"+c.ID || c.TTL != time.Minute {
			t.Errorf("checker %+v", c)
		}
	}
	if len(ov.Checkers) != 3 || !slices.Equal(live, []string{"c1", "c2"}) {
		t.Errorf("checkers %+v", ov.Checkers)
	}
	if len(ov.Pools) != 1 {
		t.Fatalf("pools %+v", ov.Pools)
	}
	p := ov.Pools[0]
	if p.Zone != "health.example." || p.Name != healthPool || p.Quorum != "majority" || !p.UnknownIsUp || len(p.Endpoints) != 2 {
		t.Fatalf("pool %+v", p)
	}
	e1, e2 := p.Endpoints[0], p.Endpoints[1]

	// ep1: up, by the agent's fresh report.
	if e1.Addr != ep1 || e1.Datacenter != "dc1" || e1.Weight != 100 || e1.Admin != zones.AdminActive ||
		e1.Health != zones.HealthUp || e1.HealthReason != "agent: up: v2" || e1.UpSince.IsZero() {
		t.Errorf("ep1 %+v", e1)
	}
	if a := e1.Agent; a == nil || !a.Fresh || a.Status != "up" || a.Load == nil || *a.Load != 0.25 || a.Capacity == nil || *a.Capacity != 40 ||
		a.Connections != nil || a.WeightPercent != nil || a.Message != "v2" || !a.Expires.After(a.Reported) {
		t.Errorf("ep1 agent %+v", e1.Agent)
	}
	// ep2: drained by an operator, down by the quorum (since c1's
	// verdict: the reason is written when the state changes).
	if e2.Addr != ep2 || e2.Admin != zones.AdminDrain || e2.AdminReason != "rack move" || e2.Health != zones.HealthDown ||
		e2.HealthReason != "majority: 1 of 1 checkers say down: connect: connection refused" || e2.Agent != nil || !e2.UpSince.IsZero() {
		t.Errorf("ep2 %+v", e2)
	}

	// The verdicts are EndpointHealth's.
	for _, e := range p.Endpoints {
		st := mustStatus(t, conn, e.Addr)
		if !slices.Equal(e.Verdicts, st.Verdicts) || len(e.Verdicts) != 2 {
			t.Errorf("%s: verdicts %+v, EndpointHealth says %+v", e.Addr, e.Verdicts, st.Verdicts)
		}
	}

	// Events: newest first, at most 3, every kind.
	kinds := func(es []postgres.HealthEvent) (out []string) {
		for i, e := range es {
			if i > 0 && e.At.After(es[i-1].At) {
				t.Errorf("events out of order: %+v", es)
			}
			out = append(out, e.Kind+" "+e.Old+"->"+e.New+" "+e.By)
		}
		return out
	}
	if got, want := kinds(e2.Events), []string{"admin active->drain token:alice", "verdict unknown->down c2", "health unknown->down "}; !slices.Equal(got, want) {
		t.Errorf("ep2 events %q, want %q", got, want)
	}
	if got := kinds(e1.Events); len(got) != 3 || got[0] != "health up->up " {
		// The agent's report changed the reason's kind, not the state:
		// that is a transition too.
		t.Errorf("ep1 events %q", got)
	}
	if e2.Events[0].Reason != "rack move" || e2.Events[2].Reason != e2.HealthReason {
		t.Errorf("ep2 event reasons %+v", e2.Events)
	}

	// No events asked: none read.
	ov, err = postgres.ReadOverview(ctx, conn, 0)
	if err != nil || len(ov.Pools[0].Endpoints[1].Events) != 0 {
		t.Errorf("events 0: %+v, %v", ov, err)
	}
}

func TestListCheckers(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	if cs, err := postgres.ListCheckers(ctx, conn); err != nil || len(cs) != 0 {
		t.Fatalf("no checkers: %+v, %v", cs, err)
	}
	mustRegister(t, conn, "b", 90*time.Second)
	mustRegister(t, conn, "a", time.Minute)
	healthExec(t, conn, "UPDATE checkers SET last_seen = now() - interval '2 minutes' WHERE id = 'b'")
	cs, err := postgres.ListCheckers(ctx, conn)
	if err != nil || len(cs) != 2 {
		t.Fatalf("%+v, %v", cs, err)
	}
	if a, b := cs[0], cs[1]; a.ID != "a" || !a.Live || a.TTL != time.Minute || b.ID != "b" || b.Live || b.TTL != 90*time.Second ||
		b.LastSeen.After(time.Now().Add(-time.Minute)) || a.Started.IsZero() {
		t.Errorf("checkers %+v", cs)
	}
}

package postgres_test

import (
	"context"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// TestApplyHealthChecks stores pools' health checks, an endpoint's
// override and the quorum, reads them back, and diffs a change.
func TestApplyHealthChecks(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	withCheck := strings.Replace(baseYAML, "    max_answers: 4\n",
		"    max_answers: 4\n    quorum: all\n    health_check: {type: http, port: 8080, path: /health, expect_body: UP, interval: 2s, timeout: 1s}\n", 1)
	withCheck = strings.Replace(withCheck, "{address: 192.0.2.14, datacenter: eu-west}",
		"{address: 192.0.2.14, datacenter: eu-west, health_check: {port: 9090}}", 1)
	z := yamlZone(t, withCheck)
	mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{})

	got, err := postgres.ReadZones(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var p *zones.Pool
	for _, gz := range got {
		p = &gz.Pools[0]
	}
	want := z.Pools[0]
	if p.Quorum != "all" || !reflect.DeepEqual(p.Check, want.Check) {
		t.Errorf("read back quorum %q check %+v, want all and %+v", p.Quorum, p.Check, want.Check)
	}
	for i, e := range p.Endpoints {
		if !reflect.DeepEqual(e.Check, want.Endpoints[i].Check) {
			t.Errorf("endpoint %s check %+v, want %+v", e.Addr, e.Check, want.Endpoints[i].Check)
		}
	}
	if d := mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{}); !d.Empty() {
		t.Errorf("re-apply is not empty:\n%s", d)
	}
	changed := yamlZone(t, strings.Replace(withCheck, "interval: 2s", "interval: 3s", 1))
	d := mustApply(t, conn, []*zones.Zone{changed}, postgres.ApplyOptions{})
	if !strings.Contains(d.String(), "health_check") || !strings.Contains(d.String(), `"interval":3000000000`) {
		t.Errorf("diff of a check change:\n%s", d)
	}
	// The database refuses a check of an unknown type written by hand.
	if _, err := conn.Exec(ctx, `UPDATE pools SET health_check = '{"type": "icmp"}'`); err == nil {
		t.Error("a check of type icmp was stored")
	}
}

// TestShedLoad stores a pool's shed_load, and checks that an agent's load
// reaches the data (and the version) in steps, and leaves with its report.
func TestShedLoad(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	z := yamlZone(t, strings.Replace(baseYAML, "    max_answers: 4\n", "    max_answers: 4\n    shed_load: 0.8\n", 1))
	mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{})
	if d := mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{}); !d.Empty() {
		t.Errorf("re-apply with shed_load is not empty:\n%s", d)
	}
	version := func() int64 {
		var v int64
		if err := conn.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	endpoint := func() zones.Endpoint {
		zs, err := postgres.ReadZones(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, gz := range zs {
			if p := gz.Pools[0]; p.ShedLoad < 0.79 || p.ShedLoad > 0.81 {
				t.Errorf("shed_load read back as %g", p.ShedLoad)
			}
			return gz.Pools[0].Endpoints[0]
		}
		return zones.Endpoint{}
	}
	addr := netip.MustParseAddr("192.0.2.11")
	report := func(load float64, ttl time.Duration) {
		t.Helper()
		if _, _, err := postgres.ReportAgent(ctx, conn, "www.example.org.", addr, postgres.Report{Status: "up", Load: &load, TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	v0 := version()
	report(0.95, time.Minute)
	v1 := version()
	if v1 == v0 {
		t.Error("a load above shed_load did not reach the DNS servers (version unchanged)")
	}
	e := endpoint()
	if e.Agent == nil || !e.Agent.HasLoad || e.EffectiveWeight(0.8) >= 100 {
		t.Errorf("endpoint after a load report: %+v (weight %d)", e.Agent, e.EffectiveWeight(0.8))
	}
	report(0.951, time.Minute) // same step: no reload
	if version() != v1 {
		t.Error("a load change within one step reloaded the servers")
	}
	report(0.5, 200*time.Millisecond) // below the threshold: weight back
	if version() == v1 {
		t.Error("a load back below shed_load did not reach the servers")
	}
	time.Sleep(300 * time.Millisecond)
	if e := endpoint(); e.Agent != nil {
		t.Errorf("expired report still shapes the endpoint: %+v", e.Agent)
	}
}

// TestUpSince checks that the database remembers when an endpoint's health
// turned up, for slow start, and forgets it when it goes down.
func TestUpSince(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{})
	upSince := func() time.Time {
		zs, err := postgres.ReadZones(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range zs {
			for _, e := range z.Pools[0].Endpoints {
				if e.Addr == netip.MustParseAddr("192.0.2.11") {
					return e.UpSince
				}
			}
		}
		t.Fatal("endpoint not found")
		return time.Time{}
	}
	set := func(state string) {
		t.Helper()
		if _, err := conn.Exec(ctx, `UPDATE endpoint_health SET state = $1 FROM endpoints e
			WHERE e.id = endpoint_health.endpoint_id AND e.address = '192.0.2.11'`, state); err != nil {
			t.Fatal(err)
		}
	}
	if !upSince().IsZero() {
		t.Error("an unknown endpoint has an up_since")
	}
	set("up")
	first := upSince()
	if first.IsZero() || time.Since(first) > time.Minute {
		t.Fatalf("up_since %v after turning up", first)
	}
	set("up") // staying up keeps the time
	if got := upSince(); !got.Equal(first) {
		t.Errorf("up_since moved from %v to %v while up", first, got)
	}
	set("down")
	if !upSince().IsZero() {
		t.Error("a down endpoint keeps its up_since")
	}
}

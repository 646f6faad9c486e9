package postgres_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

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

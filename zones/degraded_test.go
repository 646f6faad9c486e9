package zones

import (
	"strings"
	"testing"
)

// TestDegradedTTL checks the health-aware TTL: a pool with checks answers
// with a short TTL while any active endpoint is down or not yet judged.
func TestDegradedTTL(t *testing.T) {
	const head = poolHead + "datacenters: [{name: dc, lat: 1, lon: 2}]\npools:\n  - name: www\n    ttl: 60\n"
	tests := []struct {
		name, pool string
		ttl        uint32
	}{
		{"all up", "    health_check: {type: tcp, port: 80}\n    endpoints: [{address: 192.0.2.1, datacenter: dc, health: up}]\n", 60},
		{"one down", "    health_check: {type: tcp, port: 80}\n    endpoints: [{address: 192.0.2.1, datacenter: dc, health: up}, {address: 192.0.2.2, datacenter: dc, health: down}]\n", DefaultDegradedTTL},
		{"not judged yet", "    health_check: {type: tcp, port: 80}\n    endpoints: [{address: 192.0.2.1, datacenter: dc}]\n", DefaultDegradedTTL},
		{"configured", "    health_check: {type: tcp, port: 80, degraded_ttl: 5}\n    endpoints: [{address: 192.0.2.1, datacenter: dc, health: down}]\n", 5},
		{"a drained endpoint does not count", "    health_check: {type: tcp, port: 80}\n    endpoints: [{address: 192.0.2.1, datacenter: dc, health: up}, {address: 192.0.2.2, datacenter: dc, admin: drain}]\n", 60},
		{"no checks: TTL as configured", "    endpoints: [{address: 192.0.2.1, datacenter: dc, health: down}]\n", 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := Parse([]byte(head+tc.pool), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			snap, err := Build([]*Zone{z}, 1)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := WireName("www.example.com.")
			if got := snap.Lookup(w, 1).Pool.TTL; got != tc.ttl {
				t.Errorf("TTL %d, want %d", got, tc.ttl)
			}
			if out, err := FormatYAML(z); err != nil || (strings.Contains(tc.pool, "degraded_ttl") && !strings.Contains(string(out), "degraded_ttl: 5")) {
				t.Errorf("format: %v\n%s", err, out)
			}
		})
	}
}

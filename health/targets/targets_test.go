package targets

import (
	"log/slog"
	"testing"
	"time"

	"github.com/meridiandns/meridian/zones"
)

// TestTargets checks which endpoints are probed, with which check.
func TestTargets(t *testing.T) {
	z, err := zones.Parse([]byte(`origin: t.example.
soa: {ns: ns1, mbox: hm, serial: 1}
records: [{name: "@", type: NS, data: ns1}, {name: ns1, type: A, data: 192.0.2.53}]
datacenters: [{name: dc, lat: 1, lon: 1}]
pools:
  - name: checked
    health_check: {type: http, port: 80, interval: 2s, timeout: 1s, expect_body: UP}
    endpoints:
      - {address: 192.0.2.1, datacenter: dc}
      - {address: 192.0.2.2, datacenter: dc, admin: drain, health_check: {port: 8080, tls_insecure: true}}
  - name: unchecked
    endpoints: [{address: 192.0.2.3, datacenter: dc}]
  - name: dns
    health_check: {type: dns, dns_name: t.example., dns_type: soa, expect_rcode: noerror}
    endpoints: [{address: "2001:db8::1", datacenter: dc}]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ts := FromZones([]*zones.Zone{z}, slog.New(slog.DiscardHandler))
	if len(ts) != 3 {
		t.Fatalf("%d targets, want 3 (the unchecked pool is not probed): %+v", len(ts), ts)
	}
	tests := []struct {
		key  string
		port uint16
		typ  string
	}{
		{"checked.t.example./192.0.2.1", 80, "http"},
		{"checked.t.example./192.0.2.2", 8080, "http"}, // drained endpoints are probed too
		{"dns.t.example./2001:db8::1", 53, "dns"},
	}
	for i, tc := range tests {
		if ts[i].Key != tc.key || ts[i].Check.Port != tc.port || ts[i].Check.Type != tc.typ {
			t.Errorf("target %d = %s port %d %s, want %s port %d %s", i, ts[i].Key, ts[i].Check.Port, ts[i].Check.Type, tc.key, tc.port, tc.typ)
		}
		pool, addr, ok := SplitKey(ts[i].Key)
		if !ok || pool+"/"+addr.String() != tc.key {
			t.Errorf("splitKey(%q) = %s %s %v", ts[i].Key, pool, addr, ok)
		}
	}
	if c := ts[0].Check; c.Interval != 2*time.Second || c.ExpectBody != "UP" || !c.TLSVerify {
		t.Errorf("pool check not carried over: %+v", c)
	}
	if ts[1].Check.TLSVerify || ts[1].Check.ExpectBody != "UP" {
		t.Errorf("override not merged over the pool's check: %+v", ts[1].Check)
	}
	if ts[2].Check.DNSType != 6 || ts[2].Check.ExpectRcode != 0 {
		t.Errorf("dns check: %+v", ts[2].Check)
	}
}

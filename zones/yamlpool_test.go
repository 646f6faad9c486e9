package zones

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const poolHead = "origin: example.com.\nsoa: {ns: ns1, mbox: hostmaster, serial: 1}\n" +
	"records: [{name: '@', type: NS, data: ns1}, {name: ns1, type: A, data: 192.0.2.53}]\n"

// TestParseYAMLPools checks that every pool setting is read, with the
// defaults filled in and lines kept.
func TestParseYAMLPools(t *testing.T) {
	text := poolHead + `datacenters:
  - {name: eu-west, lat: 51.5074, lon: -0.1278, country: gb, continent: EU}
  - {name: us-east, lat: 39.0438, lon: -77.4874}
pools:
  - name: www
    ttl: 20
    max_answers: 2
    geo: rules
    sticky: true
    spill: 3
    unknown_is_up: false
    when_all_down: fallback:backup.example.com.
    bias: {eu-west: -250.5, us-east: 100}
    rules:
      - {cidr: [198.51.100.0/24, "2001:db8:1::/48"], datacenters: us-east}
      - {country: [de, FR], continent: eu, datacenters: [eu-west, us-east]}
    endpoints:
      - {address: 192.0.2.1, datacenter: eu-west}
      - {address: "2001:db8::1", datacenter: us-east, weight: 7, admin: drain, health: down, health_check: {port: 8443, host: v6.example}}
    quorum: all
    health_check: {type: https, port: 443, path: /health, expect_status: [200, 204], expect_body: UP, interval: 2s, timeout: 1s, rise: 3, fall: 4, ok: 2, ca_file: /etc/ca.pem}
  - name: backup
    endpoints: [{address: 192.0.2.9, datacenter: us-east, health: up}, {address: "2001:db8::9", datacenter: eu-west}]
`
	z, err := Parse([]byte(text), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantDCs := []Datacenter{
		{Name: "eu-west", Lat: 51.5074, Lon: -0.1278, Country: "GB", Continent: "EU", Line: 5},
		{Name: "us-east", Lat: 39.0438, Lon: -77.4874, Line: 6},
	}
	if !reflect.DeepEqual(z.Datacenters, wantDCs) {
		t.Errorf("datacenters\n got %+v\nwant %+v", z.Datacenters, wantDCs)
	}
	if len(z.Pools) != 2 {
		t.Fatalf("%d pools, want 2", len(z.Pools))
	}
	want := Pool{
		Name: "www.example.com.", TTL: 20, MaxAnswers: 2, Geo: GeoRules, Sticky: true, Spill: 3,
		UnknownIsUp: false, WhenAllDown: Fallback, FallbackTo: "backup.example.com.",
		Bias: map[string]float64{"eu-west": -250.5, "us-east": 100},
		Rules: []Rule{
			{CIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::/48")}, Datacenters: []string{"us-east"}, Line: 18},
			{Countries: []string{"DE", "FR"}, Continents: []string{"EU"}, Datacenters: []string{"eu-west", "us-east"}, Line: 19},
		},
		Endpoints: []Endpoint{
			{Addr: netip.MustParseAddr("192.0.2.1"), Datacenter: "eu-west", Weight: 100, Line: 21},
			{Addr: netip.MustParseAddr("2001:db8::1"), Datacenter: "us-east", Weight: 7, Admin: AdminDrain, Health: HealthDown, Line: 22,
				Check: &HealthCheck{Type: "https", Port: 8443, Host: "v6.example", Path: "/health", ExpectStatus: []int{200, 204}, ExpectBody: "UP",
					Interval: 2 * time.Second, Timeout: time.Second, Rise: 3, Fall: 4, OK: 2, CAFile: "/etc/ca.pem"}},
		},
		Quorum: "all",
		Check: &HealthCheck{Type: "https", Port: 443, Path: "/health", ExpectStatus: []int{200, 204}, ExpectBody: "UP",
			Interval: 2 * time.Second, Timeout: time.Second, Rise: 3, Fall: 4, OK: 2, CAFile: "/etc/ca.pem"},
		Line: 8,
	}
	if !reflect.DeepEqual(z.Pools[0], want) {
		t.Errorf("pool\n got %+v\nwant %+v", z.Pools[0], want)
	}
	def := z.Pools[1]
	if def.TTL != DefaultPoolTTL || def.MaxAnswers != DefaultMaxAnswers || def.Spill != DefaultSpill ||
		def.Geo != GeoNearest || !def.UnknownIsUp || def.WhenAllDown != FailOpen || def.Endpoints[0].Health != HealthUp {
		t.Errorf("defaults not applied: %+v", def)
	}
	if _, err := Build([]*Zone{z}, 1); err != nil {
		t.Errorf("build: %v", err)
	}
}

// TestParseYAMLPoolErrors checks that mistakes in pool definitions are
// reported with their line and nothing is loaded.
func TestParseYAMLPoolErrors(t *testing.T) {
	dcs := "datacenters: [{name: dc, lat: 1, lon: 2}]\n"
	pool := func(body string) string { return poolHead + dcs + "pools:\n  - name: www\n" + body }
	ep := "    endpoints: [{address: 192.0.2.1, datacenter: dc}]\n"
	tests := []struct {
		name, text, want string
	}{
		{"datacenters not a list", poolHead + "datacenters: {a: b}\n", `t.yaml:4: datacenters: want a list, got a mapping`},
		{"datacenter missing lat", poolHead + "datacenters: [{name: x, lon: 1}]\n", `t.yaml:4: datacenter: missing key lat`},
		{"latitude out of range", poolHead + "datacenters: [{name: x, lat: 91, lon: 1}]\n", `t.yaml:4: datacenter x lat: want a number from -90 to 90, got "91"`},
		{"longitude not a number", poolHead + "datacenters: [{name: x, lat: 1, lon: east}]\n", `t.yaml:4: datacenter x lon: want a number`},
		{"bad country", poolHead + "datacenters: [{name: x, lat: 1, lon: 1, country: GBR}]\n", `t.yaml:4: datacenter x country: want a two-letter code, got "GBR"`},
		{"unknown datacenter key", poolHead + "datacenters: [{name: x, lat: 1, lon: 1, city: London}]\n", `t.yaml:4: datacenter: unknown key city`},
		{"pool without endpoints", poolHead + dcs + "pools: [{name: www}]\n", `t.yaml:5: pool: missing key endpoints`},
		{"unknown pool key", pool("    weight: 3\n" + ep), `t.yaml:7: pool: unknown key weight`},
		{"bad geo", pool("    geo: closest\n" + ep), `t.yaml:7: pool www.example.com.: unknown geo mode "closest"`},
		{"bad when_all_down", pool("    when_all_down: panic\n" + ep), `t.yaml:7: pool www.example.com.: unknown when_all_down "panic"`},
		{"bad sticky", pool("    sticky: yes please\n" + ep), `t.yaml:7: pool www.example.com. sticky: want true or false`},
		{"bad ttl", pool("    ttl: -5\n" + ep), `t.yaml:7: pool www.example.com. ttl: want a number`},
		{"bias not a mapping", pool("    bias: [dc]\n" + ep), `t.yaml:7: pool www.example.com. bias: want a mapping`},
		{"bias too large", pool("    bias: {dc: 30000}\n" + ep), `t.yaml:7: pool www.example.com. bias dc: want a number from -20037 to 20037`},
		{"bad address", pool("    endpoints: [{address: 192.0.2.300, datacenter: dc}]\n"), `t.yaml:7: pool www.example.com. endpoint: bad address "192.0.2.300"`},
		{"hostname as address", pool("    endpoints: [{address: web1.example.com, datacenter: dc}]\n"), `t.yaml:7: pool www.example.com. endpoint: bad address "web1.example.com"`},
		{"zero weight", pool("    endpoints: [{address: 192.0.2.1, datacenter: dc, weight: 0}]\n"), `t.yaml:7: pool www.example.com. endpoint 192.0.2.1: weight must be at least 1`},
		{"bad admin", pool("    endpoints: [{address: 192.0.2.1, datacenter: dc, admin: off}]\n"), `t.yaml:7: pool www.example.com. endpoint 192.0.2.1: unknown admin state "off"`},
		{"bad health", pool("    endpoints: [{address: 192.0.2.1, datacenter: dc, health: sick}]\n"), `t.yaml:7: pool www.example.com. endpoint 192.0.2.1: unknown health state "sick"`},
		{"endpoint missing datacenter", pool("    endpoints: [{address: 192.0.2.1}]\n"), `t.yaml:7: pool www.example.com. endpoint: missing key datacenter`},
		{"bad rule CIDR", pool("    geo: rules\n    rules: [{cidr: 10.0.0.0/33, datacenters: dc}]\n" + ep), `t.yaml:8: pool www.example.com. rule: bad CIDR "10.0.0.0/33"`},
		{"check without type", pool("    health_check: {port: 80}\n" + ep), `t.yaml:7: pool www.example.com. health_check: missing key type`},
		{"check bad type", pool("    health_check: {type: icmp, port: 80}\n" + ep), `t.yaml:7: pool www.example.com. health_check: unknown check type "icmp"`},
		{"check without port", pool("    health_check: {type: http}\n" + ep), `t.yaml:7: pool www.example.com. health_check: a http check needs a port`},
		{"check timeout too long", pool("    health_check: {type: tcp, port: 22, interval: 1s, timeout: 2s}\n" + ep), `t.yaml:7: pool www.example.com. health_check: timeout 2s must be shorter than interval 1s`},
		{"check bad duration", pool("    health_check: {type: tcp, port: 22, interval: soon}\n" + ep), `t.yaml:7: pool www.example.com. health_check interval: want a positive duration`},
		{"check unknown key", pool("    health_check: {type: tcp, port: 22, url: x}\n" + ep), `t.yaml:7: pool www.example.com. health_check: unknown key url`},
		{"override without pool check", pool("    endpoints: [{address: 192.0.2.1, datacenter: dc, health_check: {port: 81}}]\n"), `t.yaml:7: pool www.example.com. endpoint 192.0.2.1: health_check overrides the pool's, which has none`},
		{"bad quorum", pool("    quorum: most\n" + ep), `t.yaml:7: pool www.example.com.: unknown quorum "most"`},
		{"rule without datacenters", pool("    geo: rules\n    rules: [{country: DE}]\n" + ep), `t.yaml:8: pool www.example.com. rule: missing key datacenters`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseYAML([]byte(tc.text), "t.yaml")
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors; zone %+v", err, err, z)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

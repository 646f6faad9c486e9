package mgmtapi

import (
	"cmp"
	"encoding/json"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// FuzzBodies feeds request bodies to what a write does with them: strict
// decoding, conversion into a zone, the zones package's validation and
// the representation and ETag of the result. Nothing may panic.
func FuzzBodies(f *testing.F) {
	for _, s := range []string{
		`{"ttl": 60, "records": ["192.0.2.1", "192.0.2.2"]}`,
		`{"name": "www", "ttl": 30, "max_answers": 2, "geo": "rules", "rules": [{"cidrs": ["10.0.0.0/8"], "countries": ["GB"], "datacenters": ["lon"]}], "bias": {"lon": -100}, "when_all_down": "fallback:other", "health_check": {"type": "http", "port": 80, "interval": "5s", "timeout": "1s", "expect_body": "UP"}, "endpoints": [{"address": "192.0.2.1", "datacenter": "lon", "weight": 5, "admin": "drain"}]}`,
		`{"address": "2001:db8::1", "datacenter": "lon", "health_check": {"type": "tcp", "port": 443}}`,
		`{"name": "lon", "latitude": 51.5, "longitude": -0.12, "country": "GB", "continent": "EU"}`,
		`{"rrsets": [{"name": "@", "type": "SOA", "ttl": 60, "records": ["ns1 h 1 2 3 4 5"]}, {"name": "@", "type": "NS", "ttl": 60, "records": ["ns1"]}], "pools": [{"name": "p", "endpoints": []}]}`,
	} {
		f.Add(s)
	}
	base := func() *zones.Zone {
		z := &zones.Zone{Origin: "example.com.", Source: "fuzz"}
		for _, s := range []string{"example.com. 60 IN SOA ns1.example.com. h.example.com. 1 2 3 4 5", "example.com. 60 IN NS ns1.example.com.", "ns1.example.com. 60 IN A 192.0.2.53"} {
			rr, _ := dns.NewRR(s)
			z.Records = append(z.Records, zones.Record{RR: rr})
		}
		z.Datacenters = []zones.Datacenter{{Name: "lon", Lat: 51.5, Lon: -0.12}}
		return z
	}
	decode := func(s string, v any) bool {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			jsonProblem(err) // names the field of any decoding error
			return false
		}
		return true
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := newLines()
		e := &errs{}
		var rs RRset
		if decode(s, &rs) {
			z := base()
			rs.Name, rs.Type = cmp.Or(rs.Name, "www"), cmp.Or(rs.Type, "TXT")
			z.Records = append(z.Records, l.records(e, "", z.Origin, rs)...)
			checkFuzzed(z, l)
		}
		var p Pool
		if decode(s, &p) {
			z := base()
			p.Name = cmp.Or(p.Name, "pool")
			z.Pools = append(z.Pools, l.pool(e, "", z.Origin, p))
			checkFuzzed(z, l)
		}
		var ep Endpoint
		if decode(s, &ep) {
			z := base()
			pool := zones.NewPool("pool.example.com.")
			pool.Endpoints = append(pool.Endpoints, l.endpoint(e, "", ep))
			z.Pools = append(z.Pools, pool)
			checkFuzzed(z, l)
		}
		var dc Datacenter
		if decode(s, &dc) {
			z := base()
			z.Datacenters = append(z.Datacenters, l.datacenter(e, "", dc))
			checkFuzzed(z, l)
		}
		var zn Zone
		if decode(s, &zn) {
			z := base()
			if zoneKind.put(z, nil, zn, l) == nil {
				checkFuzzed(z, l)
			}
		}
		_ = e.problem()
	})
}

// checkFuzzed validates z and, when it is valid, makes its representation and
// ETag, as a write answers.
func checkFuzzed(z *zones.Zone, l *lines) {
	if p := l.validate(z); p != nil {
		_ = p.Error()
		return
	}
	_ = etag(ZoneOf(z))
}

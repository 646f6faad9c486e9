package zones

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The datacenters and pools sections of the YAML zone format:
//
//	datacenters:
//	  - name: eu-west          # required, unique in the zone
//	    lat: 51.5074           # degrees, required
//	    lon: -0.1278
//	    country: GB            # optional ISO 3166-1 alpha-2, for rules
//	    continent: EU          # optional two-letter code, for rules
//	pools:
//	  - name: www              # relative to the origin, like record names
//	    ttl: 30                # default 30
//	    max_answers: 4         # default 4
//	    geo: nearest           # nearest (default), rules or none
//	    sticky: false          # same client subnet, same order
//	    spill: 2               # datacenters sharing a failed one's clients
//	    unknown_is_up: true    # endpoints no checker has judged count as up
//	    when_all_down: fail_open   # or empty, or fallback:<pool>
//	    quorum: majority       # how checkers' verdicts combine: any, majority, all
//	    shed_load: 0.8         # agent load above which weight falls toward 0 (0: off)
//	    health_check:          # how checkers probe the endpoints (none: not probed)
//	      type: http           # http, https, tcp or dns
//	      port: 8080           # the endpoint's address is always the target
//	      path: /health        # also host, method, expect_status (200),
//	      expect_body: UP      # tls_insecure, ca_file, dns_name, dns_type,
//	      interval: 5s         # expect_rcode, timeout, rise, fall, ok
//	      rise: 2
//	      fall: 3
//	    bias: {eu-west: -300}  # km added to a datacenter's distance
//	    rules:                 # with geo: rules; first match wins
//	      - cidr: [198.51.100.0/24]
//	        country: [DE, FR]
//	        continent: [EU]
//	        datacenters: [eu-central, eu-west]
//	    endpoints:
//	      - address: 192.0.2.31
//	        datacenter: eu-west
//	        weight: 100        # default 100
//	        admin: active      # active (default), drain or disabled
//	        health: unknown    # unknown (default), up or down
//	        health_check: {port: 8081}  # keys that differ from the pool's check
//
// cidr, country, continent and datacenters take one value or a list.

func (y *yamlZone) loadDatacenters(n *yaml.Node) {
	for _, item := range y.list(n, "datacenters") {
		f := y.mapping(item, "datacenter", []string{"name", "lat", "lon", "country", "continent"})
		if f == nil || !y.require(item, "datacenter", f, "name", "lat", "lon") {
			continue
		}
		dc := Datacenter{Line: item.Line}
		var ok bool
		if dc.Name, ok = y.str(f["name"], "datacenter name"); !ok {
			continue
		}
		if dc.Lat, ok = y.float(f["lat"], "datacenter "+dc.Name+" lat", 90); !ok {
			continue
		}
		if dc.Lon, ok = y.float(f["lon"], "datacenter "+dc.Name+" lon", 180); !ok {
			continue
		}
		if f["country"] != nil {
			if dc.Country, ok = y.code(f["country"], "datacenter "+dc.Name+" country"); !ok {
				continue
			}
		}
		if f["continent"] != nil {
			if dc.Continent, ok = y.code(f["continent"], "datacenter "+dc.Name+" continent"); !ok {
				continue
			}
		}
		y.z.Datacenters = append(y.z.Datacenters, dc)
	}
}

// poolKeys are the keys of a pool, in the order they are read.
var poolKeys = []string{"name", "ttl", "max_answers", "geo", "sticky", "spill", "unknown_is_up", "when_all_down", "bias", "rules", "health_check", "quorum", "shed_load", "endpoints"}

func (y *yamlZone) loadPools(n *yaml.Node) {
	for _, item := range y.list(n, "pools") {
		f := y.mapping(item, "pool", poolKeys)
		if f == nil || !y.require(item, "pool", f, "name", "endpoints") {
			continue
		}
		name, ok := y.name(f["name"], "pool name")
		if !ok {
			continue
		}
		p := NewPool(absName(name, y.z.Origin))
		p.Line = item.Line
		if y.loadPool(&p, f) {
			y.z.Pools = append(y.z.Pools, p)
		}
	}
}

// loadPool reads the settings of a pool; it reports whether all were good.
func (y *yamlZone) loadPool(p *Pool, f map[string]*yaml.Node) bool {
	before := len(y.errs)
	what := "pool " + p.Name
	if n := f["ttl"]; n != nil {
		if v, ok := y.uint32(n, what+" ttl"); ok {
			p.TTL = v
		}
	}
	if n := f["max_answers"]; n != nil {
		if v, ok := y.uint32(n, what+" max_answers"); ok {
			p.MaxAnswers = int(min(v, math.MaxInt32))
		}
	}
	if n := f["spill"]; n != nil {
		if v, ok := y.uint32(n, what+" spill"); ok {
			p.Spill = int(min(v, math.MaxInt32))
		}
	}
	if n := f["geo"]; n != nil {
		if s, ok := y.str(n, what+" geo"); ok {
			g, err := ParseGeoMode(s)
			if err != nil {
				y.errorf(n, "%s: %v", what, err)
			}
			p.Geo = g
		}
	}
	if n := f["sticky"]; n != nil {
		p.Sticky, _ = y.bool(n, what+" sticky")
	}
	if n := f["unknown_is_up"]; n != nil {
		p.UnknownIsUp, _ = y.bool(n, what+" unknown_is_up")
	}
	if n := f["when_all_down"]; n != nil {
		if s, ok := y.str(n, what+" when_all_down"); ok {
			mode, to, err := ParseAllDown(s, y.z.Origin)
			if err != nil {
				y.errorf(n, "%s: %v", what, err)
			}
			p.WhenAllDown, p.FallbackTo = mode, to
		}
	}
	if n := f["bias"]; n != nil && y.plain(n) {
		if n.Kind != yaml.MappingNode {
			y.errorf(n, "%s bias: want a mapping of datacenter to km, got %s", what, describe(n))
		}
		p.Bias = map[string]float64{}
		for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			// At most half the Earth's circumference either way.
			if km, ok := y.float(v, what+" bias "+k.Value, 20037); ok {
				p.Bias[k.Value] = km
			}
		}
	}
	if n := f["shed_load"]; n != nil {
		if v, ok := y.float(n, what+" shed_load", 1); ok {
			if v < 0 || v >= 1 {
				y.errorf(n, "%s shed_load: want a load from 0 to below 1 (0 turns it off), got %g", what, v)
			}
			p.ShedLoad = v
		}
	}
	if n := f["quorum"]; n != nil {
		if q, ok := y.str(n, what+" quorum"); ok {
			if !slices.Contains(quorums, q) {
				y.errorf(n, "%s: unknown quorum %q (want any, majority or all)", what, q)
			}
			p.Quorum = q
		}
	}
	if n := f["health_check"]; n != nil {
		p.Check = y.loadHealthCheck(n, what+" health_check", nil)
	}
	if n := f["rules"]; n != nil {
		for _, item := range y.list(n, what+" rules") {
			y.loadRule(p, item)
		}
	}
	for _, item := range y.list(f["endpoints"], what+" endpoints") {
		y.loadEndpoint(p, item)
	}
	return len(y.errs) == before
}

func (y *yamlZone) loadRule(p *Pool, item *yaml.Node) {
	what := "pool " + p.Name + " rule"
	f := y.mapping(item, what, []string{"cidr", "country", "continent", "datacenters"})
	if f == nil || !y.require(item, what, f, "datacenters") {
		return
	}
	r := Rule{Line: item.Line}
	for _, s := range y.strs(f["cidr"], what+" cidr") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			y.errorf(f["cidr"], "%s: bad CIDR %q", what, s)
			continue
		}
		r.CIDRs = append(r.CIDRs, pfx)
	}
	for _, s := range y.strs(f["country"], what+" country") {
		r.Countries = append(r.Countries, strings.ToUpper(s))
	}
	for _, s := range y.strs(f["continent"], what+" continent") {
		r.Continents = append(r.Continents, strings.ToUpper(s))
	}
	r.Datacenters = y.strs(f["datacenters"], what+" datacenters")
	p.Rules = append(p.Rules, r)
}

func (y *yamlZone) loadEndpoint(p *Pool, item *yaml.Node) {
	what := "pool " + p.Name + " endpoint"
	f := y.mapping(item, what, []string{"address", "datacenter", "weight", "admin", "health", "health_check"})
	if f == nil || !y.require(item, what, f, "address", "datacenter") {
		return
	}
	e := Endpoint{Weight: DefaultWeight, Line: item.Line}
	s, ok := y.str(f["address"], what+" address")
	if !ok {
		return
	}
	if e.Addr, _ = netip.ParseAddr(s); !e.Addr.IsValid() {
		y.errorf(f["address"], "%s: bad address %q (want an IPv4 or IPv6 address)", what, s)
		return
	}
	if e.Datacenter, ok = y.str(f["datacenter"], what+" "+s+" datacenter"); !ok {
		return
	}
	if n := f["weight"]; n != nil {
		if e.Weight, ok = y.uint32(n, what+" "+s+" weight"); !ok {
			return
		}
		if e.Weight == 0 {
			y.errorf(n, "%s %s: weight must be at least 1 (drain or disable it instead)", what, s)
			return
		}
	}
	if n := f["admin"]; n != nil {
		if v, ok := y.str(n, what+" "+s+" admin"); ok {
			a, err := ParseAdminState(v)
			if err != nil {
				y.errorf(n, "%s %s: %v", what, s, err)
				return
			}
			e.Admin = a
		}
	}
	if n := f["health"]; n != nil {
		if v, ok := y.str(n, what+" "+s+" health"); ok {
			h, err := ParseHealthState(v)
			if err != nil {
				y.errorf(n, "%s %s: %v", what, s, err)
				return
			}
			e.Health = h
		}
	}
	if n := f["health_check"]; n != nil {
		if p.Check == nil {
			y.errorf(n, "%s %s: health_check overrides the pool's, which has none", what, s)
			return
		}
		if e.Check = y.loadHealthCheck(n, what+" "+s+" health_check", p.Check); e.Check == nil {
			return
		}
	}
	p.Endpoints = append(p.Endpoints, e)
}

// list returns the items of a list node; null is an empty list.
func (y *yamlZone) list(n *yaml.Node, what string) []*yaml.Node {
	if n == nil || !y.plain(n) || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		y.errorf(n, "%s: want a list, got %s", what, describe(n))
		return nil
	}
	return n.Content
}

// strs reads one value or a list of values.
func (y *yamlZone) strs(n *yaml.Node, what string) []string {
	if n == nil {
		return nil
	}
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []string
	for _, it := range items {
		if s, ok := y.str(it, what); ok {
			out = append(out, s)
		}
	}
	return out
}

// require reports missing required keys of a mapping.
func (y *yamlZone) require(n *yaml.Node, what string, f map[string]*yaml.Node, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if f[k] == nil {
			y.errorf(n, "%s: missing key %s", what, k)
			ok = false
		}
	}
	return ok
}

// float reads a number whose magnitude is at most max.
func (y *yamlZone) float(n *yaml.Node, what string, max float64) (float64, bool) {
	s, ok := y.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) > max {
		y.errorf(n, "%s: want a number from %g to %g, got %q", what, -max, max, s)
		return 0, false
	}
	return v, true
}

func (y *yamlZone) bool(n *yaml.Node, what string) (bool, bool) {
	s, ok := y.str(n, what)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	y.errorf(n, "%s: want true or false, got %q", what, s)
	return false, false
}

// code reads a two-letter country or continent code, upper-cased.
func (y *yamlZone) code(n *yaml.Node, what string) (string, bool) {
	s, ok := y.str(n, what)
	if !ok {
		return "", false
	}
	if len(s) != 2 {
		y.errorf(n, "%s: want a two-letter code, got %q", what, s)
		return "", false
	}
	return strings.ToUpper(s), true
}

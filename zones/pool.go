package zones

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Datacenter is a site that endpoints live in.
type Datacenter struct {
	Name      string
	Lat, Lon  float64
	Country   string // ISO 3166-1 alpha-2
	Continent string // two-letter continent code
	Line      int
}

// AdminState is what operators set on an endpoint.
type AdminState uint8

// Admin states. Drain and Disabled endpoints are never answered, except
// under the fail-open rule when nothing is eligible.
const (
	AdminActive AdminState = iota
	AdminDrain
	AdminDisabled
)

var adminNames = []string{"active", "drain", "disabled"}

func (a AdminState) String() string { return adminNames[a] }

// ParseAdminState reads an admin state name.
func ParseAdminState(s string) (AdminState, error) {
	for i, n := range adminNames {
		if s == n {
			return AdminState(i), nil
		}
	}
	return 0, fmt.Errorf("unknown admin state %q (want active, drain or disabled)", s)
}

// HealthState is what health checks and agents say of an endpoint.
type HealthState uint8

// Health states. Unknown means no checker has spoken yet.
const (
	HealthUnknown HealthState = iota
	HealthUp
	HealthDown
)

var healthNames = []string{"unknown", "up", "down"}

func (h HealthState) String() string { return healthNames[h] }

// ParseHealthState reads a health state name.
func ParseHealthState(s string) (HealthState, error) {
	for i, n := range healthNames {
		if s == n {
			return HealthState(i), nil
		}
	}
	return 0, fmt.Errorf("unknown health state %q (want up, down or unknown)", s)
}

// Endpoint is one address of a pool.
type Endpoint struct {
	Addr       netip.Addr
	Datacenter string
	Weight     uint32
	Admin      AdminState
	Health     HealthState
	// Check, when set, replaces the pool's health check for this endpoint
	// (a different port or Host, say).
	Check *HealthCheck
	// Agent is what the endpoint's agent last reported, while fresh; nil
	// otherwise. It comes from the store, never from zone files.
	Agent *AgentState
	// UpSince is when the endpoint's health last turned up, for slow
	// start; zero when unknown. It comes from the store.
	UpSince time.Time
	Line    int
}

// AgentState is the part of an agent's report that shapes answers.
type AgentState struct {
	Load          float64 // 0..1; meaningful when HasLoad
	HasLoad       bool
	WeightPercent int // of the configured weight; 0: not reported
}

// EffectiveWeight is the weight answers use: the configured one, scaled
// by the agent's weight percentage, and, when the pool sheds load and the
// agent's load is above shedLoad, reduced in proportion toward zero at
// load 1. Zero means the endpoint takes no new clients.
func (e *Endpoint) EffectiveWeight(shedLoad float64) uint32 {
	w := float64(e.Weight)
	if e.Agent == nil {
		return e.Weight
	}
	if e.Agent.WeightPercent > 0 {
		w = w * float64(e.Agent.WeightPercent) / 100
	}
	if shedLoad > 0 && e.Agent.HasLoad && e.Agent.Load > shedLoad {
		w *= max(0, 1-e.Agent.Load) / (1 - shedLoad)
	}
	return uint32(w)
}

// GeoMode says how a pool orders datacenters for a client.
type GeoMode uint8

// Geo modes.
const (
	GeoNearest GeoMode = iota // great-circle distance plus bias (the default)
	GeoRules                  // topology rules first, nearest as the fallback
	GeoNone                   // configuration order, the same for every client
)

var geoNames = []string{"nearest", "rules", "none"}

func (g GeoMode) String() string { return geoNames[g] }

// ParseGeoMode reads a geo mode name.
func ParseGeoMode(s string) (GeoMode, error) {
	for i, n := range geoNames {
		if s == n {
			return GeoMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown geo mode %q (want nearest, rules or none)", s)
}

// Rule maps clients to an ordered list of datacenters. A client matches
// when its address is in one of CIDRs, or its country or continent is
// listed. Rules are tried in order; the first match wins.
type Rule struct {
	CIDRs       []netip.Prefix
	Countries   []string
	Continents  []string
	Datacenters []string
	Line        int
}

// AllDownMode says what a pool answers when no endpoint is eligible.
type AllDownMode uint8

// All-down modes.
const (
	// FailOpen answers every active endpoint, geo-sorted, healthy or not:
	// an unhealthy list beats no answer.
	FailOpen AllDownMode = iota
	// Fallback answers from another pool.
	Fallback
	// Empty answers NODATA.
	Empty
)

// Pool is a name whose A and AAAA answers are chosen per client.
type Pool struct {
	Name        string // fully qualified owner name, lower case
	TTL         uint32
	MaxAnswers  int
	Endpoints   []Endpoint
	Geo         GeoMode
	Rules       []Rule
	Sticky      bool
	Bias        map[string]float64 // km added to a datacenter's distance (negative: preferred)
	Spill       int
	WhenAllDown AllDownMode
	FallbackTo  string // pool name, when WhenAllDown is Fallback
	// UnknownIsUp counts endpoints no checker has spoken for as up.
	UnknownIsUp bool
	// Check is how checkers probe the endpoints; nil: not probed.
	Check *HealthCheck
	// Quorum is how the verdicts of several checkers combine: any,
	// majority (the default) or all.
	Quorum string
	// ShedLoad, when above 0, is the agent-reported load from which an
	// endpoint's weight falls toward zero (reached at load 1).
	ShedLoad float64
	Line     int
}

// Quorum policies.
var quorums = []string{"any", "majority", "all"}

// DefaultQuorum is the quorum of pools that set none.
const DefaultQuorum = "majority"

// Pool defaults.
const (
	DefaultPoolTTL    = 30
	DefaultMaxAnswers = 4
	DefaultWeight     = 100
	DefaultSpill      = 2
)

// NewPool returns a pool with the defaults set.
func NewPool(name string) Pool {
	return Pool{
		Name: CanonicalName(name), TTL: DefaultPoolTTL, MaxAnswers: DefaultMaxAnswers,
		Spill: DefaultSpill, UnknownIsUp: true, Quorum: DefaultQuorum,
	}
}

// ParseAllDown reads a when_all_down setting: fail_open, empty or
// fallback:<pool name>.
func ParseAllDown(s, origin string) (AllDownMode, string, error) {
	switch {
	case s == "fail_open" || s == "":
		return FailOpen, "", nil
	case s == "empty":
		return Empty, "", nil
	case strings.HasPrefix(s, "fallback:"):
		target := strings.TrimSpace(strings.TrimPrefix(s, "fallback:"))
		if target == "" {
			return 0, "", fmt.Errorf("when_all_down %q names no pool", s)
		}
		return Fallback, absName(target, origin), nil
	}
	return 0, "", fmt.Errorf("unknown when_all_down %q (want fail_open, empty or fallback:<pool>)", s)
}

// absName makes a possibly relative name absolute against origin; in
// the root zone "www" is "www.", not "www..".
func absName(name, origin string) string {
	origin = CanonicalName(origin)
	switch {
	case name == "@":
		return origin
	case strings.HasSuffix(name, "."):
		return CanonicalName(name)
	case origin == ".":
		return CanonicalName(name + ".")
	}
	return CanonicalName(name + "." + origin)
}

// validatePools checks datacenters and pools of z, adding to errs.
func validatePools(z *Zone, errs Errors) Errors {
	add := func(line int, format string, args ...any) {
		errs = append(errs, &Error{Source: z.Source, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	dcs := map[string]bool{}
	for _, dc := range z.Datacenters {
		switch {
		case dc.Name == "":
			add(dc.Line, "datacenter without a name")
		case dcs[dc.Name]:
			add(dc.Line, "datacenter %s is defined twice", dc.Name)
		}
		dcs[dc.Name] = true
		if dc.Lat < -90 || dc.Lat > 90 || dc.Lon < -180 || dc.Lon > 180 {
			add(dc.Line, "datacenter %s: coordinates %g,%g out of range", dc.Name, dc.Lat, dc.Lon)
		}
	}
	pools := map[string]*Pool{}
	static := map[string]bool{}
	for _, r := range z.Records {
		switch r.RR.Header().Rrtype {
		case 1, 28, 5: // A, AAAA, CNAME
			static[CanonicalName(r.RR.Header().Name)] = true
		}
	}
	for i := range z.Pools {
		p := &z.Pools[i]
		if !isSubdomain(p.Name, z.Origin) {
			add(p.Line, "pool %s is outside zone %s", p.Name, z.Origin)
		}
		if pools[p.Name] != nil {
			add(p.Line, "pool %s is defined twice", p.Name)
		}
		pools[p.Name] = p
		if static[p.Name] {
			add(p.Line, "pool %s also has A, AAAA or CNAME records", p.Name)
		}
		if p.MaxAnswers < 1 {
			add(p.Line, "pool %s: max_answers must be at least 1", p.Name)
		}
		if p.Spill < 1 {
			add(p.Line, "pool %s: spill must be at least 1", p.Name)
		}
		if len(p.Endpoints) == 0 {
			add(p.Line, "pool %s has no endpoints", p.Name)
		}
		seen := map[netip.Addr]bool{}
		for _, e := range p.Endpoints {
			switch {
			case !e.Addr.IsValid():
				add(e.Line, "pool %s: endpoint without an address", p.Name)
			case e.Addr.Is4In6():
				add(e.Line, "pool %s: endpoint %s is an IPv4-mapped IPv6 address; write the IPv4 address", p.Name, e.Addr)
			case e.Addr.Zone() != "":
				add(e.Line, "pool %s: endpoint %s has an IPv6 zone", p.Name, e.Addr)
			case seen[e.Addr]:
				add(e.Line, "pool %s: endpoint %s is listed twice", p.Name, e.Addr)
			}
			seen[e.Addr] = true
			if !dcs[e.Datacenter] {
				add(e.Line, "pool %s: endpoint %s: unknown datacenter %q", p.Name, e.Addr, e.Datacenter)
			}
		}
		for dc := range p.Bias {
			if !dcs[dc] {
				add(p.Line, "pool %s: bias for unknown datacenter %q", p.Name, dc)
			}
		}
		if p.ShedLoad < 0 || p.ShedLoad >= 1 {
			add(p.Line, "pool %s: shed_load %g out of range (want 0 to below 1; 0 turns it off)", p.Name, p.ShedLoad)
		}
		if !slices.Contains(quorums, p.Quorum) {
			add(p.Line, "pool %s: unknown quorum %q (want any, majority or all)", p.Name, p.Quorum)
		}
		if p.Check != nil {
			for _, msg := range p.Check.Problems() {
				add(p.Line, "pool %s health_check: %s", p.Name, msg)
			}
		}
		for _, e := range p.Endpoints {
			if e.Check == nil {
				continue
			}
			for _, msg := range e.Check.Problems() {
				add(e.Line, "pool %s endpoint %s health_check: %s", p.Name, e.Addr, msg)
			}
		}
		if len(p.Rules) > 0 && p.Geo != GeoRules {
			add(p.Line, "pool %s has rules but geo is %s; set geo: rules", p.Name, p.Geo)
		}
		for _, r := range p.Rules {
			if len(r.CIDRs)+len(r.Countries)+len(r.Continents) == 0 {
				add(r.Line, "pool %s: rule matches no client (give cidr, country or continent)", p.Name)
			}
			if len(r.Datacenters) == 0 {
				add(r.Line, "pool %s: rule lists no datacenters", p.Name)
			}
			for _, c := range r.CIDRs {
				if !c.IsValid() || c.Addr().Is4In6() {
					add(r.Line, "pool %s: bad CIDR %s", p.Name, c)
				} else if c.Masked() != c {
					add(r.Line, "pool %s: CIDR %s has host bits set (did you mean %s?)", p.Name, c, c.Masked())
				}
			}
			for _, dc := range r.Datacenters {
				if !dcs[dc] {
					add(r.Line, "pool %s: rule names unknown datacenter %q", p.Name, dc)
				}
			}
		}
	}
	// Fallback chains must end in a pool that exists, without loops.
	for _, p := range z.Pools {
		// A fallback of the other family only is a mix-up: it could never
		// answer. (One lacking a family the pool also serves answers NODATA
		// for that family, which clients survive on the other.)
		if next := pools[p.FallbackTo]; p.WhenAllDown == Fallback && next != nil {
			have, fb := families(p.Endpoints), families(next.Endpoints)
			if !(have[0] && fb[0]) && !(have[1] && fb[1]) {
				add(p.Line, "pool %s: fallback %s has no endpoint of the pool's address family", p.Name, next.Name)
			}
		}
		seen := map[string]bool{p.Name: true}
		for q := &p; q.WhenAllDown == Fallback; {
			next := pools[q.FallbackTo]
			if next == nil {
				add(p.Line, "pool %s: fallback pool %s does not exist in zone %s", p.Name, q.FallbackTo, z.Origin)
				break
			}
			if seen[next.Name] {
				add(p.Line, "pool %s: fallback loop through %s", p.Name, next.Name)
				break
			}
			seen[next.Name] = true
			q = next
		}
	}
	return errs
}

// families reports which address families (IPv4, IPv6) endpoints hold.
func families(eps []Endpoint) (has [2]bool) {
	for _, e := range eps {
		if e.Addr.Is4() {
			has[0] = true
		} else if e.Addr.Is6() {
			has[1] = true
		}
	}
	return has
}

func isSubdomain(name, origin string) bool {
	name, origin = CanonicalName(name), CanonicalName(origin)
	return origin == "." || name == origin || strings.HasSuffix(name, "."+origin)
}

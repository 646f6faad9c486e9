package mgmtapi

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// The JSON forms of the API. They are the API's own, versioned with its
// path, and converted to and from the zones package's types, whose rules
// (zones.Validate, zones.Check) decide what is valid: one place for
// validation, shared with the zone files and meridianctl apply.

// Zone is a whole zone: its records, datacenters and pools.
type Zone struct {
	Name        string       `json:"name"`
	RRsets      []RRset      `json:"rrsets"`
	Datacenters []Datacenter `json:"datacenters"`
	Pools       []Pool       `json:"pools"`
}

// RRset is the records of one name and type (RFC 2181 section 5), in
// presentation format without owner, TTL, class and type.
type RRset struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	TTL     uint32   `json:"ttl"`
	Records []string `json:"records"`
}

// Datacenter is a place endpoints are in.
type Datacenter struct {
	Name      string  `json:"name"`
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Country   string  `json:"country,omitempty"`
	Continent string  `json:"continent,omitempty"`
}

// Pool is a name answered per client from its endpoints. Omitted
// settings take their defaults (docs/pools.md); answers give every one.
type Pool struct {
	Name        string             `json:"name"`
	TTL         *uint32            `json:"ttl,omitempty"`
	MaxAnswers  *int               `json:"max_answers,omitempty"`
	Geo         string             `json:"geo,omitempty"`
	Rules       []Rule             `json:"rules,omitempty"`
	Sticky      bool               `json:"sticky"`
	Bias        map[string]float64 `json:"bias,omitempty"`
	Spill       *int               `json:"spill,omitempty"`
	WhenAllDown string             `json:"when_all_down,omitempty"`
	UnknownIsUp *bool              `json:"unknown_is_up,omitempty"`
	HealthCheck *HealthCheck       `json:"health_check,omitempty"`
	Quorum      string             `json:"quorum,omitempty"`
	ShedLoad    float64            `json:"shed_load,omitempty"`
	Endpoints   []Endpoint         `json:"endpoints"`
}

// Rule sends clients that match it to datacenters, in order.
type Rule struct {
	CIDRs       []string `json:"cidrs,omitempty"`
	Countries   []string `json:"countries,omitempty"`
	Continents  []string `json:"continents,omitempty"`
	Datacenters []string `json:"datacenters"`
}

// Endpoint is one address of a pool. Its health is not part of it (the
// checkers own it): see the pool's status.
type Endpoint struct {
	Address     string       `json:"address"`
	Datacenter  string       `json:"datacenter"`
	Weight      *uint32      `json:"weight,omitempty"`
	Admin       string       `json:"admin,omitempty"`
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
}

// HealthCheck is how checkers probe an endpoint (docs/health.md).
type HealthCheck struct {
	Type         string `json:"type"`
	Port         uint16 `json:"port,omitempty"`
	Host         string `json:"host,omitempty"`
	Method       string `json:"method,omitempty"`
	Path         string `json:"path,omitempty"`
	ExpectStatus []int  `json:"expect_status,omitempty"`
	ExpectBody   string `json:"expect_body,omitempty"`
	TLSInsecure  bool   `json:"tls_insecure,omitempty"`
	CAFile       string `json:"ca_file,omitempty"`
	DNSName      string `json:"dns_name,omitempty"`
	DNSType      string `json:"dns_type,omitempty"`
	ExpectRcode  string `json:"expect_rcode,omitempty"`
	Interval     string `json:"interval,omitempty"` // a duration: "5s", "1m30s"
	Timeout      string `json:"timeout,omitempty"`
	Rise         int    `json:"rise,omitempty"`
	Fall         int    `json:"fall,omitempty"`
	OK           int    `json:"ok,omitempty"`
	DegradedTTL  uint32 `json:"degraded_ttl,omitempty"`
	SlowStart    string `json:"slow_start,omitempty"`
}

// PoolStatus is a pool's endpoints as the DNS servers see them.
type PoolStatus struct {
	Name      string           `json:"name"`
	Endpoints []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is one endpoint's state.
type EndpointStatus struct {
	Address    string `json:"address"`
	Datacenter string `json:"datacenter"`
	Admin      string `json:"admin"`
	Health     string `json:"health"`
	Eligible   bool   `json:"eligible"` // answered while its pool is not all down
}

// To the API's forms. Lists are sorted so that a representation, and so
// its ETag, depends only on the content: the store does not keep the
// order things were written in.

// ZoneOf is z in the API's form: what GET of the zone answers.
func ZoneOf(z *zones.Zone) Zone {
	out := Zone{Name: z.Origin, RRsets: rrsetsOf(z), Datacenters: []Datacenter{}, Pools: []Pool{}}
	for _, dc := range z.Datacenters {
		out.Datacenters = append(out.Datacenters, datacenterOf(dc))
	}
	slices.SortFunc(out.Datacenters, func(a, b Datacenter) int { return strings.Compare(a.Name, b.Name) })
	for i := range z.Pools {
		out.Pools = append(out.Pools, poolOf(&z.Pools[i]))
	}
	slices.SortFunc(out.Pools, func(a, b Pool) int { return compareNames(a.Name, b.Name) })
	return out
}

func rrsetsOf(z *zones.Zone) []RRset {
	type key struct {
		name string
		typ  uint16
	}
	sets := map[key]*RRset{}
	var keys []key
	for _, r := range z.Records {
		h := r.RR.Header()
		k := key{zones.CanonicalName(h.Name), h.Rrtype}
		s := sets[k]
		if s == nil {
			s = &RRset{Name: k.name, Type: dns.Type(k.typ).String(), TTL: h.Ttl, Records: []string{}}
			sets[k] = s
			keys = append(keys, k)
		}
		s.TTL = min(s.TTL, h.Ttl)
		s.Records = append(s.Records, rdata(r.RR))
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(compareNames(a.name, b.name), cmp.Compare(a.typ, b.typ))
	})
	out := make([]RRset, 0, len(keys))
	for _, k := range keys {
		s := sets[k]
		slices.Sort(s.Records)
		s.Records = slices.Compact(s.Records)
		out = append(out, *s)
	}
	return out
}

// rdata is rr's data in presentation format.
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// compareNames orders names from the root down, so that a zone's names
// come in tree order.
func compareNames(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(la), len(lb))
}

func datacenterOf(dc zones.Datacenter) Datacenter {
	return Datacenter{Name: dc.Name, Latitude: dc.Lat, Longitude: dc.Lon, Country: dc.Country, Continent: dc.Continent}
}

func poolOf(p *zones.Pool) Pool {
	ttl, maxAnswers, spill, up := p.TTL, p.MaxAnswers, p.Spill, p.UnknownIsUp
	out := Pool{Name: p.Name, TTL: &ttl, MaxAnswers: &maxAnswers, Geo: p.Geo.String(), Sticky: p.Sticky,
		Spill: &spill, UnknownIsUp: &up, HealthCheck: checkOf(p.Check), Quorum: cmp.Or(p.Quorum, zones.DefaultQuorum),
		ShedLoad: p.ShedLoad, Endpoints: []Endpoint{}}
	if len(p.Bias) > 0 {
		out.Bias = p.Bias
	}
	switch p.WhenAllDown {
	case zones.FailOpen:
		out.WhenAllDown = "fail_open"
	case zones.Empty:
		out.WhenAllDown = "empty"
	case zones.Fallback:
		out.WhenAllDown = "fallback:" + p.FallbackTo
	}
	for _, r := range p.Rules {
		rule := Rule{Countries: r.Countries, Continents: r.Continents, Datacenters: r.Datacenters}
		for _, c := range r.CIDRs {
			rule.CIDRs = append(rule.CIDRs, c.String())
		}
		out.Rules = append(out.Rules, rule)
	}
	for _, e := range p.Endpoints {
		out.Endpoints = append(out.Endpoints, endpointOf(e))
	}
	slices.SortFunc(out.Endpoints, func(a, b Endpoint) int {
		return netip.MustParseAddr(a.Address).Compare(netip.MustParseAddr(b.Address))
	})
	return out
}

func endpointOf(e zones.Endpoint) Endpoint {
	w := e.Weight
	return Endpoint{Address: e.Addr.String(), Datacenter: e.Datacenter, Weight: &w, Admin: e.Admin.String(), HealthCheck: checkOf(e.Check)}
}

// duration writes d as Go does ("1m30s"); zero is "".
func duration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func checkOf(c *zones.HealthCheck) *HealthCheck {
	if c == nil {
		return nil
	}
	return &HealthCheck{Type: c.Type, Port: c.Port, Host: c.Host, Method: c.Method, Path: c.Path,
		ExpectStatus: c.ExpectStatus, ExpectBody: c.ExpectBody, TLSInsecure: c.TLSInsecure, CAFile: c.CAFile,
		DNSName: c.DNSName, DNSType: c.DNSType, ExpectRcode: c.ExpectRcode, Interval: duration(c.Interval),
		Timeout: duration(c.Timeout), Rise: c.Rise, Fall: c.Fall, OK: c.OK, DegradedTTL: c.DegradedTTL,
		SlowStart: duration(c.SlowStart)}
}

// From the API's forms. A conversion checks what the zones types cannot
// hold (an address that does not parse) and leaves the rest to
// validation, whose errors name a line: each item converted gets a line
// of its own, which lines maps back to the item's field path.

type lines struct {
	field map[int]string
	next  int
}

func newLines() *lines { return &lines{field: map[int]string{}, next: 1} }

// at returns a new line for the item at path.
func (l *lines) at(path string) int {
	n := l.next
	l.next++
	l.field[n] = path
	return n
}

// errs collects field errors under a path prefix.
type errs struct {
	list []FieldError
}

func (e *errs) add(field, format string, args ...any) {
	e.list = append(e.list, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e *errs) problem() *Problem {
	if len(e.list) == 0 {
		return nil
	}
	return invalid(e.list...)
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// records converts an RRset of zone origin.
func (l *lines) records(e *errs, path, origin string, s RRset) []zones.Record {
	name, ok := ownerName(s.Name, origin)
	if !ok {
		e.add(join(path, "name"), "%q is not a name in zone %s", s.Name, origin)
		return nil
	}
	t, ok := dns.StringToType[strings.ToUpper(s.Type)]
	if !ok {
		e.add(join(path, "type"), "unknown type %q", s.Type)
		return nil
	}
	if s.TTL > math.MaxInt32 {
		e.add(join(path, "ttl"), "%d is above 2147483647 (RFC 2181 section 8)", s.TTL)
	}
	if len(s.Records) == 0 {
		e.add(join(path, "records"), "an RRset has at least one record")
	}
	var out []zones.Record
	for i, text := range s.Records {
		field := fmt.Sprintf("%s[%d]", join(path, "records"), i)
		if strings.ContainsAny(text, "\n\r") {
			e.add(field, "a record is one line")
			continue
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, s.TTL, dns.Type(t), text))
		switch {
		case err != nil:
			e.add(field, "%v", err)
			continue
		case rr == nil:
			e.add(field, "no record")
			continue
		case rr.Header().Rrtype != t:
			e.add(field, "not a %s record", dns.Type(t))
			continue
		}
		out = append(out, zones.Record{RR: rr, Line: l.at(field)})
	}
	return out
}

// ownerName returns name fully qualified and canonical, when it is in
// zone origin. "@" is the origin; a name with a final dot is absolute; a
// name without one is absolute when that is in the zone ("www.example.com"
// in example.com.), else relative to the origin ("www").
func ownerName(name, origin string) (string, bool) {
	if name == "@" {
		return origin, true
	}
	if name == "" || strings.ContainsAny(name, " \t\n\r/") {
		return "", false
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", false
	}
	n := zones.CanonicalName(name)
	if !strings.HasSuffix(name, ".") && !dns.IsSubDomain(origin, n) {
		n = zones.CanonicalName(name + "." + origin)
	}
	return n, dns.IsSubDomain(origin, n)
}

func (l *lines) datacenter(e *errs, path string, d Datacenter) zones.Datacenter {
	if d.Name == "" {
		e.add(join(path, "name"), "a datacenter needs a name")
	}
	return zones.Datacenter{Name: d.Name, Lat: d.Latitude, Lon: d.Longitude, Country: d.Country, Continent: d.Continent, Line: l.at(path)}
}

func (l *lines) pool(e *errs, path, origin string, p Pool) zones.Pool {
	name, ok := ownerName(p.Name, origin)
	if !ok {
		e.add(join(path, "name"), "%q is not a name in zone %s", p.Name, origin)
	}
	out := zones.NewPool(name)
	out.Line = l.at(path)
	if p.TTL != nil {
		out.TTL = *p.TTL
	}
	if p.MaxAnswers != nil {
		out.MaxAnswers = *p.MaxAnswers
	}
	if p.Spill != nil {
		out.Spill = *p.Spill
	}
	if p.UnknownIsUp != nil {
		out.UnknownIsUp = *p.UnknownIsUp
	}
	if p.Geo != "" {
		g, err := zones.ParseGeoMode(p.Geo)
		if err != nil {
			e.add(join(path, "geo"), "%v", err)
		}
		out.Geo = g
	}
	mode, to, err := zones.ParseAllDown(p.WhenAllDown, origin)
	if err != nil {
		e.add(join(path, "when_all_down"), "%v", err)
	}
	out.WhenAllDown, out.FallbackTo = mode, to
	out.Sticky, out.Bias, out.ShedLoad = p.Sticky, p.Bias, p.ShedLoad
	if p.ShedLoad < 0 || p.ShedLoad >= 1 {
		e.add(join(path, "shed_load"), "want a load from 0 to below 1 (0 turns it off), got %g", p.ShedLoad)
	}
	if p.Quorum != "" {
		out.Quorum = p.Quorum
	}
	out.Check = check(e, join(path, "health_check"), p.HealthCheck)
	for i, r := range p.Rules {
		rp := fmt.Sprintf("%s[%d]", join(path, "rules"), i)
		rule := zones.Rule{Countries: r.Countries, Continents: r.Continents, Datacenters: r.Datacenters, Line: l.at(rp)}
		for j, c := range r.CIDRs {
			pfx, err := netip.ParsePrefix(c)
			if err != nil {
				e.add(fmt.Sprintf("%s.cidrs[%d]", rp, j), "%v", err)
				continue
			}
			rule.CIDRs = append(rule.CIDRs, pfx)
		}
		out.Rules = append(out.Rules, rule)
	}
	for i, ep := range p.Endpoints {
		out.Endpoints = append(out.Endpoints, l.endpoint(e, fmt.Sprintf("%s[%d]", join(path, "endpoints"), i), ep))
	}
	return out
}

func (l *lines) endpoint(e *errs, path string, ep Endpoint) zones.Endpoint {
	out := zones.Endpoint{Datacenter: ep.Datacenter, Weight: zones.DefaultWeight, Line: l.at(path)}
	a, err := netip.ParseAddr(ep.Address)
	if err != nil || a.Zone() != "" {
		e.add(join(path, "address"), "%q is not an IP address", ep.Address)
	}
	out.Addr = a.Unmap()
	if ep.Weight != nil {
		if *ep.Weight == 0 {
			e.add(join(path, "weight"), "a weight is at least 1 (drain the endpoint instead)")
		}
		out.Weight = *ep.Weight
	}
	if ep.Admin != "" {
		s, err := zones.ParseAdminState(ep.Admin)
		if err != nil {
			e.add(join(path, "admin"), "%v", err)
		}
		out.Admin = s
	}
	out.Check = check(e, join(path, "health_check"), ep.HealthCheck)
	return out
}

func check(e *errs, path string, c *HealthCheck) *zones.HealthCheck {
	if c == nil {
		return nil
	}
	out := &zones.HealthCheck{Type: c.Type, Port: c.Port, Host: c.Host, Method: c.Method, Path: c.Path,
		ExpectStatus: c.ExpectStatus, ExpectBody: c.ExpectBody, TLSInsecure: c.TLSInsecure, CAFile: c.CAFile,
		DNSName: c.DNSName, DNSType: c.DNSType, ExpectRcode: c.ExpectRcode, Rise: c.Rise, Fall: c.Fall, OK: c.OK,
		DegradedTTL: c.DegradedTTL}
	for name, d := range map[string]struct {
		in  string
		out *time.Duration
	}{"interval": {c.Interval, &out.Interval}, "timeout": {c.Timeout, &out.Timeout}, "slow_start": {c.SlowStart, &out.SlowStart}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil || v <= 0 {
			e.add(join(path, name), "want a positive duration such as 5s, got %q", d.in)
			return out
		}
		*d.out = v
	}
	for _, p := range out.Problems() {
		e.add(path, "%s", p)
	}
	return out
}

// validate runs the zones package's rules on z, the zone a write would
// make, and names the fields at fault through l.
func (l *lines) validate(z *zones.Zone) *Problem {
	err := zones.Validate(z)
	if err == nil {
		err = zones.Check(z)
	}
	if err == nil {
		return nil
	}
	var list zones.Errors
	var one *zones.Error
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = zones.Errors{one}
	default:
		return invalid(FieldError{Detail: err.Error()})
	}
	var out []FieldError
	for _, e := range list {
		out = append(out, FieldError{Field: l.field[e.Line], Detail: e.Msg})
	}
	return invalid(out...)
}

// forgetLines clears the lines of z's items, which came from a file or
// the store, so that only the request's items map to fields.
func forgetLines(z *zones.Zone) {
	for i := range z.Records {
		z.Records[i].Line = 0
	}
	for i := range z.Datacenters {
		z.Datacenters[i].Line = 0
	}
	for i := range z.Pools {
		p := &z.Pools[i]
		p.Line = 0
		for j := range p.Rules {
			p.Rules[j].Line = 0
		}
		for j := range p.Endpoints {
			p.Endpoints[j].Line = 0
		}
	}
}

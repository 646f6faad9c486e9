package postgres

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// The state of a zone as rows, from the database (with ids) or from the
// zones to apply (without). Settings stored as jsonb are held as canonical
// JSON text, so that equal settings compare equal whichever side they
// come from.
type (
	zoneRows struct {
		id      int64
		origin  string
		records map[recordKey]*recordRow
		dcs     map[string]*dcRow
		pools   map[string]*poolRow
	}
	recordKey struct{ name, typ, rdata string }
	recordRow struct {
		id  int64
		ttl int64
	}
	dcRow struct {
		id                 int64
		lat, lon           float64
		country, continent string
	}
	poolRow struct {
		id                     int64
		ttl, maxAnswers, spill int64
		geo, allDown           string
		sticky, unknownUp      bool
		bias, rules            string // canonical JSON
		quorum                 string
		check                  string // canonical JSON, "" for none
		shedLoad               float32
		endpoints              map[netip.Addr]*endpointRow
	}
	endpointRow struct {
		id          int64
		dc          string
		weight      int64
		admin       string
		adminReason string
		health      string
		check       string // canonical JSON of the override, "" for none
	}
)

// newZoneRows returns the rows of a zone that holds nothing yet.
func newZoneRows(id int64, origin string) *zoneRows {
	return &zoneRows{id: id, origin: origin, records: map[recordKey]*recordRow{}, dcs: map[string]*dcRow{}, pools: map[string]*poolRow{}}
}

// wantedZones validates zs and turns them into rows, by origin.
func wantedZones(zs []*zones.Zone) (map[string]*zoneRows, error) {
	if _, err := zones.Build(zs, 0); err != nil {
		return nil, fmt.Errorf("postgres: apply: %w", err)
	}
	out := make(map[string]*zoneRows, len(zs))
	for _, z := range zs {
		zr, err := zoneToRows(z)
		if err != nil {
			return nil, fmt.Errorf("postgres: apply zone %s: %w", zones.CanonicalName(z.Origin), err)
		}
		out[zr.origin] = zr
	}
	return out, nil
}

// zoneToRows converts a validated zone, refusing what the schema cannot
// hold: numbers beyond its 32-bit signed integers.
func zoneToRows(z *zones.Zone) (*zoneRows, error) {
	zr := newZoneRows(0, zones.CanonicalName(z.Origin))
	for _, r := range z.Records {
		h := r.RR.Header()
		k := recordKey{zones.CanonicalName(h.Name), dns.Type(h.Rrtype).String(), RData(r.RR)}
		// RFC 2181 section 8: a TTL is at most 2^31-1.
		if h.Ttl > math.MaxInt32 {
			return nil, fmt.Errorf("%s %s: TTL %d is above 2147483647 (RFC 2181 section 8)", k.name, k.typ, h.Ttl)
		}
		zr.records[k] = &recordRow{ttl: int64(h.Ttl)}
	}
	for _, dc := range z.Datacenters {
		zr.dcs[dc.Name] = &dcRow{lat: dc.Lat, lon: dc.Lon, country: dc.Country, continent: dc.Continent}
	}
	for i := range z.Pools {
		p := &z.Pools[i]
		pr, err := poolToRow(p)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", p.Name, err)
		}
		zr.pools[zones.CanonicalName(p.Name)] = pr
	}
	return zr, nil
}

// poolToRow converts a pool and its endpoints, refusing numbers beyond
// the schema's 32-bit signed integers.
func poolToRow(p *zones.Pool) (*poolRow, error) {
	if p.TTL > math.MaxInt32 || p.MaxAnswers > math.MaxInt32 || p.Spill > math.MaxInt32 {
		return nil, errors.New("ttl, max_answers or spill above 2147483647")
	}
	allDown := "fail_open"
	switch p.WhenAllDown {
	case zones.Empty:
		allDown = "empty"
	case zones.Fallback:
		allDown = "fallback:" + zones.CanonicalName(p.FallbackTo)
	}
	rules := make([]RuleJSON, 0, len(p.Rules))
	for _, r := range p.Rules {
		rj := RuleJSON{Country: r.Countries, Continent: r.Continents, Datacenters: r.Datacenters}
		for _, c := range r.CIDRs {
			rj.CIDR = append(rj.CIDR, c.String())
		}
		rules = append(rules, rj)
	}
	pr := &poolRow{
		ttl: int64(p.TTL), maxAnswers: int64(p.MaxAnswers), spill: int64(p.Spill),
		geo: p.Geo.String(), allDown: allDown, sticky: p.Sticky, unknownUp: p.UnknownIsUp,
		quorum: cmp.Or(p.Quorum, zones.DefaultQuorum), shedLoad: float32(p.ShedLoad),
		endpoints: map[netip.Addr]*endpointRow{},
	}
	if err := pr.encodeJSON(p.Bias, rules, p.Check); err != nil {
		return nil, err
	}
	for _, e := range p.Endpoints {
		if e.Weight < 1 || e.Weight > math.MaxInt32 {
			return nil, fmt.Errorf("endpoint %s: weight %d out of range 1-2147483647", e.Addr, e.Weight)
		}
		check, err := checkJSON(e.Check)
		if err != nil {
			return nil, err
		}
		pr.endpoints[e.Addr] = &endpointRow{dc: e.Datacenter, weight: int64(e.Weight), admin: e.Admin.String(), health: e.Health.String(), check: check}
	}
	return pr, nil
}

// encodeJSON sets the jsonb settings of r, bias, rules and health check,
// to their canonical JSON: zoneToRows and readPoolRows both encode
// through it, so that the two sides of a diff compare equal.
func (r *poolRow) encodeJSON(bias map[string]float64, rules []RuleJSON, check *zones.HealthCheck) error {
	var err error
	if r.bias, err = canonicalJSON(bias); err != nil {
		return err
	}
	if r.rules, err = canonicalJSON(rules); err != nil {
		return err
	}
	r.check, err = checkJSON(check)
	return err
}

// checkJSON encodes a health check for its jsonb column; none is "".
// encoding/json writes struct fields in a fixed order, so equal checks
// encode equal.
func checkJSON(c *zones.HealthCheck) (string, error) {
	if c == nil {
		return "", nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode health check: %w", err)
	}
	return string(b), nil
}

// nullJSON is a jsonb parameter: SQL NULL for "".
func nullJSON(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// canonicalJSON encodes bias maps and rule lists so that equal settings
// compare equal: encoding/json sorts map keys, and empty is {} or [].
func canonicalJSON(v any) (string, error) {
	switch v := v.(type) {
	case map[string]float64:
		if len(v) == 0 {
			return "{}", nil
		}
	case []RuleJSON:
		if len(v) == 0 {
			return "[]", nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b), nil
}

package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// Querier is what reading needs: a transaction or a connection.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RuleJSON is a topology rule as stored in pools.rules.
type RuleJSON struct {
	CIDR        []string `json:"cidr,omitempty"`
	Country     []string `json:"country,omitempty"`
	Continent   []string `json:"continent,omitempty"`
	Datacenters []string `json:"datacenters"`
}

// Source names a zone read from the database in error messages.
func Source(origin string) string { return "postgres:" + origin }

// ReadZones reads the zones with the given ids, or every zone when ids is
// nil, keyed by id. Ids that no longer exist are simply absent. Call it
// inside one REPEATABLE READ transaction to get a consistent picture.
//
// Data of one zone that cannot be used (a record whose rdata does not
// parse, a bad CIDR in a pool's rules: what a manual SQL edit can leave)
// marks that zone Invalid and is left out of it, so that one broken zone
// does not stop every other zone from loading; zones.Rebuild then keeps
// serving the zone's last good version. Database errors fail the read.
func ReadZones(ctx context.Context, q Querier, ids []int64) (map[int64]*zones.Zone, error) {
	all := ids == nil
	var rows pgx.Rows
	var err error
	if ids == nil {
		rows, err = q.Query(ctx, "SELECT id, origin FROM zones ORDER BY origin")
	} else {
		rows, err = q.Query(ctx, "SELECT id, origin FROM zones WHERE id = ANY($1) ORDER BY origin", ids)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read zones: %w", err)
	}
	out := map[int64]*zones.Zone{}
	ids = ids[:0:0]
	for rows.Next() {
		var id int64
		var origin string
		if err := rows.Scan(&id, &origin); err != nil {
			return nil, fmt.Errorf("postgres: read zones: %w", err)
		}
		out[id] = &zones.Zone{Origin: origin, Source: Source(origin)}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read zones: %w", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	if all {
		// Every row of every table: no array of ids for the server to
		// search (100,000 pools: seconds).
		ids = nil
	}
	for _, read := range []func(context.Context, Querier, []int64, map[int64]*zones.Zone) error{readRecords, readDatacenters, readPools, readKeys} {
		if err := read(ctx, q, ids, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// where returns the condition selecting the rows whose col is one of ids,
// and its arguments; nil ids select every row.
func where(col string, ids []int64) (string, []any) {
	if ids == nil {
		return "true", nil
	}
	return col + " = ANY($1)", []any{ids}
}

// invalidate marks z Invalid with err, unless it is already: the first
// problem found is the one reported.
func invalidate(z *zones.Zone, err error) {
	if z.Invalid == nil {
		z.Invalid = err
	}
}

func readRecords(ctx context.Context, q Querier, ids []int64, out map[int64]*zones.Zone) error {
	cond, args := where("zone_id", ids)
	rows, err := q.Query(ctx, "SELECT zone_id, name, type, ttl, rdata FROM records WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return fmt.Errorf("postgres: read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var zid int64
		var name, typ, rdata string
		var ttl int64
		if err := rows.Scan(&zid, &name, &typ, &ttl, &rdata); err != nil {
			return fmt.Errorf("postgres: read records: %w", err)
		}
		z := out[zid]
		rr, err := ParseRR(name, uint32(ttl), typ, rdata)
		if err != nil {
			invalidate(z, fmt.Errorf("postgres: zone %s: %w", z.Origin, err))
			continue
		}
		z.Records = append(z.Records, zones.Record{RR: rr})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read records: %w", err)
	}
	return nil
}

// ParseRR builds a record from its stored columns.
func ParseRR(name string, ttl uint32, typ, rdata string) (dns.RR, error) {
	rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, typ, rdata))
	if err != nil {
		return nil, fmt.Errorf("record %s %s %q: %w", name, typ, rdata, err)
	}
	if rr == nil {
		return nil, fmt.Errorf("record %s %s %q: no data", name, typ, rdata)
	}
	return rr, nil
}

// RData returns a record's data in presentation format, as stored.
func RData(rr dns.RR) string {
	s := rr.String()
	return s[len(rr.Header().String()):]
}

func readDatacenters(ctx context.Context, q Querier, ids []int64, out map[int64]*zones.Zone) error {
	cond, args := where("zone_id", ids)
	rows, err := q.Query(ctx, "SELECT zone_id, name, lat, lon, country, continent FROM datacenters WHERE "+cond+" ORDER BY id", args...)
	if err != nil {
		return fmt.Errorf("postgres: read datacenters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var zid int64
		var dc zones.Datacenter
		if err := rows.Scan(&zid, &dc.Name, &dc.Lat, &dc.Lon, &dc.Country, &dc.Continent); err != nil {
			return fmt.Errorf("postgres: read datacenters: %w", err)
		}
		out[zid].Datacenters = append(out[zid].Datacenters, dc)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read datacenters: %w", err)
	}
	return nil
}

func readPools(ctx context.Context, q Querier, ids []int64, out map[int64]*zones.Zone) error {
	cond, args := where("zone_id", ids)
	rows, err := q.Query(ctx, `SELECT id, zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules,
		quorum, health_check, shed_load FROM pools WHERE `+cond+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("postgres: read pools: %w", err)
	}
	type loc struct {
		zone  int64
		index int
	}
	byID := map[int64]loc{}
	var poolIDs []int64
	for rows.Next() {
		var id, zid int64
		var name, geo, allDown string
		var ttl, maxAnswers, spill int32
		var sticky, unknownUp bool
		// The JSON columns are decoded here rather than by Scan: a
		// document of the wrong shape is the zone's problem, and a Scan
		// error would end the whole read.
		var bias, rules, check []byte
		var quorum string
		var shed float32
		if err := rows.Scan(&id, &zid, &name, &ttl, &maxAnswers, &geo, &sticky, &spill, &unknownUp, &allDown, &bias, &rules, &quorum, &check, &shed); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: read pools: %w", err)
		}
		z := out[zid]
		p, err := readPool(z, name, geo, allDown, bias, rules, check)
		if err != nil {
			invalidate(z, fmt.Errorf("postgres: zone %s pool %s: %w", z.Origin, name, err))
			continue // and its endpoints, which find no pool
		}
		p.TTL, p.MaxAnswers, p.Sticky, p.Spill, p.UnknownIsUp = uint32(ttl), int(maxAnswers), sticky, int(spill), unknownUp
		p.Quorum, p.ShedLoad = quorum, float64(shed)
		byID[id] = loc{zid, len(z.Pools)}
		poolIDs = append(poolIDs, id)
		z.Pools = append(z.Pools, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read pools: %w", err)
	}
	if len(poolIDs) == 0 {
		return nil
	}
	cond, args = where("e.pool_id", poolIDs)
	if ids == nil {
		cond, args = where("", nil)
	}
	// By pool, so that each pool's endpoints come together: they fill one
	// slab, cut per pool, instead of growing a slice per pool.
	rows, err = q.Query(ctx, `SELECT e.pool_id, e.address, e.datacenter, e.weight, e.admin_state, coalesce(h.state, 'unknown'), e.health_check,
		a.endpoint_id IS NOT NULL, a.load, a.weight_percent, h.up_since
		FROM endpoints e LEFT JOIN agent_reports a ON a.endpoint_id = e.id AND a.expires_at > now() LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE `+cond+` ORDER BY e.pool_id, e.id`, args...)
	if err != nil {
		return fmt.Errorf("postgres: read endpoints: %w", err)
	}
	defer rows.Close()
	var (
		pid           int64
		addr          netip.Addr
		e             zones.Endpoint
		dc            string
		weight        int32
		admin, health string
		check         []byte // decoded here, as the pools' JSON columns are
		fresh         bool
		load          *float32
		pct           *int32
		upSince       *time.Time
		slab          []zones.Endpoint
		cur           *zones.Pool
		curID         int64 = -1
		names               = map[string]string{} // datacenter names, one string each
	)
	// done cuts the current pool's endpoints from the slab.
	done := func() {
		if cur != nil {
			cur.Endpoints = slab[:len(slab):len(slab)]
			slab = slab[len(slab):]
		}
	}
	dest := []any{&pid, &addr, &dc, &weight, &admin, &health, &check, &fresh, &load, &pct, &upSince}
	for rows.Next() {
		check, load, pct, upSince = nil, nil, nil, nil
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("postgres: read endpoints: %w", err)
		}
		l, ok := byID[pid]
		if !ok {
			continue // of a pool left out of its invalid zone
		}
		z := out[l.zone]
		if pid != curID {
			done()
			cur, curID = &z.Pools[l.index], pid
			if cap(slab) == 0 {
				slab = make([]zones.Endpoint, 0, 4096)
			}
		}
		name, ok := names[dc]
		if !ok {
			name = strings.Clone(dc)
			names[name] = name
		}
		e = zones.Endpoint{Addr: addr, Datacenter: name, Weight: uint32(weight)}
		if upSince != nil {
			e.UpSince = *upSince
		}
		if fresh && (load != nil || pct != nil) {
			e.Agent = &zones.AgentState{}
			if load != nil {
				e.Agent.Load, e.Agent.HasLoad = float64(*load), true
			}
			if pct != nil {
				e.Agent.WeightPercent = int(*pct)
			}
		}
		var err error
		if e.Admin, err = zones.ParseAdminState(admin); err == nil {
			e.Health, err = zones.ParseHealthState(health)
		}
		if err == nil && check != nil {
			err = json.Unmarshal(check, &e.Check)
		}
		if err != nil {
			invalidate(z, fmt.Errorf("postgres: zone %s pool %s endpoint %s: %w", z.Origin, cur.Name, addr, err))
			continue
		}
		if len(slab) == cap(slab) {
			// The slab is full: this pool's endpoints so far move to a new
			// one, which the rest of the pool fills.
			n := make([]zones.Endpoint, len(slab), max(4096, 2*len(slab)))
			copy(n, slab)
			slab = n
		}
		slab = append(slab, e)
	}
	done()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read endpoints: %w", err)
	}
	return nil
}

// readPool makes a pool of its stored columns that can be wrong: modes,
// and the JSON documents of rules, bias and health check.
func readPool(z *zones.Zone, name, geo, allDown string, bias, rules, check []byte) (zones.Pool, error) {
	p := zones.NewPool(name)
	var err error
	if p.Geo, err = zones.ParseGeoMode(geo); err != nil {
		return p, err
	}
	if p.WhenAllDown, p.FallbackTo, err = zones.ParseAllDown(allDown, z.Origin); err != nil {
		return p, err
	}
	if err := json.Unmarshal(bias, &p.Bias); err != nil {
		return p, fmt.Errorf("bias: %w", err)
	}
	if len(p.Bias) == 0 {
		p.Bias = nil
	}
	if check != nil {
		if err := json.Unmarshal(check, &p.Check); err != nil {
			return p, fmt.Errorf("health_check: %w", err)
		}
	}
	var rs []RuleJSON
	if err := json.Unmarshal(rules, &rs); err != nil {
		return p, fmt.Errorf("rules: %w", err)
	}
	for _, r := range rs {
		rule := zones.Rule{Countries: r.Country, Continents: r.Continent, Datacenters: r.Datacenters}
		for _, c := range r.CIDR {
			pfx, err := netip.ParsePrefix(c)
			if err != nil {
				return p, fmt.Errorf("bad CIDR %q", c)
			}
			rule.CIDRs = append(rule.CIDRs, pfx)
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
}

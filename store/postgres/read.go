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
func ReadZones(ctx context.Context, q Reader, ids []int64) (map[int64]*zones.Zone, error) {
	// Every query goes in one batch, one round trip: a server reading a
	// standby in another region pays the distance once per load, not
	// once per table.
	b := &pgx.Batch{}
	sel := ids
	if ids == nil {
		b.Queue("SELECT id, origin FROM zones ORDER BY origin")
	} else {
		b.Queue("SELECT id, origin FROM zones WHERE id = ANY($1) ORDER BY origin", ids)
	}
	// A whole load selects every row: no array of 100,000 ids for the
	// server to search (seconds).
	cond, args := where("zone_id", sel)
	b.Queue("SELECT zone_id, name, type, ttl, rdata FROM records WHERE "+cond+" ORDER BY id", args...)
	b.Queue("SELECT zone_id, name, lat, lon, country, continent FROM datacenters WHERE "+cond+" ORDER BY id", args...)
	b.Queue(`SELECT id, zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules,
		quorum, health_check, shed_load FROM pools WHERE `+cond+` ORDER BY id`, args...)
	econd, eargs := where("p.zone_id", sel)
	// By pool, so that each pool's endpoints come together: they fill one
	// slab, cut per pool, instead of growing a slice per pool.
	b.Queue(`SELECT e.pool_id, e.address, e.datacenter, e.weight, e.admin_state, coalesce(h.state, 'unknown'), e.health_check,
		a.endpoint_id IS NOT NULL, a.load, a.weight_percent, h.up_since
		FROM endpoints e JOIN pools p ON p.id = e.pool_id
		LEFT JOIN agent_reports a ON a.endpoint_id = e.id AND a.expires_at > now() LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE `+econd+` ORDER BY e.pool_id, e.id`, eargs...)
	keys, withKeys := ctx.Value(keysKey{}).(*keyOpener)
	if withKeys {
		b.Queue("SELECT zone_id, tag, dnskey, private_sealed FROM dnssec_keys WHERE "+cond+" AND state = 'active' ORDER BY zone_id, tag", args...)
	}
	br := q.SendBatch(ctx, b)
	defer br.Close()

	out := map[int64]*zones.Zone{}
	var pools map[int64]poolLoc
	type step struct {
		what string
		scan func(pgx.Rows) error
	}
	steps := []step{
		{"zones", func(r pgx.Rows) error { return scanZones(r, out) }},
		{"records", func(r pgx.Rows) error { return scanRecords(r, out) }},
		{"datacenters", func(r pgx.Rows) error { return scanDatacenters(r, out) }},
		{"pools", func(r pgx.Rows) (err error) { pools, err = scanPools(r, out); return err }},
		{"endpoints", func(r pgx.Rows) error { return scanEndpoints(r, out, pools) }},
	}
	if withKeys {
		steps = append(steps, step{"DNSSEC keys", func(r pgx.Rows) error { return scanKeys(r, keys, out) }})
	}
	for _, st := range steps {
		rows, err := br.Query()
		if err == nil {
			err = st.scan(rows)
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: read %s: %w", st.what, err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("postgres: read zones: %w", err)
	}
	return out, nil
}

// Reader is what ReadZones reads from: a transaction, a connection or a
// pool.
type Reader interface {
	Querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// scanZones reads the zones' ids and origins into out.
func scanZones(rows pgx.Rows, out map[int64]*zones.Zone) error {
	var id int64
	var origin string
	_, err := pgx.ForEachRow(rows, []any{&id, &origin}, func() error {
		out[id] = &zones.Zone{Origin: origin, Source: Source(origin)}
		return nil
	})
	return err
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

// scanRecords reads the static records of the zones of out.
func scanRecords(rows pgx.Rows, out map[int64]*zones.Zone) error {
	var zid, ttl int64
	var name, typ, rdata string
	_, err := pgx.ForEachRow(rows, []any{&zid, &name, &typ, &ttl, &rdata}, func() error {
		z := out[zid]
		if z == nil {
			return nil
		}
		rr, err := ParseRR(name, uint32(ttl), typ, rdata)
		if err != nil {
			invalidate(z, fmt.Errorf("postgres: zone %s: %w", z.Origin, err))
			return nil
		}
		z.Records = append(z.Records, zones.Record{RR: rr})
		return nil
	})
	return err
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

// scanDatacenters reads the datacenters of the zones of out.
func scanDatacenters(rows pgx.Rows, out map[int64]*zones.Zone) error {
	var zid int64
	var dc zones.Datacenter
	_, err := pgx.ForEachRow(rows, []any{&zid, &dc.Name, &dc.Lat, &dc.Lon, &dc.Country, &dc.Continent}, func() error {
		if z := out[zid]; z != nil {
			z.Datacenters = append(z.Datacenters, dc)
		}
		return nil
	})
	return err
}

// poolLoc is where a pool read is: its zone's id and its index there.
type poolLoc struct {
	zone  int64
	index int
}

// scanPools reads the pools of the zones of out, without endpoints, and
// returns where each is, by id.
func scanPools(rows pgx.Rows, out map[int64]*zones.Zone) (map[int64]poolLoc, error) {
	byID := map[int64]poolLoc{}
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
			return nil, err
		}
		z := out[zid]
		if z == nil {
			continue
		}
		p, err := readPool(z, name, geo, allDown, bias, rules, check)
		if err != nil {
			invalidate(z, fmt.Errorf("postgres: zone %s pool %s: %w", z.Origin, name, err))
			continue // and its endpoints, which find no pool
		}
		p.TTL, p.MaxAnswers, p.Sticky, p.Spill, p.UnknownIsUp = uint32(ttl), int(maxAnswers), sticky, int(spill), unknownUp
		p.Quorum, p.ShedLoad = quorum, float64(shed)
		byID[id] = poolLoc{zid, len(z.Pools)}
		z.Pools = append(z.Pools, p)
	}
	return byID, rows.Err()
}

// scanEndpoints reads the endpoints of the pools byID locates in out.
func scanEndpoints(rows pgx.Rows, out map[int64]*zones.Zone, byID map[int64]poolLoc) error {
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
			return err
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
	return rows.Err()
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

package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// DB is what writing needs: a *pgx.Conn or a *pgxpool.Pool.
type DB interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// DefaultMaxDeleteShare is the share of a zone's records and endpoints
// that Apply deletes without Force.
const DefaultMaxDeleteShare = 0.5

// ApplyOptions control Apply.
type ApplyOptions struct {
	// DryRun computes the diff, checks it against the database (every
	// statement runs) and rolls back.
	DryRun bool
	// Prune deletes zones in the database that are not given; without it
	// they are left alone.
	Prune bool
	// Force applies changes that the guard rails refuse.
	Force bool
	// MaxDeleteShare is the largest share of a zone's static records plus
	// endpoints that may be deleted without Force. Zero or less means
	// DefaultMaxDeleteShare; 1 or more allows any deletion.
	MaxDeleteShare float64
	// Actor names who applies, in the audit log of admin state changes.
	// Default "apply".
	Actor string
}

// RefusedError is Apply's error when a guard rail refuses the change.
// ApplyOptions.Force overrides it.
type RefusedError struct {
	Reasons []string
}

func (e *RefusedError) Error() string {
	return "postgres: apply refused: " + strings.Join(e.Reasons, "; ") + " (override with force)"
}

// fileReason is the admin and health reason of states set by Apply.
const fileReason = "zone file"

// Apply makes the database hold zs, in one transaction: zones that are new
// are inserted, and of the others only what differs is written, so that
// applying the same zones again changes nothing and does not bump the data
// version. Endpoints keep their ids, and so their health, across applies.
// Health from the zones is written for new endpoints and where it says up
// or down; a checker's verdict is never reset to unknown.
//
// Every zone is validated first (zones.Build); invalid input changes
// nothing. Deleting more than MaxDeleteShare of a zone, deleting a pool or
// leaving a pool that had active endpoints without any is refused with a
// *RefusedError unless Force is set, dry run or not. Apply returns the
// diff also when the change is refused.
func Apply(ctx context.Context, db DB, zs []*zones.Zone, opts ApplyOptions) (*Diff, error) {
	if opts.MaxDeleteShare <= 0 {
		opts.MaxDeleteShare = DefaultMaxDeleteShare
	}
	opts.Actor = cmp.Or(opts.Actor, "apply")
	want, err := wantedZones(zs)
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("postgres: apply: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	// Taking the version row first serialises writers: the state read
	// below cannot change before commit, and the triggers, which lock the
	// same row, cannot deadlock against another Apply.
	var version int64
	if err := tx.QueryRow(ctx, "SELECT version FROM meridian_version FOR UPDATE").Scan(&version); err != nil {
		return nil, fmt.Errorf("postgres: apply: lock version: %w", err)
	}
	have, err := currentZones(ctx, tx, want, opts.Prune)
	if err != nil {
		return nil, err
	}
	plans := planAll(have, want, opts)
	diff := &Diff{Version: version}
	var refusals []string
	for _, p := range plans {
		if !p.empty() {
			diff.Zones = append(diff.Zones, p.zoneDiff())
		}
		refusals = append(refusals, p.refusals...)
	}
	if len(refusals) > 0 && !opts.Force {
		return diff, &RefusedError{Reasons: refusals}
	}
	if diff.Empty() {
		return diff, nil
	}
	if err := execute(ctx, tx, plans); err != nil {
		return diff, err
	}
	if opts.DryRun {
		return diff, nil
	}
	if err := tx.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&diff.Version); err != nil {
		return diff, fmt.Errorf("postgres: apply: read version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return diff, fmt.Errorf("postgres: apply: commit: %w", err)
	}
	diff.Applied = true
	return diff, nil
}

// The state of a zone as rows, from the database (with ids) or from the
// zones to apply (without).
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
	zr := &zoneRows{
		origin:  zones.CanonicalName(z.Origin),
		records: map[recordKey]*recordRow{},
		dcs:     map[string]*dcRow{},
		pools:   map[string]*poolRow{},
	}
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
	bias, err := canonicalJSON(p.Bias)
	if err != nil {
		return nil, err
	}
	rulesJSON, err := canonicalJSON(rules)
	if err != nil {
		return nil, err
	}
	check, err := checkJSON(p.Check)
	if err != nil {
		return nil, err
	}
	pr := &poolRow{
		ttl: int64(p.TTL), maxAnswers: int64(p.MaxAnswers), spill: int64(p.Spill),
		geo: p.Geo.String(), allDown: allDown, sticky: p.Sticky, unknownUp: p.UnknownIsUp,
		bias: bias, rules: rulesJSON, quorum: cmp.Or(p.Quorum, zones.DefaultQuorum), check: check, shedLoad: float32(p.ShedLoad),
		endpoints: map[netip.Addr]*endpointRow{},
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

// currentZones reads, with ids, the zones of the database that Apply may
// change: those in want, and every zone when pruning.
func currentZones(ctx context.Context, tx pgx.Tx, want map[string]*zoneRows, prune bool) (map[string]*zoneRows, error) {
	rows, err := tx.Query(ctx, "SELECT id, origin FROM zones")
	if err != nil {
		return nil, fmt.Errorf("postgres: apply: read zones: %w", err)
	}
	type idOrigin struct {
		id     int64
		origin string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idOrigin, error) {
		var z idOrigin
		return z, r.Scan(&z.id, &z.origin)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: apply: read zones: %w", err)
	}
	have := map[string]*zoneRows{}
	byID := map[int64]*zoneRows{}
	var ids []int64
	for _, z := range all {
		if want[z.origin] == nil && !prune {
			continue
		}
		zr := &zoneRows{id: z.id, origin: z.origin, records: map[recordKey]*recordRow{}, dcs: map[string]*dcRow{}, pools: map[string]*poolRow{}}
		have[z.origin], byID[z.id] = zr, zr
		ids = append(ids, z.id)
	}
	if len(ids) == 0 {
		return have, nil
	}
	for _, read := range []func(context.Context, pgx.Tx, []int64, map[int64]*zoneRows) error{readRecordRows, readDCRows, readPoolRows} {
		if err := read(ctx, tx, ids, byID); err != nil {
			return nil, err
		}
	}
	return have, nil
}

func readRecordRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	rows, err := tx.Query(ctx, "SELECT id, zone_id, name, type, ttl, rdata FROM records WHERE zone_id = ANY($1)", ids)
	if err != nil {
		return fmt.Errorf("postgres: apply: read records: %w", err)
	}
	var r recordRow
	var zid int64
	var k recordKey
	_, err = pgx.ForEachRow(rows, []any{&r.id, &zid, &k.name, &k.typ, &r.ttl, &k.rdata}, func() error {
		row := r
		byID[zid].records[k] = &row
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: apply: read records: %w", err)
	}
	return nil
}

func readDCRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	rows, err := tx.Query(ctx, "SELECT id, zone_id, name, lat, lon, country, continent FROM datacenters WHERE zone_id = ANY($1)", ids)
	if err != nil {
		return fmt.Errorf("postgres: apply: read datacenters: %w", err)
	}
	var dc dcRow
	var zid int64
	var name string
	_, err = pgx.ForEachRow(rows, []any{&dc.id, &zid, &name, &dc.lat, &dc.lon, &dc.country, &dc.continent}, func() error {
		row := dc
		byID[zid].dcs[name] = &row
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: apply: read datacenters: %w", err)
	}
	return nil
}

func readPoolRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	rows, err := tx.Query(ctx, `SELECT id, zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules,
		quorum, health_check, shed_load FROM pools WHERE zone_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("postgres: apply: read pools: %w", err)
	}
	pools := map[int64]*poolRow{}
	var p poolRow
	var zid int64
	var name string
	var bias map[string]float64
	var rules []RuleJSON
	var check *zones.HealthCheck
	_, err = pgx.ForEachRow(rows, []any{&p.id, &zid, &name, &p.ttl, &p.maxAnswers, &p.geo, &p.sticky, &p.spill, &p.unknownUp, &p.allDown, &bias, &rules, &p.quorum, &check, &p.shedLoad}, func() error {
		row := p
		var err error
		if row.check, err = checkJSON(check); err != nil {
			return err
		}
		check = nil
		if row.bias, err = canonicalJSON(bias); err != nil {
			return err
		}
		if row.rules, err = canonicalJSON(rules); err != nil {
			return err
		}
		row.endpoints = map[netip.Addr]*endpointRow{}
		byID[zid].pools[name] = &row
		pools[row.id] = &row
		bias, rules = nil, nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: apply: read pools: %w", err)
	}
	if len(pools) == 0 {
		return nil
	}
	rows, err = tx.Query(ctx, `SELECT e.id, e.pool_id, e.address, e.datacenter, e.weight, e.admin_state, e.admin_reason, coalesce(h.state, 'unknown'),
		e.health_check FROM endpoints e JOIN pools p ON p.id = e.pool_id LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE p.zone_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("postgres: apply: read endpoints: %w", err)
	}
	var e endpointRow
	var pid int64
	var addr netip.Addr
	var echeck *zones.HealthCheck
	_, err = pgx.ForEachRow(rows, []any{&e.id, &pid, &addr, &e.dc, &e.weight, &e.admin, &e.adminReason, &e.health, &echeck}, func() error {
		row := e
		var err error
		if row.check, err = checkJSON(echeck); err != nil {
			return err
		}
		echeck = nil
		pools[pid].endpoints[addr] = &row
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: apply: read endpoints: %w", err)
	}
	return nil
}

// stmt is one statement of a plan; what names it in errors.
type stmt struct {
	what string
	sql  string
	args []any
}

// zonePlan is the diff of one zone and the statements that make it.
type zonePlan struct {
	origin  string
	op      Op // Add or Remove for a whole zone, else Update
	changes []Change
	// Statements run in this order: the zone's insertion, deletions so
	// that nothing collides with what replaces it, updates, insertions.
	pre, del, upd, ins []stmt
	// total and deleted count static records plus endpoints, for the
	// guard on the share deleted.
	total, deleted int
	refusals       []string
}

func (p *zonePlan) empty() bool { return p.op == Update && len(p.changes) == 0 }

func (p *zonePlan) zoneDiff() ZoneDiff {
	return ZoneDiff{Origin: p.origin, Op: p.op, Changes: p.changes}
}

func (p *zonePlan) change(op Op, format string, args ...any) {
	p.changes = append(p.changes, Change{Op: op, Text: fmt.Sprintf(format, args...)})
}

func (p *zonePlan) refuse(format string, args ...any) {
	p.refusals = append(p.refusals, fmt.Sprintf("zone %s: ", p.origin)+fmt.Sprintf(format, args...))
}

// planAll plans every zone of have and want, sorted by origin.
func planAll(have, want map[string]*zoneRows, opts ApplyOptions) []*zonePlan {
	origins := unionKeys(have, want, strings.Compare)
	plans := make([]*zonePlan, 0, len(origins))
	for _, o := range origins {
		plans = append(plans, planZone(o, have[o], want[o], opts))
	}
	return plans
}

func planZone(origin string, have, want *zoneRows, opts ApplyOptions) *zonePlan {
	p := &zonePlan{origin: origin, op: Update}
	empty := &zoneRows{origin: origin}
	switch {
	case have == nil:
		p.op, have = Add, empty
		p.pre = append(p.pre, stmt{"insert zone", "INSERT INTO zones (origin) VALUES ($1)", []any{origin}})
	case want == nil:
		p.op, want = Remove, empty
	}
	p.total = len(have.records)
	for _, pr := range have.pools {
		p.total += len(pr.endpoints)
	}
	p.diffRecords(have.records, want.records)
	p.diffDatacenters(have.dcs, want.dcs)
	p.diffPools(have.pools, want.pools, opts.Actor)
	if p.op == Remove {
		// The cascade deletes the rest; the statements above are dropped
		// so that nothing is deleted twice.
		p.del = []stmt{{"delete zone", "DELETE FROM zones WHERE id = $1", []any{have.id}}}
		p.upd, p.ins = nil, nil
		p.refusals = nil
		p.refuse("deletes the whole zone (%d records and endpoints)", p.total)
		return p
	}
	if p.total > 0 && float64(p.deleted) > opts.MaxDeleteShare*float64(p.total) {
		p.refuse("deletes %d of %d records and endpoints (%.0f%%, more than the %.0f%% allowed)",
			p.deleted, p.total, 100*float64(p.deleted)/float64(p.total), 100*opts.MaxDeleteShare)
	}
	return p
}

func (p *zonePlan) diffRecords(have, want map[recordKey]*recordRow) {
	lastTTL := ""
	for _, k := range unionKeys(have, want, compareRecordKeys) {
		h, w := have[k], want[k]
		switch {
		case h == nil:
			p.change(Add, "%s %d IN %s %s", k.name, w.ttl, k.typ, k.rdata)
			p.ins = append(p.ins, stmt{"insert record " + k.name + " " + k.typ,
				"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, $2, $3, $4, $5 FROM zones WHERE origin = $1",
				[]any{p.origin, k.name, k.typ, w.ttl, k.rdata}})
		case w == nil:
			p.change(Remove, "%s %d IN %s %s", k.name, h.ttl, k.typ, k.rdata)
			p.del = append(p.del, stmt{"delete record " + k.name + " " + k.typ, "DELETE FROM records WHERE id = $1", []any{h.id}})
			p.deleted++
		case h.ttl != w.ttl:
			// One line per RRset: its records share a TTL (RFC 2181
			// section 5.2) and sort together.
			if text := fmt.Sprintf("%s %s ttl %d -> %d", k.name, k.typ, h.ttl, w.ttl); text != lastTTL {
				p.change(Update, "%s", text)
				lastTTL = text
			}
			p.upd = append(p.upd, stmt{"update record " + k.name + " " + k.typ, "UPDATE records SET ttl = $2 WHERE id = $1", []any{h.id, w.ttl}})
		}
	}
}

func (p *zonePlan) diffDatacenters(have, want map[string]*dcRow) {
	for _, name := range unionKeys(have, want, strings.Compare) {
		h, w := have[name], want[name]
		switch {
		case h == nil:
			p.change(Add, "datacenter %s (%s)", name, joinSettings(w.settings(), false))
			p.ins = append(p.ins, stmt{"insert datacenter " + name,
				"INSERT INTO datacenters (zone_id, name, lat, lon, country, continent) SELECT id, $2, $3, $4, $5, $6 FROM zones WHERE origin = $1",
				[]any{p.origin, name, w.lat, w.lon, w.country, w.continent}})
		case w == nil:
			p.change(Remove, "datacenter %s", name)
			p.del = append(p.del, stmt{"delete datacenter " + name, "DELETE FROM datacenters WHERE id = $1", []any{h.id}})
		default:
			if p.settingChanges("datacenter "+name+":", h.settings(), w.settings()) {
				p.upd = append(p.upd, stmt{"update datacenter " + name,
					"UPDATE datacenters SET lat = $2, lon = $3, country = $4, continent = $5 WHERE id = $1",
					[]any{h.id, w.lat, w.lon, w.country, w.continent}})
			}
		}
	}
}

func (p *zonePlan) diffPools(have, want map[string]*poolRow, actor string) {
	for _, name := range unionKeys(have, want, compareNames) {
		h, w := have[name], want[name]
		switch {
		case h == nil:
			p.change(Add, "pool %s (%s)", name, joinSettings(w.settings(), true))
			p.ins = append(p.ins, stmt{"insert pool " + name,
				`INSERT INTO pools (zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules, quorum, health_check, shed_load)
				SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11::text::jsonb, $12, $13::text::jsonb, $14 FROM zones WHERE origin = $1`,
				[]any{p.origin, name, w.ttl, w.maxAnswers, w.geo, w.sticky, w.spill, w.unknownUp, w.allDown, w.bias, w.rules, w.quorum, nullJSON(w.check), w.shedLoad}})
			p.diffEndpoints(name, nil, w.endpoints, actor)
		case w == nil:
			p.change(Remove, "pool %s", name)
			p.del = append(p.del, stmt{"delete pool " + name, "DELETE FROM pools WHERE id = $1", []any{h.id}})
			p.diffEndpoints(name, h.endpoints, nil, actor)
			p.refuse("deletes pool %s (%d endpoints)", name, len(h.endpoints))
		default:
			if p.settingChanges("pool "+name+":", h.settings(), w.settings()) {
				p.upd = append(p.upd, stmt{"update pool " + name,
					`UPDATE pools SET ttl = $2, max_answers = $3, geo = $4, sticky = $5, spill = $6, unknown_is_up = $7,
					when_all_down = $8, bias = $9::text::jsonb, rules = $10::text::jsonb, quorum = $11, health_check = $12::text::jsonb, shed_load = $13 WHERE id = $1`,
					[]any{h.id, w.ttl, w.maxAnswers, w.geo, w.sticky, w.spill, w.unknownUp, w.allDown, w.bias, w.rules, w.quorum, nullJSON(w.check), w.shedLoad}})
			}
			p.diffEndpoints(name, h.endpoints, w.endpoints, actor)
			if before, after := countActive(h.endpoints), countActive(w.endpoints); before > 0 && after == 0 {
				p.refuse("leaves pool %s without an active endpoint (it has %d)", name, before)
			}
		}
	}
}

func countActive(eps map[netip.Addr]*endpointRow) int {
	n := 0
	for _, e := range eps {
		if e.admin == "active" {
			n++
		}
	}
	return n
}

func (p *zonePlan) diffEndpoints(pool string, have, want map[netip.Addr]*endpointRow, actor string) {
	for _, addr := range unionKeys(have, want, netip.Addr.Compare) {
		h, w := have[addr], want[addr]
		what := "endpoint " + pool + " " + addr.String()
		switch {
		case h == nil:
			p.change(Add, "%s (%s)", what, w.summary())
			// The health row comes with the endpoint, in one statement.
			p.ins = append(p.ins, stmt{"insert " + what,
				`WITH e AS (
					INSERT INTO endpoints (pool_id, address, datacenter, weight, admin_state, admin_reason, health_check)
					SELECT p.id, $3, $4, $5, $6, $7, $10::text::jsonb FROM pools p JOIN zones z ON z.id = p.zone_id WHERE z.origin = $1 AND p.name = $2
					RETURNING id)
				INSERT INTO endpoint_health (endpoint_id, state, reason) SELECT id, $8, $9 FROM e`,
				[]any{p.origin, pool, addr, w.dc, w.weight, w.admin, reasonFor(w.admin != "active"), w.health, reasonFor(w.health != "unknown"), nullJSON(w.check)}})
		case w == nil:
			p.change(Remove, "%s (%s)", what, h.summary())
			if want != nil { // else the pool goes, and its endpoints with it
				p.del = append(p.del, stmt{"delete " + what, "DELETE FROM endpoints WHERE id = $1", []any{h.id}})
			}
			p.deleted++
		default:
			p.updateEndpoint(pool, addr, h, w, actor)
		}
	}
}

// reasonFor is the reason stored with a state from a zone file: none for
// the defaults.
func reasonFor(set bool) string {
	if set {
		return fileReason
	}
	return ""
}

func (p *zonePlan) updateEndpoint(pool string, addr netip.Addr, h, w *endpointRow, actor string) {
	what := "endpoint " + pool + " " + addr.String()
	hs, ws := h.settings(), w.settings()
	if p.settingChanges(what+":", hs, ws) {
		reason := h.adminReason
		if h.admin != w.admin {
			// An operator's drain or disable (meridianctl, the agent API)
			// is an operational decision that a routine apply of files,
			// which mostly just say "active", must not undo unnoticed.
			if h.admin != "active" && h.adminReason != fileReason {
				p.refuse("would make %s %s, undoing an operator's %s (%q); use meridianctl enable", what, w.admin, h.admin, h.adminReason)
			}
			reason = fileReason
			p.upd = append(p.upd, stmt{"audit " + what,
				"INSERT INTO admin_audit (actor, zone, pool, address, old_state, new_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
				[]any{actor, p.origin, pool, addr, h.admin, w.admin, fileReason}})
		}
		p.upd = append(p.upd, stmt{"update " + what,
			"UPDATE endpoints SET datacenter = $2, weight = $3, admin_state = $4, admin_reason = $5, health_check = $6::text::jsonb WHERE id = $1",
			[]any{h.id, w.dc, w.weight, w.admin, reason, nullJSON(w.check)}})
	}
	// Health from a file overrides a checker only when it says up or
	// down; unknown there means "no opinion".
	if w.health != "unknown" && w.health != h.health {
		p.change(Update, "%s: health %s -> %s", what, h.health, w.health)
		p.upd = append(p.upd, stmt{"set health of " + what,
			`INSERT INTO endpoint_health (endpoint_id, state, reason) VALUES ($1, $2, $3)
			ON CONFLICT (endpoint_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = now()`,
			[]any{h.id, w.health, fileReason}})
	}
}

// setting is one named value of a row, for diff lines.
type setting struct{ name, value string }

func (d *dcRow) settings() []setting {
	return []setting{
		{"lat", strconv.FormatFloat(d.lat, 'g', -1, 64)},
		{"lon", strconv.FormatFloat(d.lon, 'g', -1, 64)},
		{"country", d.country},
		{"continent", d.continent},
	}
}

func (r *poolRow) settings() []setting {
	return []setting{
		{"ttl", strconv.FormatInt(r.ttl, 10)},
		{"max_answers", strconv.FormatInt(r.maxAnswers, 10)},
		{"geo", r.geo},
		{"sticky", strconv.FormatBool(r.sticky)},
		{"spill", strconv.FormatInt(r.spill, 10)},
		{"unknown_is_up", strconv.FormatBool(r.unknownUp)},
		{"when_all_down", r.allDown},
		{"bias", r.bias},
		{"rules", r.rules},
		{"quorum", r.quorum},
		{"shed_load", shedString(r.shedLoad)},
		{"health_check", r.check},
	}
}

// settings leaves out health, which is not configuration (see
// updateEndpoint).
func (e *endpointRow) settings() []setting {
	return []setting{
		{"datacenter", e.dc},
		{"weight", strconv.FormatInt(e.weight, 10)},
		{"admin", e.admin},
		{"health_check", e.check},
	}
}

// summary describes an endpoint in an added or removed line: its
// datacenter, and what differs from the defaults.
func (e *endpointRow) summary() string {
	s := e.dc
	if e.weight != zones.DefaultWeight {
		s += fmt.Sprintf(", weight %d", e.weight)
	}
	if e.admin != "active" {
		s += ", admin " + e.admin
	}
	if e.health != "unknown" {
		s += ", health " + e.health
	}
	return s
}

// joinSettings renders settings as "name value, ...", leaving out empty
// values, and with named, {} and [] too.
func joinSettings(ss []setting, named bool) string {
	var parts []string
	for _, s := range ss {
		switch {
		case s.value == "" || s.value == "{}" || s.value == "[]":
		case named:
			parts = append(parts, s.name+" "+s.value)
		default:
			parts = append(parts, s.value)
		}
	}
	return strings.Join(parts, ", ")
}

// settingChanges adds a line "what name old -> new" for each setting that
// differs and reports whether any did.
func (p *zonePlan) settingChanges(what string, have, want []setting) bool {
	changed := false
	for i := range have {
		if have[i].value != want[i].value {
			p.change(Update, "%s %s %s -> %s", what, have[i].name, quoteEmpty(have[i].value), quoteEmpty(want[i].value))
			changed = true
		}
	}
	return changed
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// execute sends the statements of every plan in one batch, in order, and
// checks that each touched exactly the rows it should.
func execute(ctx context.Context, tx pgx.Tx, plans []*zonePlan) error {
	b := &pgx.Batch{}
	type queued struct {
		origin string
		stmt
	}
	var order []queued
	for _, p := range plans {
		for _, list := range [][]stmt{p.pre, p.del, p.upd, p.ins} {
			for _, s := range list {
				b.Queue(s.sql, s.args...)
				order = append(order, queued{p.origin, s})
			}
		}
	}
	br := tx.SendBatch(ctx, b)
	for _, q := range order {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return fmt.Errorf("postgres: apply zone %s: %s: %w", q.origin, q.what, err)
		}
		if tag.RowsAffected() != 1 {
			br.Close()
			return fmt.Errorf("postgres: apply zone %s: %s: %d rows affected, want 1", q.origin, q.what, tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: apply: %w", err)
	}
	return nil
}

// unionKeys returns the keys of a and b, sorted by cmp.
func unionKeys[K comparable, V any](a, b map[K]V, cmp func(K, K) int) []K {
	keys := make([]K, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, cmp)
	return keys
}

// compareNames orders domain names canonically (RFC 4034 section 6.1):
// by labels from the root, so that a zone's apex comes first and names
// sort next to their parents.
func compareNames(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(la), len(lb))
}

func compareRecordKeys(a, b recordKey) int {
	return cmp.Or(compareNames(a.name, b.name), cmp.Compare(typeOrder(a.typ), typeOrder(b.typ)),
		strings.Compare(a.typ, b.typ), strings.Compare(a.rdata, b.rdata))
}

// typeOrder puts the SOA first, then types by number.
func typeOrder(typ string) int {
	if typ == "SOA" {
		return -1
	}
	if t, ok := dns.StringToType[typ]; ok {
		return int(t)
	}
	return math.MaxInt
}

// Op is the kind of a change: added, removed or updated.
type Op byte

// Ops, as shown at the start of a diff line.
const (
	Add    Op = '+'
	Remove Op = '-'
	Update Op = '~'
)

// Change is one line of a diff.
type Change struct {
	Op   Op
	Text string // "www.example.com. 300 IN A 192.0.2.1", "pool www.example.com.: max_answers 4 -> 2"
}

// ZoneDiff is the change of one zone: added, removed (with everything in
// it) or updated.
type ZoneDiff struct {
	Origin  string
	Op      Op
	Changes []Change
}

// Diff is what Apply changed or, on a dry run or refusal, would change.
type Diff struct {
	Zones []ZoneDiff // by origin
	// Version is the data version after Apply: the new one when it
	// committed, else the current one.
	Version int64
	// Applied reports that the change was committed.
	Applied bool
}

// Empty reports whether there is nothing to change.
func (d *Diff) Empty() bool { return len(d.Zones) == 0 }

// Counts returns the number of added, removed and changed items; a whole
// zone added or removed counts as one item besides its contents.
func (d *Diff) Counts() (added, removed, changed int) {
	count := func(op Op) {
		switch op {
		case Add:
			added++
		case Remove:
			removed++
		case Update:
			changed++
		}
	}
	for _, z := range d.Zones {
		if z.Op != Update {
			count(z.Op)
		}
		for _, c := range z.Changes {
			count(c.Op)
		}
	}
	return added, removed, changed
}

// String renders the diff one change per line, each zone headed by
// "+ zone", "- zone" or "~ zone", and ends with the counts.
func (d *Diff) String() string {
	if d.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	for _, z := range d.Zones {
		fmt.Fprintf(&b, "%c zone %s\n", z.Op, z.Origin)
		for _, c := range z.Changes {
			fmt.Fprintf(&b, "%c %s\n", c.Op, c.Text)
		}
	}
	a, r, c := d.Counts()
	fmt.Fprintf(&b, "%d added, %d removed, %d changed\n", a, r, c)
	return b.String()
}

// shedString shows a shed_load setting; "" (left out of lists) when off.
func shedString(v float32) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(v), 'g', -1, 32)
}

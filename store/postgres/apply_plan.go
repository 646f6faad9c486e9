package postgres

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// stmt is one statement of a plan; what names it in errors.
type stmt struct {
	what string
	sql  string
	args []any
}

// stmts is a list of statements, run in order.
type stmts []stmt

// add appends the statement sql with its arguments; what names it in
// errors.
func (s *stmts) add(what, sql string, args ...any) {
	*s = append(*s, stmt{what, sql, args})
}

// zonePlan is the diff of one zone and the statements that make it.
type zonePlan struct {
	origin  string
	op      Op // Add or Remove for a whole zone, else Update
	changes []Change
	// Statements run in this order: the zone's insertion, deletions so
	// that nothing collides with what replaces it, updates, insertions.
	pre, del, upd, ins stmts
	// total and deleted count static records plus endpoints, for the
	// guard on the share deleted.
	total, deleted int
	refusals       []string
}

// empty reports whether the zone stays as it is.
func (p *zonePlan) empty() bool { return p.op == Update && len(p.changes) == 0 }

// zoneDiff is the plan as Apply reports it.
func (p *zonePlan) zoneDiff() ZoneDiff {
	return ZoneDiff{Origin: p.origin, Op: p.op, Changes: p.changes}
}

// change adds a line to the diff.
func (p *zonePlan) change(op Op, format string, args ...any) {
	p.changes = append(p.changes, Change{Op: op, Text: fmt.Sprintf(format, args...)})
}

// refuse records why a guard rail refuses the plan, naming the zone.
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

// planZone plans the change of one zone from have to want, either of
// which is nil when the zone is added or removed, and applies the guard
// rails: the share deleted, whole zones and pools deleted, and pools left
// without an active endpoint.
func planZone(origin string, have, want *zoneRows, opts ApplyOptions) *zonePlan {
	p := &zonePlan{origin: origin, op: Update}
	empty := &zoneRows{origin: origin}
	switch {
	case have == nil:
		p.op, have = Add, empty
		p.pre.add("insert zone", "INSERT INTO zones (origin) VALUES ($1)", origin)
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
		p.del = stmts{{"delete zone", "DELETE FROM zones WHERE id = $1", []any{have.id}}}
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

// diffRecords plans the static records, keyed by name, type and rdata,
// so that a record whose TTL alone changes is updated in place.
func (p *zonePlan) diffRecords(have, want map[recordKey]*recordRow) {
	lastTTL := ""
	for _, k := range unionKeys(have, want, compareRecordKeys) {
		h, w := have[k], want[k]
		switch {
		case h == nil:
			p.change(Add, "%s %d IN %s %s", k.name, w.ttl, k.typ, k.rdata)
			p.ins.add("insert record "+k.name+" "+k.typ,
				"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, $2, $3, $4, $5 FROM zones WHERE origin = $1",
				p.origin, k.name, k.typ, w.ttl, k.rdata)
		case w == nil:
			p.change(Remove, "%s %d IN %s %s", k.name, h.ttl, k.typ, k.rdata)
			p.del.add("delete record "+k.name+" "+k.typ, "DELETE FROM records WHERE id = $1", h.id)
			p.deleted++
		case h.ttl != w.ttl:
			// One line per RRset: its records share a TTL (RFC 2181
			// section 5.2) and sort together.
			if text := fmt.Sprintf("%s %s ttl %d -> %d", k.name, k.typ, h.ttl, w.ttl); text != lastTTL {
				p.change(Update, "%s", text)
				lastTTL = text
			}
			p.upd.add("update record "+k.name+" "+k.typ, "UPDATE records SET ttl = $2 WHERE id = $1", h.id, w.ttl)
		}
	}
}

// diffDatacenters plans the datacenters, by name.
func (p *zonePlan) diffDatacenters(have, want map[string]*dcRow) {
	for _, name := range unionKeys(have, want, strings.Compare) {
		h, w := have[name], want[name]
		switch {
		case h == nil:
			p.change(Add, "datacenter %s (%s)", name, joinSettings(w.settings(), false))
			p.ins.add("insert datacenter "+name,
				"INSERT INTO datacenters (zone_id, name, lat, lon, country, continent) SELECT id, $2, $3, $4, $5, $6 FROM zones WHERE origin = $1",
				p.origin, name, w.lat, w.lon, w.country, w.continent)
		case w == nil:
			p.change(Remove, "datacenter %s", name)
			p.del.add("delete datacenter "+name, "DELETE FROM datacenters WHERE id = $1", h.id)
		default:
			if p.settingChanges("datacenter "+name+":", h.settings(), w.settings()) {
				p.upd.add("update datacenter "+name,
					"UPDATE datacenters SET lat = $2, lon = $3, country = $4, continent = $5 WHERE id = $1",
					h.id, w.lat, w.lon, w.country, w.continent)
			}
		}
	}
}

// diffPools plans the pools, by name, and their endpoints; actor is
// written to the audit log of the admin states that change.
func (p *zonePlan) diffPools(have, want map[string]*poolRow, actor string) {
	for _, name := range unionKeys(have, want, compareNames) {
		h, w := have[name], want[name]
		switch {
		case h == nil:
			p.change(Add, "pool %s (%s)", name, joinSettings(w.settings(), true))
			p.ins.add("insert pool "+name,
				`INSERT INTO pools (zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules, quorum, health_check, shed_load)
				SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11::text::jsonb, $12, $13::text::jsonb, $14 FROM zones WHERE origin = $1`,
				p.origin, name, w.ttl, w.maxAnswers, w.geo, w.sticky, w.spill, w.unknownUp, w.allDown, w.bias, w.rules, w.quorum, nullJSON(w.check), w.shedLoad)
			p.diffEndpoints(name, nil, w.endpoints, actor)
		case w == nil:
			p.change(Remove, "pool %s", name)
			p.del.add("delete pool "+name, "DELETE FROM pools WHERE id = $1", h.id)
			p.diffEndpoints(name, h.endpoints, nil, actor)
			p.refuse("deletes pool %s (%d endpoints)", name, len(h.endpoints))
		default:
			if p.settingChanges("pool "+name+":", h.settings(), w.settings()) {
				p.upd.add("update pool "+name,
					`UPDATE pools SET ttl = $2, max_answers = $3, geo = $4, sticky = $5, spill = $6, unknown_is_up = $7,
					when_all_down = $8, bias = $9::text::jsonb, rules = $10::text::jsonb, quorum = $11, health_check = $12::text::jsonb, shed_load = $13 WHERE id = $1`,
					h.id, w.ttl, w.maxAnswers, w.geo, w.sticky, w.spill, w.unknownUp, w.allDown, w.bias, w.rules, w.quorum, nullJSON(w.check), w.shedLoad)
			}
			p.diffEndpoints(name, h.endpoints, w.endpoints, actor)
			if before, after := countActive(h.endpoints), countActive(w.endpoints); before > 0 && after == 0 {
				p.refuse("leaves pool %s without an active endpoint (it has %d)", name, before)
			}
		}
	}
}

// countActive counts the endpoints whose admin state is active.
func countActive(eps map[netip.Addr]*endpointRow) int {
	n := 0
	for _, e := range eps {
		if e.admin == "active" {
			n++
		}
	}
	return n
}

// diffEndpoints plans the endpoints of pool, by address. A nil want
// means the pool goes: its endpoints are counted and listed but left to
// the cascade.
func (p *zonePlan) diffEndpoints(pool string, have, want map[netip.Addr]*endpointRow, actor string) {
	for _, addr := range unionKeys(have, want, netip.Addr.Compare) {
		h, w := have[addr], want[addr]
		what := "endpoint " + pool + " " + addr.String()
		switch {
		case h == nil:
			p.change(Add, "%s (%s)", what, w.summary())
			// The health row comes with the endpoint, in one statement.
			p.ins.add("insert "+what,
				`WITH e AS (
					INSERT INTO endpoints (pool_id, address, datacenter, weight, admin_state, admin_reason, health_check)
					SELECT p.id, $3, $4, $5, $6, $7, $10::text::jsonb FROM pools p JOIN zones z ON z.id = p.zone_id WHERE z.origin = $1 AND p.name = $2
					RETURNING id)
				INSERT INTO endpoint_health (endpoint_id, state, reason) SELECT id, $8, $9 FROM e`,
				p.origin, pool, addr, w.dc, w.weight, w.admin, reasonFor(w.admin != "active"), w.health, reasonFor(w.health != "unknown"), nullJSON(w.check))
		case w == nil:
			p.change(Remove, "%s (%s)", what, h.summary())
			if want != nil { // else the pool goes, and its endpoints with it
				p.del.add("delete "+what, "DELETE FROM endpoints WHERE id = $1", h.id)
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

// updateEndpoint plans the change of an endpoint kept by an apply: its
// settings, its admin state with an audit entry, and its health when the
// file says up or down. Undoing an operator's drain or disable is refused.
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
			p.upd.add("audit "+what,
				"INSERT INTO admin_audit (actor, zone, pool, address, old_state, new_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
				actor, p.origin, pool, addr, h.admin, w.admin, fileReason)
		}
		p.upd.add("update "+what,
			"UPDATE endpoints SET datacenter = $2, weight = $3, admin_state = $4, admin_reason = $5, health_check = $6::text::jsonb WHERE id = $1",
			h.id, w.dc, w.weight, w.admin, reason, nullJSON(w.check))
	}
	// Health from a file overrides a checker only when it says up or
	// down; unknown there means "no opinion".
	if w.health != "unknown" && w.health != h.health {
		p.change(Update, "%s: health %s -> %s", what, h.health, w.health)
		p.upd.add("set health of "+what,
			`INSERT INTO endpoint_health (endpoint_id, state, reason) VALUES ($1, $2, $3)
			ON CONFLICT (endpoint_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = now()`,
			h.id, w.health, fileReason)
	}
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

// quoteEmpty shows an empty value as "" in a diff line, where nothing
// would read as a value missing.
func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
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

// compareRecordKeys orders records by name, then type (the SOA first),
// then rdata.
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

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/zones"
)

// Reads for status pages and metrics: everything an operator wants to see
// of health at once, in one consistent snapshot, so that a page never
// shows a verdict without the state it produced.

// CheckerInfo is a checker registered in the store.
type CheckerInfo struct {
	ID       string
	Region   string
	Started  time.Time
	LastSeen time.Time
	TTL      time.Duration
	// Live reports whether its verdicts count: it heartbeated within its
	// ttl and no sweep has found it dead since.
	Live bool
}

// ListCheckers lists the registered checkers, by id.
func ListCheckers(ctx context.Context, q Querier) ([]CheckerInfo, error) {
	rows, err := q.Query(ctx, `SELECT id, region, started_at, last_seen, extract(epoch FROM ttl)::float8,
			dead_since IS NULL AND last_seen + ttl >= now()
		FROM checkers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list checkers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CheckerInfo, error) {
		var c CheckerInfo
		var ttl float64
		err := r.Scan(&c.ID, &c.Region, &c.Started, &c.LastSeen, &ttl, &c.Live)
		c.TTL = time.Duration(ttl * float64(time.Second))
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list checkers: %w", err)
	}
	return out, nil
}

// Overview is the health of every pool, read in one snapshot.
type Overview struct {
	At          time.Time // the database's clock when it was read
	Datacenters []OverviewDatacenter
	Pools       []OverviewPool
	Checkers    []CheckerInfo
}

// OverviewDatacenter is a datacenter of a zone.
type OverviewDatacenter struct {
	Zone      string
	Name      string
	Lat, Lon  float64
	Country   string
	Continent string
}

// OverviewPool is a pool with its endpoints, by address.
type OverviewPool struct {
	Zone        string
	Name        string
	Quorum      string
	UnknownIsUp bool
	ShedLoad    float64
	CheckType   string // the health check's type; "" when not probed
	Endpoints   []OverviewEndpoint
}

// OverviewEndpoint is an endpoint with everything that decides its state.
type OverviewEndpoint struct {
	Addr        netip.Addr
	Datacenter  string
	Weight      uint32
	Admin       zones.AdminState
	AdminReason string
	// Health and HealthReason are the effective health as the DNS servers
	// read it: a fresh agent report's, else the checkers' quorum.
	Health        zones.HealthState
	HealthReason  string
	HealthUpdated time.Time // zero when nothing has set it
	UpSince       time.Time // zero unless up
	// Agent is the agent's last report, nil when there is none; it
	// decides only while Agent.Fresh.
	Agent *AgentReport
	// Verdicts are those of the live checkers, by checker id, as
	// EndpointHealth returns them.
	Verdicts []Verdict
	// Events are the latest changes, newest first.
	Events []HealthEvent
}

// AgentReport is a stored agent report.
type AgentReport struct {
	Status        string // AgentUp, AgentDown or AgentDrain
	Load          *float64
	Connections   *int
	Capacity      *int
	WeightPercent *int
	Message       string
	Reported      time.Time
	Expires       time.Time
	Fresh         bool // not expired when read
}

// Kinds of HealthEvent.
const (
	EventHealth  = "health"  // the effective health changed (quorum or agent)
	EventVerdict = "verdict" // a checker's own verdict changed
	EventAdmin   = "admin"   // an operator changed the admin state
)

// HealthEvent is a change of an endpoint's state.
type HealthEvent struct {
	At       time.Time
	Kind     string // EventHealth, EventVerdict or EventAdmin
	Old, New string
	Reason   string
	By       string // the checker (EventVerdict) or the actor (EventAdmin)
}

// ReadOverview reads the health of every pool in one read-only snapshot,
// with the last events of each endpoint (at most events, newest first).
func ReadOverview(ctx context.Context, db DB, events int) (*Overview, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: read overview: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	ov := &Overview{}
	if err := tx.QueryRow(ctx, "SELECT now()").Scan(&ov.At); err != nil {
		return nil, fmt.Errorf("postgres: read overview: %w", err)
	}
	steps := []struct {
		what string
		read func() error
	}{
		{"datacenters", func() error { return overviewDatacenters(ctx, tx, ov) }},
		{"pools", func() error { return overviewPools(ctx, tx, ov, events) }},
		{"checkers", func() (err error) { ov.Checkers, err = ListCheckers(ctx, tx); return err }},
	}
	for _, s := range steps {
		if err := s.read(); err != nil {
			return nil, fmt.Errorf("postgres: read overview: %s: %w", s.what, err)
		}
	}
	return ov, nil
}

func overviewDatacenters(ctx context.Context, tx pgx.Tx, ov *Overview) error {
	rows, err := tx.Query(ctx, `SELECT z.origin, d.name, d.lat, d.lon, d.country, d.continent
		FROM datacenters d JOIN zones z ON z.id = d.zone_id ORDER BY z.origin, d.name`)
	if err != nil {
		return err
	}
	ov.Datacenters, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OverviewDatacenter, error) {
		var d OverviewDatacenter
		return d, r.Scan(&d.Zone, &d.Name, &d.Lat, &d.Lon, &d.Country, &d.Continent)
	})
	return err
}

// overviewPools reads the pools, their endpoints, the live verdicts and the
// events, and fills ov.Pools.
func overviewPools(ctx context.Context, tx pgx.Tx, ov *Overview, events int) error {
	rows, err := tx.Query(ctx, `SELECT p.id, z.origin, p.name, p.quorum, p.unknown_is_up, p.shed_load, coalesce(p.health_check->>'type', '')
		FROM pools p JOIN zones z ON z.id = p.zone_id ORDER BY z.origin, p.name`)
	if err != nil {
		return err
	}
	var poolIDs []int64
	var p OverviewPool
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &p.Zone, &p.Name, &p.Quorum, &p.UnknownIsUp, &p.ShedLoad, &p.CheckType}, func() error {
		poolIDs = append(poolIDs, id)
		ov.Pools = append(ov.Pools, p)
		return nil
	}); err != nil {
		return err
	}
	poolIndex := make(map[int64]int, len(poolIDs))
	for i, id := range poolIDs {
		poolIndex[id] = i
	}

	// Endpoints, with their health and agent report.
	rows, err = tx.Query(ctx, `SELECT e.id, e.pool_id, e.address, e.datacenter, e.weight, e.admin_state, e.admin_reason,
			coalesce(h.state, 'unknown'), coalesce(h.reason, ''), h.updated_at, h.up_since,
			a.status, a.load, a.connections, a.capacity, a.weight_percent, coalesce(a.message, ''), a.reported_at, a.expires_at,
			coalesce(a.expires_at > now(), false)
		FROM endpoints e
		LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		LEFT JOIN agent_reports a ON a.endpoint_id = e.id
		ORDER BY e.pool_id, e.address`)
	if err != nil {
		return err
	}
	type ref struct{ pool, ep int }
	byID := map[int64]ref{}
	var (
		epID, poolID        int64
		weight              int64
		admin, health       string
		updated, upSince    *time.Time
		aStatus             *string
		aLoad               *float32
		aConn, aCap, aPct   *int32
		aMsg                string
		aReported, aExpires *time.Time
		aFresh              bool
		e                   OverviewEndpoint
	)
	if _, err := pgx.ForEachRow(rows, []any{&epID, &poolID, &e.Addr, &e.Datacenter, &weight, &admin, &e.AdminReason,
		&health, &e.HealthReason, &updated, &upSince,
		&aStatus, &aLoad, &aConn, &aCap, &aPct, &aMsg, &aReported, &aExpires, &aFresh}, func() error {
		x := e
		x.Weight = uint32(weight)
		var err error
		if x.Admin, err = zones.ParseAdminState(admin); err != nil {
			return fmt.Errorf("endpoint %s: %w", x.Addr, err)
		}
		if x.Health, err = zones.ParseHealthState(health); err != nil {
			return fmt.Errorf("endpoint %s: %w", x.Addr, err)
		}
		x.HealthUpdated, x.UpSince = overviewTime(updated), overviewTime(upSince)
		if aStatus != nil {
			x.Agent = &AgentReport{Status: *aStatus, Connections: overviewInt(aConn), Capacity: overviewInt(aCap), WeightPercent: overviewInt(aPct),
				Message: aMsg, Reported: overviewTime(aReported), Expires: overviewTime(aExpires), Fresh: aFresh}
			if aLoad != nil {
				l := float64(*aLoad)
				x.Agent.Load = &l
			}
		}
		pi, ok := poolIndex[poolID]
		if !ok {
			return fmt.Errorf("endpoint %s of an unknown pool", x.Addr)
		}
		byID[epID] = ref{pi, len(ov.Pools[pi].Endpoints)}
		ov.Pools[pi].Endpoints = append(ov.Pools[pi].Endpoints, x)
		return nil
	}); err != nil {
		return err
	}
	at := func(id int64) *OverviewEndpoint {
		r, ok := byID[id]
		if !ok {
			return nil
		}
		return &ov.Pools[r.pool].Endpoints[r.ep]
	}

	// The verdicts of the live checkers, as EndpointHealth selects them.
	rows, err = tx.Query(ctx, `SELECT v.endpoint_id, c.id, c.region, v.state = 'up', v.reason, v.changed_at, c.last_seen, v.stale
		FROM probe_verdicts v JOIN checkers c ON c.id = v.checker_id
		WHERE c.dead_since IS NULL AND c.last_seen + c.ttl >= now()
		ORDER BY v.endpoint_id, c.id`)
	if err != nil {
		return err
	}
	var v Verdict
	if _, err := pgx.ForEachRow(rows, []any{&epID, &v.Checker, &v.Region, &v.Up, &v.Reason, &v.Changed, &v.LastSeen, &v.Stale}, func() error {
		if x := at(epID); x != nil {
			x.Verdicts = append(x.Verdicts, v)
		}
		return nil
	}); err != nil {
		return err
	}
	if events <= 0 {
		return nil
	}

	// The last events of each endpoint: its health transitions (through
	// the index on (endpoint_id, at)) and the admin audit log, which names
	// endpoints by zone, pool and address.
	rows, err = tx.Query(ctx, `SELECT e.id, t.at, t.kind, t.old_state, t.new_state, t.reason, t.by FROM endpoints e
		CROSS JOIN LATERAL (
			SELECT t.at, CASE WHEN t.checker_id = $2::text THEN $3::text ELSE $4::text END AS kind, t.old_state, t.new_state, t.reason,
				CASE WHEN t.checker_id = $2::text THEN '' ELSE t.checker_id END AS by
			FROM health_transitions t WHERE t.endpoint_id = e.id ORDER BY t.at DESC, t.id DESC LIMIT $1::bigint) t
		UNION ALL
		SELECT e.id, a.at, $5::text, a.old_state, a.new_state, a.reason, a.actor
		FROM (SELECT *, row_number() OVER (PARTITION BY zone, pool, address ORDER BY id DESC) AS n FROM admin_audit) a
		JOIN zones z ON z.origin = a.zone JOIN pools p ON p.zone_id = z.id AND p.name = a.pool
		JOIN endpoints e ON e.pool_id = p.id AND e.address = a.address
		WHERE a.n <= $1::bigint`, events, quorumChecker, EventHealth, EventVerdict, EventAdmin)
	if err != nil {
		return err
	}
	var ev HealthEvent
	if _, err := pgx.ForEachRow(rows, []any{&epID, &ev.At, &ev.Kind, &ev.Old, &ev.New, &ev.Reason, &ev.By}, func() error {
		if x := at(epID); x != nil {
			x.Events = append(x.Events, ev)
		}
		return nil
	}); err != nil {
		return err
	}
	for pi := range ov.Pools {
		for ei := range ov.Pools[pi].Endpoints {
			x := &ov.Pools[pi].Endpoints[ei]
			slices.SortStableFunc(x.Events, func(a, b HealthEvent) int { return b.At.Compare(a.At) })
			x.Events = x.Events[:min(len(x.Events), events)]
		}
	}
	return nil
}

func overviewTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func overviewInt(v *int32) *int {
	if v == nil {
		return nil
	}
	i := int(*v)
	return &i
}

// ErrCheckerLive refuses to remove a checker whose verdicts may still
// count.
var ErrCheckerLive = errors.New("the checker is live or not yet found dead: stop it, and wait until a sweep finds it dead (3 heartbeats)")

// RemoveChecker forgets a retired checker and its verdicts. Only a
// checker a sweep has found dead may go: its verdicts stopped counting
// then, so removing them changes no endpoint's health and no zone.
func RemoveChecker(ctx context.Context, db DB, id string) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("postgres: remove checker %q: %w", id, err)
	}
	defer tx.Rollback(context.Background())
	var dead bool
	err = tx.QueryRow(ctx, "SELECT dead_since IS NOT NULL FROM checkers WHERE id = $1 FOR UPDATE", id).Scan(&dead)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: remove checker %q: %w", id, ErrUnknownChecker)
	case err != nil:
		return fmt.Errorf("postgres: remove checker %q: %w", id, err)
	case !dead:
		return fmt.Errorf("postgres: remove checker %q: %w", id, ErrCheckerLive)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM checkers WHERE id = $1", id); err != nil {
		return fmt.Errorf("postgres: remove checker %q: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: remove checker %q: %w", id, err)
	}
	return nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/zones"
)

// Health from several checkers sharing the database.
//
// Checkers register (RegisterChecker), heartbeat (Heartbeat) and record
// their verdicts on endpoints only when their own, hysteresis-smoothed
// state changes (RecordVerdict). The effective health of an endpoint is
// the quorum of the verdicts of the live checkers under its pool's policy
// (quorumSQL), materialised into endpoint_health, which the DNS servers
// read, and written only when it changes: every write of endpoint_health
// bumps the data version and makes every server reload the zone.
//
// Liveness: a checker is live while last_seen + ttl >= now(). The quorum
// counts the checkers that no sweep has found dead (dead_since IS NULL),
// and every transaction that computes a quorum sweeps first, marking the
// expired checkers dead and recomputing the endpoints they had verdicts
// for. Counting by the sweep's mark rather than by the clock alone keeps
// endpoint_health exact when a heartbeat races a verdict: a checker whose
// heartbeat is in flight holds its row, which the sweep skips, so it is
// neither counted out nor left out of the recomputation it would need.
// A heartbeat or registration of a swept checker recomputes its endpoints
// with it counted again; its verdicts are never deleted.
//
// Locks, to stay free of deadlocks: a transaction that may write
// endpoint_health takes the meridian_version row first, as Apply and
// SetAdmin do. A checker's own checkers row may be locked before that (a
// heartbeat), so whoever holds the version row never waits for a checkers
// row: the sweep skips locked rows, and verdicts only take the key share
// lock of their foreign key, which a heartbeat's update does not block.

// ErrUnknownChecker: no checker has registered under the id given.
var ErrUnknownChecker = errors.New("unknown checker")

// quorumChecker is the checker_id of health_transitions rows that record
// a change of the effective state.
const quorumChecker = "quorum"

// quorumSQL computes the effective state of the endpoints with ids $1
// from the verdicts of the live (not swept) checkers, by the pool's
// policy: any (up when any says up), majority (up when more than half of
// those with a verdict say up) or all (up when none says down); unknown
// when no live checker has a verdict. It returns the stored state too,
// and the reason of the latest verdict each way.
const quorumSQL = `
SELECT id, quorum, old_state, old_reason, up, down, up_reason, down_reason, agent_status, agent_message,
	CASE
		WHEN up + down = 0 THEN 'unknown'
		WHEN quorum = 'any' THEN CASE WHEN up > 0 THEN 'up' ELSE 'down' END
		WHEN quorum = 'all' THEN CASE WHEN down = 0 THEN 'up' ELSE 'down' END
		ELSE CASE WHEN 2 * up > up + down THEN 'up' ELSE 'down' END
	END
FROM (
	SELECT e.id, p.quorum, coalesce(h.state, 'unknown') AS old_state, coalesce(h.reason, '') AS old_reason,
		a.status AS agent_status, coalesce(a.message, '') AS agent_message, -- agent API: a fresh report (004_agents.sql)
		count(v.checker_id) FILTER (WHERE v.state = 'up') AS up,
		count(v.checker_id) FILTER (WHERE v.state = 'down') AS down,
		coalesce((array_agg(v.reason ORDER BY v.changed_at DESC, v.checker_id) FILTER (WHERE v.state = 'up'))[1], '') AS up_reason,
		coalesce((array_agg(v.reason ORDER BY v.changed_at DESC, v.checker_id) FILTER (WHERE v.state = 'down'))[1], '') AS down_reason
	FROM endpoints e
	JOIN pools p ON p.id = e.pool_id
	LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
	LEFT JOIN agent_reports a ON a.endpoint_id = e.id AND a.expires_at > now()
	-- The verdicts of the live checkers that count: the current ones, or,
	-- where there is none, the stale ones (008_stale_verdicts.sql).
	LEFT JOIN LATERAL (
		SELECT checker_id, state, reason, changed_at FROM (
			SELECT v.checker_id, v.state, v.reason, v.changed_at, rank() OVER (ORDER BY v.stale) AS r
			FROM probe_verdicts v JOIN checkers c ON c.id = v.checker_id AND c.dead_since IS NULL
			WHERE v.endpoint_id = e.id) ranked
		WHERE r = 1
	) v ON true
	WHERE e.id = ANY($1)
	GROUP BY e.id, p.quorum, h.state, h.reason, a.status, a.message
) t
ORDER BY id`

// quorumResult is a row of quorumSQL.
type quorumResult struct {
	id                   int64
	quorum, old, state   string
	up, down             int64
	upReason, downReason string
	// Agent API (agent.go): the stored reason, and the fresh agent
	// report, if any, which wins over the quorum (see effective).
	oldReason    string
	agentStatus  *string
	agentMessage string
}

// effective applies a fresh agent report over the quorum: up is up, down
// and drain are down. (agent API)
func (r *quorumResult) effective() {
	if r.agentStatus == nil {
		return
	}
	r.state = "down"
	if *r.agentStatus == "up" {
		r.state = "up"
	}
}

// reason is the reason stored in endpoint_health, e.g.
// "majority: 2 of 3 checkers say down: connection refused", or
// "agent: drain: <message>" when a fresh agent report decides.
func (r *quorumResult) reason() string {
	if r.agentStatus != nil { // agent API
		s := "agent: " + *r.agentStatus
		if r.agentMessage != "" {
			s += ": " + r.agentMessage
		}
		return s
	}
	var n int64
	var why string
	switch r.state {
	case "up":
		n, why = r.up, r.upReason
	case "down":
		n, why = r.down, r.downReason
	default:
		return r.quorum + ": no live checker has a verdict"
	}
	s := fmt.Sprintf("%s: %d of %d checkers say %s", r.quorum, n, r.up+r.down, r.state)
	if why != "" {
		s += ": " + why
	}
	return s
}

// reasonKind is the category of a stored reason: "agent" for an agent
// report's, "" for anything else (a quorum's, a zone file's). (agent API)
func reasonKind(reason string) string {
	if strings.HasPrefix(reason, "agent:") {
		return "agent"
	}
	return ""
}

// recomputeHealth computes the quorum of the endpoints ids, overridden by
// fresh agent reports, and, where the effective state or the category of
// its reason (agent or not) changed, writes endpoint_health and a quorum
// transition. The caller holds the version row.
func recomputeHealth(ctx context.Context, tx pgx.Tx, ids []int64) ([]quorumResult, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, quorumSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: compute health quorum: %w", err)
	}
	var out []quorumResult
	var r quorumResult
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.quorum, &r.old, &r.oldReason, &r.up, &r.down, &r.upReason, &r.downReason,
		&r.agentStatus, &r.agentMessage, &r.state}, func() error {
		r.effective()
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: compute health quorum: %w", err)
	}
	b := &pgx.Batch{}
	for _, r := range out {
		reason := r.reason()
		if r.state == r.old && reasonKind(reason) == reasonKind(r.oldReason) {
			continue
		}
		b.Queue(`INSERT INTO endpoint_health (endpoint_id, state, reason) VALUES ($1, $2, $3)
			ON CONFLICT (endpoint_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = now()`,
			r.id, r.state, reason)
		b.Queue(`INSERT INTO health_transitions (endpoint_id, old_state, new_state, reason, checker_id) VALUES ($1, $2, $3, $4, $5)`,
			r.id, r.old, r.state, reason, quorumChecker)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("postgres: write endpoint health: %w", err)
		}
	}
	return out, nil
}

// lockVersion takes the version row, first, as every writer of
// endpoint_health does.
func lockVersion(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SELECT 1 FROM meridian_version FOR UPDATE"); err != nil {
		return fmt.Errorf("postgres: lock version: %w", err)
	}
	return nil
}

func checkCheckerArgs(id string, ttl time.Duration) error {
	switch {
	case strings.TrimSpace(id) == "":
		return errors.New("postgres: checker: no id")
	case id == quorumChecker:
		return fmt.Errorf("postgres: checker: the id %q is reserved", id)
	case ttl <= 0:
		return fmt.Errorf("postgres: checker %s: ttl %s, want more than 0", id, ttl)
	}
	return nil
}

// touchChecker locks the row of checker id and reports whether the
// checker exists and whether a sweep found it dead.
func touchChecker(ctx context.Context, tx pgx.Tx, id string) (exists, dead bool, err error) {
	err = tx.QueryRow(ctx, "SELECT dead_since IS NOT NULL FROM checkers WHERE id = $1 FOR NO KEY UPDATE", id).Scan(&dead)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("postgres: checker %s: %w", id, err)
	}
	return true, dead, nil
}

// sweepAndRecompute marks the checkers other than self that have expired
// since the last sweep dead and recomputes the endpoints they had
// verdicts for, with those of self when revived (it was dead and is live
// again) and the endpoints extra. The caller holds the version row.
func sweepAndRecompute(ctx context.Context, tx pgx.Tx, self string, revived bool, extra ...int64) ([]quorumResult, error) {
	// A row locked by another transaction is being heartbeated (so it is
	// live) or swept by another checker: skip it, never wait.
	rows, err := tx.Query(ctx, `UPDATE checkers SET dead_since = now() WHERE id IN (
			SELECT id FROM checkers WHERE id <> $1 AND dead_since IS NULL AND last_seen + ttl < now()
			FOR NO KEY UPDATE SKIP LOCKED)
		RETURNING id`, self)
	if err != nil {
		return nil, fmt.Errorf("postgres: sweep dead checkers: %w", err)
	}
	swept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: sweep dead checkers: %w", err)
	}
	if revived {
		swept = append(swept, self)
	}
	rows, err = tx.Query(ctx, `SELECT endpoint_id FROM probe_verdicts WHERE checker_id = ANY($1)
		UNION SELECT unnest($2::bigint[]) ORDER BY 1`, swept, extra)
	if err != nil {
		return nil, fmt.Errorf("postgres: endpoints of checkers %s: %w", strings.Join(swept, ", "), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: endpoints of checkers %s: %w", strings.Join(swept, ", "), err)
	}
	return recomputeHealth(ctx, tx, ids)
}

// RegisterChecker registers checker id of region, live for ttl from now
// unless it heartbeats, or re-registers it after a restart: its verdicts
// are kept. If it had been found dead, they are stale until it records
// new ones: they count only for endpoints no live checker has a current
// verdict on, so that what changed while it was away is not undone.
func RegisterChecker(ctx context.Context, db DB, id, region string, ttl time.Duration) error {
	if err := checkCheckerArgs(id, ttl); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("postgres: register checker %s: begin: %w", id, err)
	}
	defer tx.Rollback(context.Background())
	_, dead, err := touchChecker(ctx, tx, id)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO checkers (id, region, started_at, last_seen, ttl) VALUES ($1, $2, now(), now(), $3 * interval '1 microsecond')
		ON CONFLICT (id) DO UPDATE SET region = excluded.region, started_at = excluded.started_at, last_seen = excluded.last_seen,
			ttl = excluded.ttl, dead_since = NULL`, id, region, ttl.Microseconds()); err != nil {
		return fmt.Errorf("postgres: register checker %s: %w", id, err)
	}
	if dead {
		if err := lockVersion(ctx, tx); err != nil {
			return fmt.Errorf("postgres: register checker %s: %w", id, err)
		}
		// It starts judging anew: what it said before it was found dead
		// may no longer hold, so it counts only where nothing newer does
		// (008_stale_verdicts.sql), until it records a new verdict.
		if _, err := tx.Exec(ctx, "UPDATE probe_verdicts SET stale = true WHERE checker_id = $1", id); err != nil {
			return fmt.Errorf("postgres: register checker %s: %w", id, err)
		}
		if _, err := sweepAndRecompute(ctx, tx, id, true); err != nil {
			return fmt.Errorf("postgres: register checker %s: %w", id, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: register checker %s: commit: %w", id, err)
	}
	return nil
}

// Heartbeat keeps checker id live for ttl from now and sweeps: the
// checkers found dead since the last sweep (last_seen + ttl < now()) stop
// counting and the endpoints they had verdicts for are recomputed; their
// verdicts are kept, not deleted. If id itself had been found dead, its
// verdicts count again. Heartbeat returns the ids of the dead checkers
// other than id, sorted. A heartbeat with nothing to recompute does not
// take the version row, nor write anything but its checker's row.
func Heartbeat(ctx context.Context, db DB, id string, ttl time.Duration) (expired []string, err error) {
	if err := checkCheckerArgs(id, ttl); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: begin: %w", id, err)
	}
	defer tx.Rollback(context.Background())
	exists, dead, err := touchChecker(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: %w: register it first", id, ErrUnknownChecker)
	}
	if _, err := tx.Exec(ctx, "UPDATE checkers SET last_seen = now(), ttl = $2 * interval '1 microsecond', dead_since = NULL WHERE id = $1",
		id, ttl.Microseconds()); err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: %w", id, err)
	}
	var sweep bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM checkers WHERE id <> $1 AND dead_since IS NULL AND last_seen + ttl < now())", id).Scan(&sweep); err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: find dead checkers: %w", id, err)
	}
	if sweep || dead {
		if err := lockVersion(ctx, tx); err != nil {
			return nil, fmt.Errorf("postgres: heartbeat of checker %s: %w", id, err)
		}
		if _, err := sweepAndRecompute(ctx, tx, id, dead); err != nil {
			return nil, fmt.Errorf("postgres: heartbeat of checker %s: %w", id, err)
		}
	}
	rows, err := tx.Query(ctx, "SELECT id FROM checkers WHERE id <> $1 AND last_seen + ttl < now() ORDER BY id", id)
	if err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: list dead checkers: %w", id, err)
	}
	if expired, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: list dead checkers: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: heartbeat of checker %s: commit: %w", id, err)
	}
	if len(expired) == 0 {
		expired = nil
	}
	return expired, nil
}

// RecordVerdict records that checker checkerID now finds the endpoint addr
// of pool up or down, and why; checkers call it when their own smoothed
// state changes, not for every probe. In one transaction it stores the
// verdict, logs the checker's transition (if its verdict changed), sweeps
// (see Heartbeat), recomputes the endpoint's quorum and, only if the
// effective state changed, writes endpoint_health and logs that
// transition too. It returns the effective state and whether it changed.
// The verdict of a checker that has stopped heartbeating is stored but
// counts only once it heartbeats again.
func RecordVerdict(ctx context.Context, db DB, checkerID, pool string, addr netip.Addr, up bool, reason string) (effective zones.HealthState, changed bool, err error) {
	if strings.TrimSpace(checkerID) == "" {
		return 0, false, errors.New("postgres: record verdict: no checker id")
	}
	if !addr.IsValid() {
		return 0, false, errors.New("postgres: record verdict: no endpoint address")
	}
	pool = zones.CanonicalName(pool)
	state := "down"
	if up {
		state = "up"
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, false, fmt.Errorf("postgres: record verdict: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if err := lockVersion(ctx, tx); err != nil {
		return 0, false, fmt.Errorf("postgres: record verdict: %w", err)
	}
	id, _, _, _, err := findEndpoint(ctx, tx, pool, addr)
	if err != nil {
		return 0, false, err
	}
	var known bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM checkers WHERE id = $1)", checkerID).Scan(&known); err != nil {
		return 0, false, fmt.Errorf("postgres: record verdict of checker %s: %w", checkerID, err)
	}
	if !known {
		return 0, false, fmt.Errorf("postgres: record verdict of checker %s: %w: register it first", checkerID, ErrUnknownChecker)
	}
	what := fmt.Sprintf("postgres: record verdict of checker %s on pool %s endpoint %s", checkerID, pool, addr)
	old := "unknown"
	err = tx.QueryRow(ctx, "SELECT state FROM probe_verdicts WHERE checker_id = $1 AND endpoint_id = $2", checkerID, id).Scan(&old)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO probe_verdicts (checker_id, endpoint_id, state, reason) VALUES ($1, $2, $3, $4)
		ON CONFLICT (checker_id, endpoint_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, stale = false,
			changed_at = CASE WHEN probe_verdicts.state = excluded.state THEN probe_verdicts.changed_at ELSE excluded.changed_at END`,
		checkerID, id, state, reason); err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if old != state {
		if _, err := tx.Exec(ctx, "INSERT INTO health_transitions (endpoint_id, old_state, new_state, reason, checker_id) VALUES ($1, $2, $3, $4, $5)",
			id, old, state, reason, checkerID); err != nil {
			return 0, false, fmt.Errorf("%s: log transition: %w", what, err)
		}
	}
	// Expired checkers are swept too, the one recording included.
	return recomputeAndCommit(ctx, tx, what, id)
}

// Verdict is a checker's verdict on an endpoint.
type Verdict struct {
	Checker  string
	Region   string
	Up       bool
	Reason   string
	Changed  time.Time // when the checker's verdict last changed
	LastSeen time.Time // the checker's last heartbeat
	// Stale: from before the checker was found dead and came back; it
	// counts only where no current verdict does (RegisterChecker).
	Stale bool
}

// EndpointStatus is the health of an endpoint, for a status page.
type EndpointStatus struct {
	Zone    string
	Pool    string
	Addr    netip.Addr
	Quorum  string            // the pool's policy
	State   zones.HealthState // effective, as the DNS servers see it
	Reason  string
	Updated time.Time // zero when nothing has set the state
	// Verdicts are those of the live checkers, by checker id: those that
	// count, less any that have expired since the last sweep.
	Verdicts []Verdict
}

// EndpointHealth returns the effective health of the endpoint addr of
// pool with the verdicts of the live checkers.
func EndpointHealth(ctx context.Context, q Querier, pool string, addr netip.Addr) (*EndpointStatus, error) {
	pool = zones.CanonicalName(pool)
	rows, err := q.Query(ctx, `SELECT e.id, z.origin, p.quorum, coalesce(h.state, 'unknown'), coalesce(h.reason, ''), h.updated_at
		FROM endpoints e JOIN pools p ON p.id = e.pool_id JOIN zones z ON z.id = p.zone_id
		LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE p.name = $1 AND e.address = $2`, pool, addr)
	if err != nil {
		return nil, fmt.Errorf("postgres: health of pool %s endpoint %s: %w", pool, addr, err)
	}
	var found []EndpointStatus
	var id int64
	st := EndpointStatus{Pool: pool, Addr: addr}
	var state string
	var updated *time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &st.Zone, &st.Quorum, &state, &st.Reason, &updated}, func() error {
		var err error
		if st.State, err = zones.ParseHealthState(state); err != nil {
			return err
		}
		st.Updated = time.Time{}
		if updated != nil {
			st.Updated = *updated
		}
		found = append(found, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: health of pool %s endpoint %s: %w", pool, addr, err)
	}
	switch len(found) {
	case 0:
		if err := poolExists(ctx, q, pool); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("postgres: pool %s has no endpoint %s: %w", pool, addr, ErrUnknownEndpoint)
	case 1:
	default:
		var zs []string
		for _, f := range found {
			zs = append(zs, f.Zone)
		}
		return nil, fmt.Errorf("postgres: pool %s is in several zones (%s); refusing to guess", pool, strings.Join(zs, ", "))
	}
	out := &found[0]
	rows, err = q.Query(ctx, `SELECT c.id, c.region, v.state = 'up', v.reason, v.changed_at, c.last_seen, v.stale
		FROM probe_verdicts v JOIN checkers c ON c.id = v.checker_id
		WHERE v.endpoint_id = $1 AND c.dead_since IS NULL AND c.last_seen + c.ttl >= now()
		ORDER BY c.id`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: verdicts on pool %s endpoint %s: %w", pool, addr, err)
	}
	out.Verdicts, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Verdict, error) {
		var v Verdict
		return v, r.Scan(&v.Checker, &v.Region, &v.Up, &v.Reason, &v.Changed, &v.LastSeen, &v.Stale)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: verdicts on pool %s endpoint %s: %w", pool, addr, err)
	}
	return out, nil
}

// recomputeAndCommit sweeps expired checkers, recomputes endpoint id's
// effective health and commits tx, returning the health and whether it
// changed: the end of every write that can move an endpoint's health.
func recomputeAndCommit(ctx context.Context, tx pgx.Tx, what string, id int64) (zones.HealthState, bool, error) {
	// The empty id, which no checker has, sweeps every expired checker.
	rs, err := sweepAndRecompute(ctx, tx, "", false, id)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	i := slices.IndexFunc(rs, func(r quorumResult) bool { return r.id == id })
	if i < 0 {
		return 0, false, fmt.Errorf("%s: the endpoint vanished", what)
	}
	effective, err := zones.ParseHealthState(rs[i].state)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, fmt.Errorf("%s: commit: %w", what, err)
	}
	return effective, rs[i].state != rs[i].old, nil
}

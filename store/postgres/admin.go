package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// Errors of SetAdmin, ListPools and ListEndpoints, for errors.Is.
var (
	// ErrUnknownZone: no zone has the origin given.
	ErrUnknownZone = errors.New("unknown zone")
	// ErrUnknownPool: no zone has a pool of the name given.
	ErrUnknownPool = errors.New("unknown pool")
	// ErrUnknownEndpoint: the pool has no endpoint with the address given.
	ErrUnknownEndpoint = errors.New("unknown endpoint")
)

// SetAdmin sets the admin state of the endpoint addr of pool and records
// who did it and why in the audit log, in one transaction, returning the
// state it had. Draining or disabling needs a reason. The change bumps the
// data version like any other, so DNS servers follow it at once; setting
// the state an endpoint already has is only logged.
func SetAdmin(ctx context.Context, db DB, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (old zones.AdminState, err error) {
	if err := checkAdminArgs(addr, state, reason, actor); err != nil {
		return 0, err
	}
	pool = zones.CanonicalName(pool)
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("postgres: set admin state: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	// The version row first, as Apply takes it: taking the endpoint row
	// first could deadlock against an Apply that waits for it.
	if _, err := tx.Exec(ctx, "SELECT 1 FROM meridian_version FOR UPDATE"); err != nil {
		return 0, fmt.Errorf("postgres: set admin state: lock version: %w", err)
	}
	id, zone, oldName, oldReason, err := findEndpoint(ctx, tx, pool, addr)
	if err != nil {
		return 0, err
	}
	if old, err = zones.ParseAdminState(oldName); err != nil {
		return 0, fmt.Errorf("postgres: pool %s endpoint %s: %w", pool, addr, err)
	}
	if old != state || oldReason != reason {
		if _, err := tx.Exec(ctx, "UPDATE endpoints SET admin_state = $2, admin_reason = $3 WHERE id = $1", id, state.String(), reason); err != nil {
			return 0, fmt.Errorf("postgres: pool %s endpoint %s: set admin state: %w", pool, addr, err)
		}
	}
	if _, err := tx.Exec(ctx, "INSERT INTO admin_audit (actor, zone, pool, address, old_state, new_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		actor, zone, pool, addr, oldName, state.String(), reason); err != nil {
		return 0, fmt.Errorf("postgres: pool %s endpoint %s: write audit log: %w", pool, addr, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: set admin state: commit: %w", err)
	}
	return old, nil
}

func checkAdminArgs(addr netip.Addr, state zones.AdminState, reason, actor string) error {
	switch {
	case !addr.IsValid():
		return errors.New("postgres: set admin state: no endpoint address")
	case state > zones.AdminDisabled:
		return fmt.Errorf("postgres: set admin state: bad state %d", state)
	case state != zones.AdminActive && strings.TrimSpace(reason) == "":
		return fmt.Errorf("postgres: set admin state %s: give a reason, for the audit log and the operators after you", state)
	case strings.TrimSpace(actor) == "":
		return errors.New("postgres: set admin state: no actor for the audit log")
	}
	return nil
}

// findEndpoint locks the endpoint and returns its id, zone and admin
// state, or an error saying whether the pool or the endpoint is unknown.
func findEndpoint(ctx context.Context, tx pgx.Tx, pool string, addr netip.Addr) (id int64, zone, state, reason string, err error) {
	rows, err := tx.Query(ctx, `SELECT e.id, z.origin, e.admin_state, e.admin_reason
		FROM endpoints e JOIN pools p ON p.id = e.pool_id JOIN zones z ON z.id = p.zone_id
		WHERE p.name = $1 AND e.address = $2 FOR UPDATE OF e`, pool, addr)
	if err != nil {
		return 0, "", "", "", fmt.Errorf("postgres: find endpoint %s of pool %s: %w", addr, pool, err)
	}
	var zs []string
	_, err = pgx.ForEachRow(rows, []any{&id, &zone, &state, &reason}, func() error {
		zs = append(zs, zone)
		return nil
	})
	if err != nil {
		return 0, "", "", "", fmt.Errorf("postgres: find endpoint %s of pool %s: %w", addr, pool, err)
	}
	switch len(zs) {
	case 1:
		return id, zone, state, reason, nil
	case 0:
		if err := poolExists(ctx, tx, pool); err != nil {
			return 0, "", "", "", err
		}
		return 0, "", "", "", fmt.Errorf("postgres: pool %s has no endpoint %s: %w", pool, addr, ErrUnknownEndpoint)
	}
	// Pool names are unique per zone only; nested zones could share one.
	return 0, "", "", "", fmt.Errorf("postgres: pool %s is in several zones (%s); refusing to guess", pool, strings.Join(zs, ", "))
}

func poolExists(ctx context.Context, q Querier, pool string) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM pools WHERE name = $1", pool).Scan(&n); err != nil {
		return fmt.Errorf("postgres: find pool %s: %w", pool, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: no pool %s: %w", pool, ErrUnknownPool)
	}
	return nil
}

func zoneExists(ctx context.Context, q Querier, origin string) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM zones WHERE origin = $1", origin).Scan(&n); err != nil {
		return fmt.Errorf("postgres: find zone %s: %w", origin, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: no zone %s: %w", origin, ErrUnknownZone)
	}
	return nil
}

// ZoneInfo summarises a zone for listings.
type ZoneInfo struct {
	Origin      string
	Serial      uint32 // of the SOA; 0 when it cannot be read
	Records     int    // static records
	Datacenters int
	Pools       int
	Endpoints   int
}

// ListZones lists every zone, by origin.
func ListZones(ctx context.Context, q Querier) ([]ZoneInfo, error) {
	rows, err := q.Query(ctx, `SELECT z.origin,
			coalesce((SELECT rdata FROM records WHERE zone_id = z.id AND type = 'SOA' AND name = z.origin LIMIT 1), ''),
			(SELECT count(*) FROM records WHERE zone_id = z.id),
			(SELECT count(*) FROM datacenters WHERE zone_id = z.id),
			(SELECT count(*) FROM pools WHERE zone_id = z.id),
			(SELECT count(*) FROM endpoints e JOIN pools p ON p.id = e.pool_id WHERE p.zone_id = z.id)
		FROM zones z ORDER BY z.origin`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list zones: %w", err)
	}
	var out []ZoneInfo
	var zi ZoneInfo
	var soa string
	_, err = pgx.ForEachRow(rows, []any{&zi.Origin, &soa, &zi.Records, &zi.Datacenters, &zi.Pools, &zi.Endpoints}, func() error {
		zi.Serial = 0
		if rr, err := ParseRR(zi.Origin, 0, "SOA", soa); err == nil {
			if s, ok := rr.(*dns.SOA); ok {
				zi.Serial = s.Serial
			}
		}
		out = append(out, zi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list zones: %w", err)
	}
	return out, nil
}

// PoolInfo summarises a pool for listings, with counts of its endpoints
// by state.
type PoolInfo struct {
	Zone        string
	Name        string
	TTL         uint32
	MaxAnswers  int
	Geo         string
	WhenAllDown string
	UnknownIsUp bool
	Endpoints   int
	Active      int // admin state active
	Up, Down    int // health
	Eligible    int // answered in normal operation (zones.Pool.Eligible)
}

// ListPools lists the pools of zone, or of every zone when zone is "",
// by zone and name.
func ListPools(ctx context.Context, q Querier, zone string) ([]PoolInfo, error) {
	if zone != "" {
		zone = zones.CanonicalName(zone)
		if err := zoneExists(ctx, q, zone); err != nil {
			return nil, err
		}
	}
	rows, err := q.Query(ctx, `SELECT z.origin, p.name, p.ttl, p.max_answers, p.geo, p.when_all_down, p.unknown_is_up,
			count(e.id),
			count(e.id) FILTER (WHERE e.admin_state = 'active'),
			count(e.id) FILTER (WHERE h.state = 'up'),
			count(e.id) FILTER (WHERE h.state = 'down'),
			count(e.id) FILTER (WHERE e.admin_state = 'active' AND (h.state = 'up' OR (coalesce(h.state, 'unknown') = 'unknown' AND p.unknown_is_up)))
		FROM pools p JOIN zones z ON z.id = p.zone_id
		LEFT JOIN endpoints e ON e.pool_id = p.id LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE $1 = '' OR z.origin = $1
		GROUP BY z.origin, p.id ORDER BY z.origin, p.name`, zone)
	if err != nil {
		return nil, fmt.Errorf("postgres: list pools: %w", err)
	}
	var out []PoolInfo
	var pi PoolInfo
	var ttl int64
	_, err = pgx.ForEachRow(rows, []any{&pi.Zone, &pi.Name, &ttl, &pi.MaxAnswers, &pi.Geo, &pi.WhenAllDown, &pi.UnknownIsUp,
		&pi.Endpoints, &pi.Active, &pi.Up, &pi.Down, &pi.Eligible}, func() error {
		pi.TTL = uint32(ttl)
		out = append(out, pi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list pools: %w", err)
	}
	return out, nil
}

// EndpointInfo is an endpoint with its effective state, for listings.
type EndpointInfo struct {
	Zone          string
	Pool          string
	Addr          netip.Addr
	Datacenter    string
	Weight        uint32
	Admin         zones.AdminState
	AdminReason   string
	Health        zones.HealthState
	HealthReason  string
	HealthUpdated time.Time // zero when no checker or file has spoken
	// Eligible reports whether the endpoint is answered in normal
	// operation (zones.Pool.Eligible).
	Eligible bool
}

// ListEndpoints lists the endpoints of pool, or of every pool when pool
// is "", by zone, pool and address.
func ListEndpoints(ctx context.Context, q Querier, pool string) ([]EndpointInfo, error) {
	if pool != "" {
		pool = zones.CanonicalName(pool)
		if err := poolExists(ctx, q, pool); err != nil {
			return nil, err
		}
	}
	rows, err := q.Query(ctx, `SELECT z.origin, p.name, p.unknown_is_up, e.address, e.datacenter, e.weight, e.admin_state, e.admin_reason,
			coalesce(h.state, 'unknown'), coalesce(h.reason, ''), h.updated_at
		FROM endpoints e JOIN pools p ON p.id = e.pool_id JOIN zones z ON z.id = p.zone_id
		LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE $1 = '' OR p.name = $1
		ORDER BY z.origin, p.name, e.address`, pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: list endpoints: %w", err)
	}
	var out []EndpointInfo
	var ei EndpointInfo
	var unknownUp bool
	var weight int64
	var admin, health string
	var updated *time.Time
	_, err = pgx.ForEachRow(rows, []any{&ei.Zone, &ei.Pool, &unknownUp, &ei.Addr, &ei.Datacenter, &weight, &admin, &ei.AdminReason,
		&health, &ei.HealthReason, &updated}, func() error {
		e := ei
		e.Weight = uint32(weight)
		var err error
		if e.Admin, err = zones.ParseAdminState(admin); err != nil {
			return fmt.Errorf("pool %s endpoint %s: %w", e.Pool, e.Addr, err)
		}
		if e.Health, err = zones.ParseHealthState(health); err != nil {
			return fmt.Errorf("pool %s endpoint %s: %w", e.Pool, e.Addr, err)
		}
		if updated != nil {
			e.HealthUpdated = *updated
		}
		p := zones.Pool{UnknownIsUp: unknownUp}
		e.Eligible = p.Eligible(&zones.Endpoint{Admin: e.Admin, Health: e.Health})
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list endpoints: %w", err)
	}
	return out, nil
}

// AuditEntry is one admin state change.
type AuditEntry struct {
	ID       int64
	At       time.Time
	Actor    string
	Zone     string
	Pool     string
	Addr     netip.Addr
	Old, New string // admin states
	Reason   string
}

// AuditLog returns the last limit entries of the audit log, newest
// first; limit <= 0 returns them all.
func AuditLog(ctx context.Context, q Querier, limit int) ([]AuditEntry, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := q.Query(ctx, `SELECT id, at, actor, zone, pool, address, old_state, new_state, reason
		FROM admin_audit ORDER BY id DESC LIMIT $1`, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var a AuditEntry
		return a, r.Scan(&a.ID, &a.At, &a.Actor, &a.Zone, &a.Pool, &a.Addr, &a.Old, &a.New, &a.Reason)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit log: %w", err)
	}
	return out, nil
}

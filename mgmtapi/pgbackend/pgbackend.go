// Package pgbackend is the management API's Backend on the PostgreSQL
// store: every write goes through postgres.ChangeZone, the path of
// meridianctl apply (validation, diff, guard rails, audit, change log),
// so every DNS server learns it as it learns an apply.
package pgbackend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Backend is the API's Backend on a pool of connections to the primary.
type Backend struct {
	db *pgxpool.Pool
}

// New returns a Backend on db, whose schema it checks.
func New(ctx context.Context, db *pgxpool.Pool) (*Backend, error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("management API: connect: %w", err)
	}
	defer conn.Release()
	if err := postgres.CheckSchema(ctx, conn.Conn()); err != nil {
		return nil, fmt.Errorf("management API: %w", err)
	}
	return &Backend{db: db}, nil
}

// readOnly runs fn in one repeatable-read, read-only transaction: one
// consistent picture.
func (b *Backend) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, b.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (b *Backend) Zones(ctx context.Context) ([]mgmtapi.ZoneSummary, error) {
	var out []mgmtapi.ZoneSummary
	err := b.readOnly(ctx, func(tx pgx.Tx) error {
		zs, err := postgres.ListZones(ctx, tx)
		for _, z := range zs {
			out = append(out, mgmtapi.ZoneSummary{Name: z.Origin, Serial: z.Serial, Records: z.Records,
				Datacenters: z.Datacenters, Pools: z.Pools, Endpoints: z.Endpoints})
		}
		return err
	})
	return out, err
}

func (b *Backend) Zone(ctx context.Context, origin string) (*zones.Zone, error) {
	var z *zones.Zone
	err := b.readOnly(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "SELECT id FROM zones WHERE origin = $1", origin).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return mgmtapi.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read zone %s: %w", origin, err)
		}
		zs, err := postgres.ReadZones(ctx, tx, []int64{id})
		if err != nil {
			return err
		}
		if z = zs[id]; z == nil {
			return mgmtapi.ErrNotFound
		}
		if z.Invalid != nil {
			return fmt.Errorf("zone %s cannot be read: %w", origin, z.Invalid)
		}
		return nil
	})
	return z, err
}

func (b *Backend) Change(ctx context.Context, origin string, change func(*zones.Zone) (*zones.Zone, error), w mgmtapi.Write) (*mgmtapi.Result, error) {
	diff, err := postgres.ChangeZone(ctx, b.db, origin, change, postgres.ApplyOptions{Force: w.Force, DryRun: w.DryRun, Actor: w.Actor})
	var refused *postgres.RefusedError
	if errors.As(err, &refused) {
		return nil, &mgmtapi.RefusedError{Reasons: refused.Reasons}
	}
	if err != nil {
		return nil, err
	}
	res := &mgmtapi.Result{Applied: diff.Applied, Version: diff.Version}
	for _, z := range diff.Zones {
		if z.Op != postgres.Update {
			res.Diff = append(res.Diff, fmt.Sprintf("%c zone %s", z.Op, z.Origin))
		}
		for _, c := range z.Changes {
			res.Diff = append(res.Diff, fmt.Sprintf("%c %s", c.Op, c.Text))
		}
	}
	return res, nil
}

func (b *Backend) SetAdmin(ctx context.Context, origin, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error) {
	old, err := postgres.SetAdmin(ctx, b.db, pool, addr, state, reason, actor)
	if errors.Is(err, postgres.ErrUnknownPool) || errors.Is(err, postgres.ErrUnknownEndpoint) {
		return 0, fmt.Errorf("%w: %v", mgmtapi.ErrNotFound, err)
	}
	return old, err
}

func (b *Backend) Checkers(ctx context.Context) ([]mgmtapi.Checker, error) {
	cs, err := postgres.ListCheckers(ctx, b.db)
	if err != nil {
		return nil, err
	}
	out := make([]mgmtapi.Checker, len(cs))
	for i, c := range cs {
		out[i] = mgmtapi.Checker{ID: c.ID, Region: c.Region, Started: c.Started, LastSeen: c.LastSeen, Live: c.Live}
	}
	return out, nil
}

func (b *Backend) Audit(ctx context.Context, q mgmtapi.AuditQuery) ([]mgmtapi.AuditEntry, error) {
	rs, err := postgres.ReadAudit(ctx, b.db, postgres.AuditQuery{Zone: q.Zone, Before: q.Before, Limit: q.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]mgmtapi.AuditEntry, len(rs))
	for i, r := range rs {
		e := mgmtapi.AuditEntry{At: r.At, Actor: r.Actor, Zone: r.Zone, Kind: "admin", Pool: r.Pool, Address: r.Address,
			OldState: r.OldState, NewState: r.NewState, Reason: r.Reason}
		if r.Diff != "" {
			e.Kind, e.Version, e.Diff = "change", r.Version, strings.Split(strings.TrimSuffix(r.Diff, "\n"), "\n")
		}
		out[i] = e
	}
	return out, nil
}

// Authenticate accepts api tokens (postgres.CreateAPIToken): the store
// keeps their SHA-256 only and looks the hash up, so the time taken
// depends on the hash, never on how much of a guessed secret was right.
func (b *Backend) Authenticate(ctx context.Context, token string) (mgmtapi.Principal, error) {
	t, err := postgres.CheckToken(ctx, b.db, token)
	switch {
	case errors.Is(err, postgres.ErrBadToken):
		return mgmtapi.Principal{}, mgmtapi.ErrBadToken
	case err != nil:
		return mgmtapi.Principal{}, err
	case t.Kind != postgres.TokenAPI:
		// Agent and operator tokens belong to the health-agent API.
		return mgmtapi.Principal{}, mgmtapi.ErrBadToken
	}
	return mgmtapi.Principal{Name: t.Actor(), Scopes: t.Scopes}, nil
}

package postgres

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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

// Error lists the reasons, and says how to override them.
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
	tx, version, err := beginWrite(ctx, db, "apply")
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	have, err := currentZones(ctx, tx, func(origin string) bool { return opts.Prune || want[origin] != nil })
	if err != nil {
		return nil, err
	}
	return commitPlans(ctx, tx, planAll(have, want, opts), version, opts)
}

// beginWrite begins a write transaction and takes the version row, which
// serialises writers: the state read next cannot change before commit,
// and the triggers, which lock the same row, cannot deadlock against
// another writer. It returns the current data version.
func beginWrite(ctx context.Context, db DB, what string) (pgx.Tx, int64, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: %s: begin: %w", what, err)
	}
	var version int64
	if err := tx.QueryRow(ctx, "SELECT version FROM meridian_version FOR UPDATE").Scan(&version); err != nil {
		tx.Rollback(context.Background())
		return nil, 0, fmt.Errorf("postgres: %s: lock version: %w", what, err)
	}
	return tx, version, nil
}

// commitPlans is the end of every write of zones: it refuses what the
// guard rails refuse (unless Force), runs the plans' statements, writes
// one change_audit row per zone changed and commits, or rolls back on a
// dry run. version is the data version before.
func commitPlans(ctx context.Context, tx pgx.Tx, plans []*zonePlan, version int64, opts ApplyOptions) (*Diff, error) {
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
	if err := audit(ctx, tx, diff, opts.Actor); err != nil {
		return diff, err
	}
	if err := tx.Commit(ctx); err != nil {
		return diff, fmt.Errorf("postgres: apply: commit: %w", err)
	}
	diff.Applied = true
	return diff, nil
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
		for _, list := range []stmts{p.pre, p.del, p.upd, p.ins} {
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

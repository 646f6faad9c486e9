package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultChangeLogRetention is how long changes stay in the change log
// unless configured otherwise: long enough for a server cut off from the
// database over a long weekend to catch up by the log rather than
// reloading every zone.
const DefaultChangeLogRetention = 7 * 24 * time.Hour

// DefaultPruneInterval is how often a running server prunes the change
// log (PruneChangeLog).
const DefaultPruneInterval = time.Hour

// PruneResult is what PruneChanges did.
type PruneResult struct {
	// Deleted is the number of change-log rows deleted.
	Deleted int64
	// PrunedThrough is the watermark after the prune: every change with a
	// version at or below it is gone from the log (0: none ever was).
	PrunedThrough int64
}

// PruneChanges deletes the changes older than keep from the change log
// and raises the watermark (ChangeLog.PrunedThrough) to match, in one
// transaction, so that a loading server sees both or neither. The rows of
// the newest version are always kept: a server that has loaded it can go
// on following the log however long nothing changes.
//
// Several servers may prune at once: a prune waits for the one before to
// commit and then finds its rows gone. Pruning never holds up writers,
// which lock meridian_version, not the watermark.
func PruneChanges(ctx context.Context, db DB, keep time.Duration) (PruneResult, error) {
	if keep <= 0 {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: keep must be positive, got %s", keep)
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	var res PruneResult
	if err := tx.QueryRow(ctx, "SELECT pruned_through FROM change_log FOR UPDATE").Scan(&res.PrunedThrough); err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: lock watermark: %w", err)
	}
	// The cutoff as a version. A version is at least the time of its
	// change in microseconds (007_clock_versions.sql), so a version at or
	// below the cutoff's microseconds is a change older than keep. (Had
	// the clock gone back, rows merely stay longer; the small versions of
	// before migration 007 all count as old.) The window is then a range
	// of the primary key, with no index on the time. The database's clock
	// decides, as it decided the versions.
	var through int64
	err = tx.QueryRow(ctx, `SELECT LEAST((extract(epoch FROM clock_timestamp()) * 1000000)::bigint - $1, version - 1)
		FROM meridian_version`, keep.Microseconds()).Scan(&through)
	if err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: read version: %w", err)
	}
	if through <= res.PrunedThrough {
		return res, nil // nothing new has left the window
	}
	tag, err := tx.Exec(ctx, "DELETE FROM changes WHERE version <= $1", through)
	if err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: delete: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE change_log SET pruned_through = $1, pruned_at = now()", through); err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: raise watermark: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return PruneResult{}, fmt.Errorf("postgres: prune change log: commit: %w", err)
	}
	return PruneResult{Deleted: tag.RowsAffected(), PrunedThrough: through}, nil
}

// ChangeLog describes the change log, for operators.
type ChangeLog struct {
	Rows int64 // rows in the log
	// Oldest is the oldest version in the log and OldestAt when its
	// change was made; zero when the log is empty.
	Oldest   int64
	OldestAt time.Time
	// Version is the current data version.
	Version int64
	// PrunedThrough is the watermark: changes up to this version are gone
	// (0: never pruned); PrunedAt is when it was last raised.
	PrunedThrough int64
	PrunedAt      time.Time
}

// ReadChangeLog describes the change log. It counts the rows, which reads
// the whole table: for meridianctl, not for a loop.
func ReadChangeLog(ctx context.Context, q Querier) (*ChangeLog, error) {
	var c ChangeLog
	var oldest *int64
	var oldestAt, prunedAt *time.Time
	err := q.QueryRow(ctx, `SELECT (SELECT count(*) FROM changes), o.version, o.at, v.version, l.pruned_through, l.pruned_at
		FROM meridian_version v CROSS JOIN change_log l
		LEFT JOIN LATERAL (SELECT version, at FROM changes ORDER BY version, zone_id LIMIT 1) o ON true`).
		Scan(&c.Rows, &oldest, &oldestAt, &c.Version, &c.PrunedThrough, &prunedAt)
	if err != nil {
		return nil, fmt.Errorf("postgres: read change log: %w", err)
	}
	if oldest != nil {
		c.Oldest, c.OldestAt = *oldest, *oldestAt
	}
	if prunedAt != nil {
		c.PrunedAt = *prunedAt
	}
	return &c, nil
}

// PruneStats counts what PruneChangeLog did.
type PruneStats struct {
	OK, Failed uint64 // passes, by result
	Deleted    uint64 // change-log rows deleted
}

// PruneStats reports what PruneChangeLog has done so far.
func (s *Store) PruneStats() PruneStats {
	return PruneStats{OK: s.prunes[1].Load(), Failed: s.prunes[0].Load(), Deleted: s.pruned.Load()}
}

// PruneChangeLog prunes the change log to keep (PruneChanges) at once and
// then every interval, until ctx is done. Each pass is a connection of its
// own, so a long first prune never delays a load. A failed pass is logged
// and counted, and the next one tries again: the log only grows meanwhile.
// The interval varies by a tenth either way, so that a fleet started
// together does not prune in step.
func (s *Store) PruneChangeLog(ctx context.Context, keep, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPruneInterval
	}
	for {
		s.pruneOnce(ctx, keep)
		wait := interval - interval/10 + rand.N(interval/5+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Store) pruneOnce(ctx context.Context, keep time.Duration) {
	res, err := s.prune(ctx, keep)
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, errStandby):
		// Read-only: the primary's own servers, or meridianctl, prune.
		s.opts.Logger.Debug("Change log not pruned: the database in use is a hot standby")
	case err != nil:
		s.prunes[0].Add(1)
		s.opts.Logger.Warn("Pruning the change log failed; trying again later", "err", err)
	default:
		s.prunes[1].Add(1)
		s.pruned.Add(uint64(res.Deleted))
		// A pass that found nothing to delete is routine.
		level := slog.LevelDebug
		if res.Deleted > 0 {
			level = slog.LevelInfo
		}
		s.opts.Logger.Log(ctx, level, "Change log pruned", "deleted", res.Deleted, "pruned_through", res.PrunedThrough, "keep", keep.String())
	}
}

func (s *Store) prune(ctx context.Context, keep time.Duration) (PruneResult, error) {
	conn, err := pgx.ConnectConfig(ctx, s.target())
	if err != nil {
		return PruneResult{}, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := CheckSchema(ctx, conn); err != nil {
		return PruneResult{}, err
	}
	// Asked on the connection that would prune, so that a standby
	// promoted since the last pass prunes from now on.
	if standby, err := inRecovery(ctx, conn); err != nil || standby {
		return PruneResult{}, cmp.Or(err, errStandby)
	}
	return PruneChanges(ctx, conn, keep)
}

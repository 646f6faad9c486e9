package postgres

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/zones"
)

// ChangeZone changes one zone through the path of Apply, in one
// transaction: it takes the version row, reads the zone (nil when the
// database does not hold it), calls change with it and makes the database
// hold the zone change returns, or deletes the zone when it returns nil.
// The zone returned is validated (zones.Build), the guard rails of Apply
// hold (ApplyOptions.Force overrides them) and the change is audited, as
// Apply's are. An error from change is returned as it is, and nothing is
// written.
//
// Because the zone read cannot change before the commit, change may
// compare it with what its caller last saw (an ETag) and refuse: two
// writers never overwrite each other unseen. The zone handed to change
// has no health (every endpoint's is unknown): health belongs to the
// checkers, and Apply leaves an unknown health alone.
func ChangeZone(ctx context.Context, db DB, origin string, change func(cur *zones.Zone) (*zones.Zone, error), opts ApplyOptions) (*Diff, error) {
	opts = withDefaults(opts)
	origin = zones.CanonicalName(origin)
	tx, version, err := beginWrite(ctx, db, "change zone "+origin)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	have, err := currentZones(ctx, tx, func(o string) bool { return o == origin })
	if err != nil {
		return nil, err
	}
	var cur *zones.Zone
	if h := have[origin]; h != nil {
		zs, err := ReadZones(ctx, tx, []int64{h.id})
		if err != nil {
			return nil, err
		}
		if cur = zs[h.id]; cur == nil {
			return nil, fmt.Errorf("postgres: change zone %s: %w", origin, ErrNoZone)
		}
		if cur.Invalid != nil {
			return nil, fmt.Errorf("postgres: change zone %s: it cannot be read: %w", origin, cur.Invalid)
		}
		forgetHealth(cur)
	}
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	want := map[string]*zoneRows{}
	switch {
	case next == nil && cur == nil:
		return &Diff{Version: version}, fmt.Errorf("postgres: change zone %s: %w", origin, ErrNoZone)
	case next != nil:
		if o := zones.CanonicalName(next.Origin); o != origin {
			return nil, fmt.Errorf("postgres: change zone %s: the change returned zone %s", origin, o)
		}
		if want, err = wantedZones([]*zones.Zone{next}); err != nil {
			return nil, err
		}
	}
	return commitPlans(ctx, tx, []*zonePlan{planZone(origin, have[origin], want[origin], opts)}, version, opts)
}

// withDefaults fills in the defaults of the options of a write.
func withDefaults(opts ApplyOptions) ApplyOptions {
	if opts.MaxDeleteShare <= 0 {
		opts.MaxDeleteShare = DefaultMaxDeleteShare
	}
	opts.Actor = cmp.Or(opts.Actor, "apply")
	return opts
}

// forgetHealth sets the health of every endpoint of z to unknown, which
// a write leaves as the database has it.
func forgetHealth(z *zones.Zone) {
	for i := range z.Pools {
		for j := range z.Pools[i].Endpoints {
			e := &z.Pools[i].Endpoints[j]
			e.Health, e.Agent, e.UpSince = zones.HealthUnknown, nil, time.Time{}
		}
	}
}

// audit writes one change_audit row per zone of diff, in the
// transaction of the change.
func audit(ctx context.Context, tx pgx.Tx, diff *Diff, actor string) error {
	b := &pgx.Batch{}
	for _, z := range diff.Zones {
		var text strings.Builder
		fmt.Fprintf(&text, "%c zone %s\n", z.Op, z.Origin)
		for _, c := range z.Changes {
			fmt.Fprintf(&text, "%c %s\n", c.Op, c.Text)
		}
		b.Queue("INSERT INTO change_audit (actor, zone, version, diff) VALUES ($1, $2, $3, $4)", actor, z.Origin, diff.Version, text.String())
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: audit: %w", err)
	}
	return nil
}

// AuditRecord is one entry of the whole audit log: a change of a zone's
// configuration (Diff set) or of an endpoint's admin state (AuditEntry).
type AuditRecord struct {
	At      time.Time
	Actor   string
	Zone    string
	Version int64  // of a change; 0 for an admin state
	Diff    string // of a change, one change per line
	// Of an admin state change:
	Pool, Address, OldState, NewState, Reason string
}

// AuditQuery selects entries of the audit log.
type AuditQuery struct {
	Zone   string    // "": every zone
	Before time.Time // zero: up to now
	Limit  int       // at most this many, newest first; 0 means 100
}

// ReadAudit returns the newest entries of the audit log, changes of zones
// and of admin states together, newest first.
func ReadAudit(ctx context.Context, q Querier, aq AuditQuery) ([]AuditRecord, error) {
	if aq.Limit <= 0 {
		aq.Limit = 100
	}
	var zone *string
	if aq.Zone != "" {
		z := zones.CanonicalName(aq.Zone)
		zone = &z
	}
	var before *time.Time
	if !aq.Before.IsZero() {
		before = &aq.Before
	}
	rows, err := q.Query(ctx, `
		SELECT at, actor, zone, version, diff, '', '', '', '', '' FROM change_audit
		 WHERE ($1::text IS NULL OR zone = $1) AND ($2::timestamptz IS NULL OR at < $2)
		UNION ALL
		SELECT at, actor, zone, 0, '', pool, host(address), old_state, new_state, reason FROM admin_audit
		 WHERE ($1::text IS NULL OR zone = $1) AND ($2::timestamptz IS NULL OR at < $2)
		ORDER BY at DESC LIMIT $3`, zone, before, aq.Limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditRecord, error) {
		var e AuditRecord
		err := r.Scan(&e.At, &e.Actor, &e.Zone, &e.Version, &e.Diff, &e.Pool, &e.Address, &e.OldState, &e.NewState, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit: %w", err)
	}
	return out, nil
}

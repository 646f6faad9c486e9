package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// ErrNoZone is UpdateRecords' error for a zone the database does not hold.
var ErrNoZone = errors.New("postgres: no such zone")

// ErrInvalidUpdate is UpdateRecords' error when the records given would
// make a zone that cannot be served; nothing is written.
var ErrInvalidUpdate = errors.New("postgres: update makes the zone invalid")

// UpdateRecords changes the static records of one zone, for a dynamic
// update (RFC 2136): through ChangeZone, in one transaction, it reads the
// zone origin, calls change with it, checks the zone the records change
// returns would make (zones.Check) and writes the difference, record by
// record, audited as actor's. The record triggers log the change, so every
// server learns it as it learns an Apply. Datacenters, pools and keys are
// left as they are. An error from change is returned as it is, and
// nothing is written.
//
// The guard rails of Apply do not hold: an update names each record it
// deletes, and the update package protects the apex SOA and NS.
func UpdateRecords(ctx context.Context, db DB, origin, actor string, change func(*zones.Zone) ([]dns.RR, error)) error {
	_, err := ChangeZone(ctx, db, origin, func(z *zones.Zone) (*zones.Zone, error) {
		if z == nil {
			return nil, ErrNoZone
		}
		rrs, err := change(z)
		if err != nil {
			return nil, err
		}
		nz := *z
		nz.Records = make([]zones.Record, len(rrs))
		for i, rr := range rrs {
			nz.Records[i] = zones.Record{RR: rr}
		}
		if err := zones.Validate(&nz); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
		}
		if err := zones.Check(&nz); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
		}
		return &nz, nil
	}, ApplyOptions{Force: true, Actor: actor})
	return err
}

// Updater applies dynamic updates to the database at a URL, on a
// connection of its own for each update: updates are rare, and the
// store's connection belongs to its load loop. It is safe for
// concurrent use.
type Updater struct{ cfg *pgx.ConnConfig }

// NewUpdater returns an Updater for the database at url.
func NewUpdater(url string) (*Updater, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	ConfigureWriter(cfg)
	return &Updater{cfg: cfg}, nil
}

// Update is UpdateRecords on a new connection, closed before it returns.
func (u *Updater) Update(ctx context.Context, origin, actor string, change func(*zones.Zone) ([]dns.RR, error)) error {
	conn, err := pgx.ConnectConfig(ctx, u.cfg)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := CheckSchema(ctx, conn); err != nil {
		return err
	}
	return UpdateRecords(ctx, conn, origin, actor, change)
}

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
// update (RFC 2136): in one transaction it reads the zone origin, calls
// change with it, checks the zone the records change returns would make
// (zones.Check) and writes the difference, record by record. The record
// triggers log the change, so every server learns it as it learns an
// Apply. Datacenters, pools and keys are left as they are. An error from
// change is returned as it is, and nothing is written.
//
// It takes the version row first, as Apply does, so it is serialised
// with Apply and with other updates: the zone read cannot change before
// the commit.
func UpdateRecords(ctx context.Context, db DB, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("postgres: update: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT version FROM meridian_version FOR UPDATE"); err != nil {
		return fmt.Errorf("postgres: update: lock version: %w", err)
	}
	origin = zones.CanonicalName(origin)
	var id int64
	switch err := tx.QueryRow(ctx, "SELECT id FROM zones WHERE origin = $1", origin).Scan(&id); {
	case errors.Is(err, pgx.ErrNoRows):
		return ErrNoZone
	case err != nil:
		return fmt.Errorf("postgres: update: %w", err)
	}
	zs, err := ReadZones(ctx, tx, []int64{id})
	if err != nil {
		return err
	}
	z := zs[id]
	if z == nil {
		return ErrNoZone
	}
	if z.Invalid != nil {
		return fmt.Errorf("postgres: update: zone %s cannot be read: %w", origin, z.Invalid)
	}
	rrs, err := change(z)
	if err != nil {
		return err
	}
	nz := *z
	nz.Records = make([]zones.Record, len(rrs))
	for i, rr := range rrs {
		nz.Records[i] = zones.Record{RR: rr}
	}
	if err := zones.Validate(&nz); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
	}
	if err := zones.Check(&nz); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
	}
	type key struct{ name, typ, rdata string }
	keyOf := func(rr dns.RR) key {
		h := rr.Header()
		return key{zones.CanonicalName(h.Name), dns.Type(h.Rrtype).String(), RData(rr)}
	}
	have := map[key]uint32{}
	for _, r := range z.Records {
		have[keyOf(r.RR)] = r.RR.Header().Ttl
	}
	want := map[key]uint32{}
	for _, rr := range rrs {
		want[keyOf(rr)] = rr.Header().Ttl
	}
	b := &pgx.Batch{}
	n := 0
	for k := range have {
		if _, ok := want[k]; !ok {
			b.Queue("DELETE FROM records WHERE zone_id = $1 AND name = $2 AND type = $3 AND rdata = $4", id, k.name, k.typ, k.rdata)
			n++
		}
	}
	for k, ttl := range want {
		old, ok := have[k]
		switch {
		case !ok:
			b.Queue("INSERT INTO records (zone_id, name, type, ttl, rdata) VALUES ($1, $2, $3, $4, $5)", id, k.name, k.typ, int64(ttl), k.rdata)
			n++
		case old != ttl:
			b.Queue("UPDATE records SET ttl = $5 WHERE zone_id = $1 AND name = $2 AND type = $3 AND rdata = $4", id, k.name, k.typ, k.rdata, int64(ttl))
			n++
		}
	}
	if n == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for range n {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return fmt.Errorf("postgres: update zone %s: %w", origin, err)
		}
		if tag.RowsAffected() != 1 {
			br.Close()
			return fmt.Errorf("postgres: update zone %s: %d rows affected, want 1", origin, tag.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: update: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: update: commit: %w", err)
	}
	return nil
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
	return &Updater{cfg: cfg}, nil
}

// Update is UpdateRecords on a new connection, closed before it returns.
func (u *Updater) Update(ctx context.Context, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
	conn, err := pgx.ConnectConfig(ctx, u.cfg)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := CheckSchema(ctx, conn); err != nil {
		return err
	}
	return UpdateRecords(ctx, conn, origin, change)
}

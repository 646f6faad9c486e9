package postgres

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/zones"
)

// currentZones reads, with ids, the zones of the database that a write
// may change: those whose origin include reports.
func currentZones(ctx context.Context, tx pgx.Tx, include func(origin string) bool) (map[string]*zoneRows, error) {
	rows, err := tx.Query(ctx, "SELECT id, origin FROM zones")
	if err != nil {
		return nil, fmt.Errorf("postgres: apply: read zones: %w", err)
	}
	type idOrigin struct {
		id     int64
		origin string
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idOrigin, error) {
		var z idOrigin
		return z, r.Scan(&z.id, &z.origin)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: apply: read zones: %w", err)
	}
	have := map[string]*zoneRows{}
	byID := map[int64]*zoneRows{}
	var ids []int64
	for _, z := range all {
		if !include(z.origin) {
			continue
		}
		zr := newZoneRows(z.id, z.origin)
		have[z.origin], byID[z.id] = zr, zr
		ids = append(ids, z.id)
	}
	if len(ids) == 0 {
		return have, nil
	}
	for _, read := range []func(context.Context, pgx.Tx, []int64, map[int64]*zoneRows) error{readRecordRows, readDCRows, readPoolRows} {
		if err := read(ctx, tx, ids, byID); err != nil {
			return nil, err
		}
	}
	return have, nil
}

// readRecordRows reads the static records of the zones ids into byID.
func readRecordRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	var r recordRow
	var zid int64
	var k recordKey
	return queryEach(ctx, tx, "records", "SELECT id, zone_id, name, type, ttl, rdata FROM records WHERE zone_id = ANY($1)", ids,
		[]any{&r.id, &zid, &k.name, &k.typ, &r.ttl, &k.rdata}, func() error {
			row := r
			byID[zid].records[k] = &row
			return nil
		})
}

// readDCRows reads the datacenters of the zones ids into byID.
func readDCRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	var dc dcRow
	var zid int64
	var name string
	return queryEach(ctx, tx, "datacenters", "SELECT id, zone_id, name, lat, lon, country, continent FROM datacenters WHERE zone_id = ANY($1)", ids,
		[]any{&dc.id, &zid, &name, &dc.lat, &dc.lon, &dc.country, &dc.continent}, func() error {
			row := dc
			byID[zid].dcs[name] = &row
			return nil
		})
}

// readPoolRows reads the pools of the zones ids into byID, each with its
// endpoints and their health. The jsonb settings are re-encoded as
// zoneToRows encodes them, so that unchanged settings compare equal.
func readPoolRows(ctx context.Context, tx pgx.Tx, ids []int64, byID map[int64]*zoneRows) error {
	pools := map[int64]*poolRow{}
	var p poolRow
	var zid int64
	var name string
	var bias map[string]float64
	var rules []RuleJSON
	var check *zones.HealthCheck
	err := queryEach(ctx, tx, "pools", `SELECT id, zone_id, name, ttl, max_answers, geo, sticky, spill, unknown_is_up, when_all_down, bias, rules,
		quorum, health_check, shed_load FROM pools WHERE zone_id = ANY($1)`, ids,
		[]any{&p.id, &zid, &name, &p.ttl, &p.maxAnswers, &p.geo, &p.sticky, &p.spill, &p.unknownUp, &p.allDown, &bias, &rules, &p.quorum, &check, &p.shedLoad}, func() error {
			row := p
			if err := row.encodeJSON(bias, rules, check); err != nil {
				return err
			}
			// JSON decodes into the map, slice or struct it is given,
			// keeping what it does not overwrite: the next row starts afresh.
			bias, rules, check = nil, nil, nil
			row.endpoints = map[netip.Addr]*endpointRow{}
			byID[zid].pools[name] = &row
			pools[row.id] = &row
			return nil
		})
	if err != nil || len(pools) == 0 {
		return err
	}
	var e endpointRow
	var pid int64
	var addr netip.Addr
	var echeck *zones.HealthCheck
	return queryEach(ctx, tx, "endpoints", `SELECT e.id, e.pool_id, e.address, e.datacenter, e.weight, e.admin_state, e.admin_reason, coalesce(h.state, 'unknown'),
		e.health_check FROM endpoints e JOIN pools p ON p.id = e.pool_id LEFT JOIN endpoint_health h ON h.endpoint_id = e.id
		WHERE p.zone_id = ANY($1)`, ids,
		[]any{&e.id, &pid, &addr, &e.dc, &e.weight, &e.admin, &e.adminReason, &e.health, &echeck}, func() error {
			row := e
			var err error
			if row.check, err = checkJSON(echeck); err != nil {
				return err
			}
			echeck = nil
			pools[pid].endpoints[addr] = &row
			return nil
		})
}

// queryEach runs sql with the zone ids as $1 and calls fn after scanning
// each row into dest. Its errors say that reading what failed.
func queryEach(ctx context.Context, tx pgx.Tx, what, sql string, ids []int64, dest []any, fn func() error) error {
	rows, err := tx.Query(ctx, sql, ids)
	if err != nil {
		return fmt.Errorf("postgres: apply: read %s: %w", what, err)
	}
	if _, err := pgx.ForEachRow(rows, dest, fn); err != nil {
		return fmt.Errorf("postgres: apply: read %s: %w", what, err)
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// checkCmd implements "meridianctl check": it validates every zone of the
// database as the servers do when they load it.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("check", "[--zone ZONE] [flags]",
		"Validate the zones of the database as the servers do when they load them, and print\n"+
			"each zone's status. A zone that is invalid (broken by a manual SQL edit, say) is not\n"+
			"updated on the servers: they keep serving its last good version, or nothing if they\n"+
			"never had one. Exit status 1 when a zone is invalid.", stderr)
	zone := f.String("zone", "", "check only this zone")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	zs, code := f.readZones(ctx, *zone)
	if code != 0 {
		return code
	}
	for _, z := range zs {
		err := zones.Check(z)
		fmt.Fprintf(stdout, "%s: %s\n", z.Origin, status(err))
		if err != nil {
			code = 1
		}
	}
	return code
}

// zoneStatuses reads every zone and checks it: the status of each, by
// origin, in the words of status.
func zoneStatuses(ctx context.Context, q postgres.Reader) (map[string]string, error) {
	byID, err := postgres.ReadZones(ctx, q, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(byID))
	for _, z := range byID {
		out[z.Origin] = status(zones.Check(z))
	}
	return out, nil
}

// status is a zone's state on one line: "ok", or "invalid: " and why.
func status(err error) string {
	if err == nil {
		return "ok"
	}
	return "invalid: " + strings.ReplaceAll(err.Error(), "\n", "; ")
}

// readOnly runs f in one read-only REPEATABLE READ transaction, so that
// what it reads is one version of the database.
func readOnly(ctx context.Context, conn *pgx.Conn, f func(pgx.Tx) error) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	return f(tx)
}

package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// checkersCmd implements "meridianctl checkers [remove ID]": the health
// checkers registered in the store, and forgetting a retired one.
func checkersCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "remove" {
		return checkerRemove(ctx, args[1:], stdout, stderr)
	}
	const name = "checkers"
	f := newFlags(name, "[remove ID] [flags]",
		"List the health checkers registered in the store; LIVE ones have verdicts that count.\n"+
			"\"meridianctl checkers remove ID\" forgets a retired checker that a sweep found dead.", stderr)
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		cs, err := postgres.ListCheckers(ctx, conn)
		if err != nil {
			return err
		}
		tw := table(stdout, "ID", "REGION", "LIVE", "STARTED", "LAST SEEN", "TTL")
		for _, c := range cs {
			row(tw, c.ID, dash(c.Region), yesNo(c.Live), when(c.Started), when(c.LastSeen), c.TTL)
		}
		return tw.Flush()
	})
}

func checkerRemove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "checkers remove"
	f := newFlags(name, "ID [flags]",
		"Forget a retired checker and its verdicts. Only a checker that a sweep found dead\n"+
			"(silent for 3 heartbeats) may go, so its removal changes no endpoint's health.", stderr)
	id, code, ok := f.parseOne(args, stderr)
	if !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		if err := postgres.RemoveChecker(ctx, conn, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "checker %s removed\n", id)
		return nil
	})
}

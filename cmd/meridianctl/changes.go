package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// changesCmd implements "meridianctl changes [prune]": the state of the
// change log, and pruning it by hand.
func changesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "prune" {
		return changesPrune(ctx, args[1:], stdout, stderr)
	}
	const name = "changes"
	f := newFlags(name, "[prune [--keep DURATION]] [flags]",
		"Show the change log: how many rows it holds, its oldest change, and up to which version\n"+
			"it was pruned. \"meridianctl changes prune\" deletes changes older than --keep; DNS\n"+
			"servers with store.change_log_retention set do that hourly.", stderr)
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		c, err := postgres.ReadChangeLog(ctx, conn)
		if err != nil {
			return err
		}
		tw := table(stdout, "VERSION", "ROWS", "OLDEST", "OLDEST AT", "PRUNED THROUGH", "PRUNED AT")
		oldest := "-"
		if c.Rows > 0 {
			oldest = fmt.Sprint(c.Oldest)
		}
		row(tw, c.Version, c.Rows, oldest, when(c.OldestAt), c.PrunedThrough, when(c.PrunedAt))
		return tw.Flush()
	})
}

func changesPrune(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "changes prune"
	f := newFlags(name, "[--keep DURATION] [flags]",
		"Delete the changes older than --keep from the change log. The newest change is always kept.\n"+
			"A DNS server that loaded a version older than what is pruned reloads every zone at its\n"+
			"next change. Safe to run beside servers that prune.", stderr)
	keep := f.Duration("keep", postgres.DefaultChangeLogRetention, "keep the changes of this long ago and since")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *keep <= 0 {
		// The newest change is kept anyway, but a zero window would make
		// every server that is even a second behind reload everything.
		fmt.Fprintf(stderr, "meridianctl %s: --keep must be positive, got %s\n", name, *keep)
		return 2
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		res, err := postgres.PruneChanges(ctx, conn, *keep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pruned %d rows; changes through version %d are gone\n", res.Deleted, res.PrunedThrough)
		return nil
	})
}

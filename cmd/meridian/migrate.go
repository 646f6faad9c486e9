package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/store/postgres"
)

// migrateCmd implements "meridian migrate": it brings the schema of the
// PostgreSQL database to the version this binary knows. Running it again
// is harmless; a database newer than the binary is refused.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("migrate", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("database", os.Getenv(envPrefix+"_STORE_DATABASE"), "PostgreSQL URL (default $MERIDIAN_STORE_DATABASE)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian migrate --database URL\n\nCreate or upgrade Meridian's schema in a PostgreSQL database.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian migrate", args, stderr); !ok {
		return code
	}
	if *url == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	from, to, err := postgres.Migrate(ctx, *url)
	if err != nil {
		fmt.Fprintf(stderr, "meridian migrate: %v\n", err)
		return 1
	}
	if from == to {
		fmt.Fprintf(stdout, "schema is up to date (version %d)\n", to)
	} else {
		fmt.Fprintf(stdout, "schema migrated from version %d to %d\n", from, to)
	}
	return 0
}

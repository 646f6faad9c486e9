package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/store/postgres"
)

// envDatabase names the environment variable holding the database URL
// when --database is not given: the same one "meridian serve" reads for
// store.database, so one setting serves both.
const envDatabase = "MERIDIAN_STORE_DATABASE"

// flags is the flag set of one command, with --database.
type flags struct {
	*pflag.FlagSet
	database string
	stderr   io.Writer // where the command's errors go
}

// newFlags returns the flags of command name; its usage shows synopsis
// and about.
func newFlags(name, synopsis, about string, stderr io.Writer) *flags {
	f := &flags{FlagSet: pflag.NewFlagSet(name, pflag.ContinueOnError), stderr: stderr}
	f.SetOutput(stderr)
	f.SortFlags = false
	f.StringVar(&f.database, "database", "", "PostgreSQL URL (default $"+envDatabase+")")
	f.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridianctl %s %s\n\n%s\n\nFlags:\n%s", name, synopsis, about, f.FlagUsages())
	}
	return f
}

// parse parses args, which take no positional arguments. When it returns
// false the command is over, with exit code code.
func (f *flags) parse(args []string, stderr io.Writer) (code int, ok bool) {
	if code, ok := cli.ParseFlags(f.FlagSet, "meridianctl "+f.Name(), args, stderr); !ok {
		return code, false
	}
	if f.NArg() > 0 {
		fmt.Fprintf(stderr, "meridianctl %s: unexpected argument %q\n", f.Name(), f.Arg(0))
		return 2, false
	}
	return 0, true
}

// parseOne parses args, which take exactly one positional argument, and
// returns it. When ok is false the command is over, with exit code code.
func (f *flags) parseOne(args []string, stderr io.Writer) (arg string, code int, ok bool) {
	if code, ok := cli.ParseFlags(f.FlagSet, "meridianctl "+f.Name(), args, stderr); !ok {
		return "", code, false
	}
	if f.NArg() != 1 {
		f.Usage()
		return "", 2, false
	}
	return f.Arg(0), 0, true
}

// fail prints err for command name and returns exit code 1.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "meridianctl %s: %v\n", name, err)
	return 1
}

// withConn connects to the database and runs do with the connection,
// closing it after: the shape of every command that reads or writes the
// store. It returns exit code 0, or 1 once the error of connecting or of
// do is printed for the command (see fail).
func (f *flags) withConn(ctx context.Context, do func(*pgx.Conn) error) int {
	conn, err := f.connect(ctx)
	if err != nil {
		return fail(f.stderr, f.Name(), err)
	}
	defer conn.Close(context.Background())
	if err := do(conn); err != nil {
		return fail(f.stderr, f.Name(), err)
	}
	return 0
}

// connect opens the database named by --database or the environment and
// refuses it unless its schema is the one this binary knows.
func (f *flags) connect(ctx context.Context) (*pgx.Conn, error) {
	url := cmp.Or(f.database, os.Getenv(envDatabase))
	if url == "" {
		return nil, fmt.Errorf("no database: give --database URL or set %s", envDatabase)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	// A tool waiting for minutes on an unreachable host helps nobody.
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 10*time.Second)
	postgres.ConfigureWriter(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := postgres.CheckSchema(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// Package postgres is the PostgreSQL store: zones, pools, endpoints and
// their health in one database shared by every DNS server and checker.
// Servers load a consistent snapshot in one REPEATABLE READ transaction,
// then follow the versioned change log (LISTEN/NOTIFY, with polling as a
// safety net), reloading only the zones that changed.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// versionTable is where tern records the schema version.
const versionTable = "meridian_schema_version"

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrator: %w", err)
	}
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return nil, fmt.Errorf("postgres: load migrations: %w", err)
	}
	return m, nil
}

// SchemaVersion is the schema version this binary knows.
func SchemaVersion() int32 {
	names, err := migrate.FindMigrations(mustSub())
	if err != nil {
		panic(err) // the embedded files are fixed at build time
	}
	return int32(len(names))
}

func mustSub() fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// Migrate brings the schema of the database at url to SchemaVersion and
// returns the versions before and after. Migrations run in transactions
// under tern's advisory lock, so concurrent runs are safe.
func Migrate(ctx context.Context, url string) (from, to int32, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	if from, err = m.GetCurrentVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	if from > SchemaVersion() {
		return from, from, newerSchema(from)
	}
	if err := m.Migrate(ctx); err != nil {
		return from, 0, fmt.Errorf("postgres: migrate: %w", err)
	}
	to, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return from, to, nil
}

// CheckSchema refuses a database whose schema this binary does not know:
// an older one needs "meridian migrate", a newer one a newer Meridian.
func CheckSchema(ctx context.Context, conn *pgx.Conn) error {
	var v int32
	err := conn.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&v)
	if err != nil {
		if isUndefinedTable(err) {
			return fmt.Errorf("postgres: the database has no Meridian schema: run \"meridian migrate\" first")
		}
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	switch {
	case v > SchemaVersion():
		return newerSchema(v)
	case v < SchemaVersion():
		return fmt.Errorf("postgres: database schema version %d is older than this binary's %d: run \"meridian migrate\"", v, SchemaVersion())
	}
	return nil
}

func newerSchema(v int32) error {
	return fmt.Errorf("postgres: database schema version %d is newer than this binary knows (%d): upgrade Meridian before using this database", v, SchemaVersion())
}

// isUndefinedTable reports PostgreSQL's undefined_table error (42P01).
func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

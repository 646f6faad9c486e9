package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Store returns a fresh database (NewDB) with Meridian's schema and the
// zones given in the YAML zone format applied, and a pool on it that is
// closed when the test ends.
func Store(t testing.TB, zoneYAML ...string) (string, *pgxpool.Pool) {
	t.Helper()
	url := NewDB(t)
	return url, fill(t, url, zoneYAML)
}

// fill migrates the database at url, applies the zones (YAML) to it and
// returns a pool on it, closed when t ends.
func fill(t testing.TB, url string, zoneYAML []string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatalf("pgtest: migrate: %v", err)
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(db.Close)
	var zs []*zones.Zone
	for _, y := range zoneYAML {
		z, err := zones.Parse([]byte(y), "test.yaml")
		if err != nil {
			t.Fatalf("pgtest: zone: %v", err)
		}
		zs = append(zs, z)
	}
	if len(zs) > 0 {
		if _, err := postgres.Apply(ctx, db, zs, postgres.ApplyOptions{}); err != nil {
			t.Fatalf("pgtest: apply: %v", err)
		}
	}
	return db
}

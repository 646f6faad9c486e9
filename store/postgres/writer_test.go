package postgres_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// TestConfigureWriter checks that a writer's sessions carry the idle
// timeout, and what it is for: a writer that stops talking in the middle
// of a transaction (cut off by the network) loses its session, and the
// version row it held, instead of holding up every other write. The URL
// sets a shorter timeout here, which ConfigureWriter keeps.
func TestConfigureWriter(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	connect := func(url string) *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		postgres.ConfigureWriter(cfg)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	var got string
	if err := connect(url).QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&got); err != nil || got != "5s" {
		t.Fatalf("idle_in_transaction_session_timeout %q, %v; want 5s", got, err)
	}

	short := url + "&idle_in_transaction_session_timeout=300"
	conn := connect(short)
	mustApply(t, conn, exampleZones(t), postgres.ApplyOptions{})
	stuck := connect(short)
	tx, err := stuck.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT version FROM meridian_version FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	// The stuck writer says nothing more; another writer gets through.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := postgres.SetAdmin(wctx, conn, "www.example.net.", netip.MustParseAddr("198.51.100.11"), zones.AdminDrain, "test", "test"); err != nil {
		t.Fatalf("a write behind a stuck writer: %v", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the write waited %v", waited)
	}
	if err := tx.Commit(ctx); err == nil {
		t.Error("the stuck writer's transaction survived")
	}
}

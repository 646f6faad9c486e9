package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// TestOwnPair checks that the standby is a hot standby of the primary:
// in recovery, streaming, read-only, and replaying what the primary
// commits, also after the primary restarts.
func TestOwnPair(t *testing.T) {
	t.Parallel()
	p := pgtest.OwnPair(t)
	primaryURL, standbyURL := p.DB(t)
	pc, sc := mustConnect(t, primaryURL), mustConnect(t, standbyURL)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		conn *pgx.Conn
		want int
	}{
		{"primary", pc, 0},
		{"standby", sc, 1},
	} {
		if n, err := queryInt(tc.conn, "SELECT pg_is_in_recovery()::int"); err != nil || n != tc.want {
			t.Errorf("%s in recovery: %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
	p.WaitStreaming(t)
	if _, err := sc.Exec(ctx, "CREATE TABLE nope (x int)"); err == nil {
		t.Error("the standby took a write")
	}
	if _, err := pc.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (41)"); err != nil {
		t.Fatal(err)
	}
	p.WaitReplayed(t)
	if n, err := queryInt(sc, "SELECT x FROM t"); err != nil || n != 41 {
		t.Errorf("standby reads %d, %v; want 41", n, err)
	}

	p.Primary.Stop(t)
	if n, err := queryInt(sc, "SELECT x FROM t"); err != nil || n != 41 {
		t.Errorf("with the primary down, the standby reads %d, %v; want 41", n, err)
	}
	p.Primary.Start(t)
	p.WaitStreaming(t)
	pc = mustConnect(t, primaryURL)
	if _, err := pc.Exec(ctx, "UPDATE t SET x = 42"); err != nil {
		t.Fatal(err)
	}
	p.WaitReplayed(t)
	if n, err := queryInt(sc, "SELECT x FROM t"); err != nil || n != 42 {
		t.Errorf("after the primary's restart, the standby reads %d, %v; want 42", n, err)
	}
}

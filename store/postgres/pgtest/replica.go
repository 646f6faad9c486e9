package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pair is a throwaway primary and a hot standby that streams from it
// (physical replication, as a regional replica of a fleet's database
// would). Both are Clusters of their own, so a test can stop the primary
// and watch the standby, or stop the standby.
type Pair struct {
	Primary, Standby *Cluster
}

// OwnPair starts a primary (durable, like OwnCluster) and a standby made
// from it with pg_basebackup -R, streaming from it. Both are removed when
// t ends. It works whether or not EnvURL is set: replication needs
// clusters of our own.
func OwnPair(t testing.TB) *Pair {
	t.Helper()
	p := &Pair{Primary: OwnCluster(t)}
	p.Standby = p.Primary.StandbyWith(t, Options{})
	return p
}

// newStandbyOpts copies primary with pg_basebackup (-R writes primary_conninfo
// and standby.signal, -X stream brings the WAL of the copy along) and
// starts the copy as a hot standby on a port of its own.
func newStandbyOpts(primary *Cluster, opts Options) (_ *Cluster, err error) {
	basebackup, err := findTool(primary.pgCtl, "pg_basebackup")
	if err != nil {
		return nil, err
	}
	c := &Cluster{pgCtl: primary.pgCtl, asPostgres: primary.asPostgres, opts: opts}
	if c.dir, err = os.MkdirTemp("", "meridian-pgtest-standby-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			if c.running {
				_ = c.stop()
			}
			os.RemoveAll(c.dir)
		}
	}()
	if c.asPostgres != nil {
		_, uid, gid, err := postgresUser()
		if err != nil {
			return nil, err
		}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	c.data = filepath.Join(c.dir, "data")
	c.logPath = filepath.Join(c.dir, "postgres.log")
	if out, err := c.run(basebackup, "-h", primary.host(), "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", c.data, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		return nil, fmt.Errorf("pgtest: pg_basebackup: %w\n%s", err, out)
	}
	// The copied postgresql.conf names the primary's socket directory;
	// settings appended later win. A standby that lost its primary tries
	// again every second rather than every five, so tests that restart
	// the primary see it stream again sooner.
	conf := fmt.Sprintf(`
# pgtest: the standby's own settings.
unix_socket_directories = '%s'
hot_standby = on
wal_retrieve_retry_interval = '1s'
listen_addresses = '%s'
%s`, strings.ReplaceAll(c.dir, "'", "''"), c.host(), opts.Conf)
	if err := appendFile(filepath.Join(c.data, "postgresql.conf"), conf); err != nil {
		return nil, err
	}
	if err := c.trustAddress(); err != nil {
		return nil, err
	}
	if err := c.startOnFreePort(); err != nil {
		return nil, err
	}
	return c, nil
}

// findTool finds a PostgreSQL program of the installation pgCtl belongs
// to: beside pg_ctl's resolved path (Debian links only some programs into
// PATH), then PATH, then /usr/lib/postgresql/*/bin.
func findTool(pgCtl, name string) (string, error) {
	if real, err := filepath.EvalSymlinks(pgCtl); err == nil {
		if p := filepath.Join(filepath.Dir(real), name); isExecutable(p) {
			return p, nil
		}
	}
	if p := filepath.Join(filepath.Dir(pgCtl), name); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("pgtest: %s not found beside %s, in PATH or in /usr/lib/postgresql/*/bin", name, pgCtl)
}

// DB creates a fresh, empty database on the primary and returns its URL
// on the primary and on the standby, once the standby has it too.
func (p *Pair) DB(t testing.TB) (primaryURL, standbyURL string) {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("pgtest_pair_%d_%d_%s", os.Getpid(), dbSeq.Add(1), hex.EncodeToString(rnd[:]))
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(p.Primary.URL(), "CREATE DATABASE "+ident+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	var err error
	if primaryURL, err = withDatabase(p.Primary.URL(), name); err != nil {
		t.Fatal(err)
	}
	if standbyURL, err = withDatabase(p.Standby.URL(), name); err != nil {
		t.Fatal(err)
	}
	p.WaitReplayed(t)
	return primaryURL, standbyURL
}

// Store is pgtest.Store on the pair: a fresh database on the primary with
// Meridian's schema and zoneYAML applied, replayed by the standby. The
// pool is on the primary, where writes go.
func (p *Pair) Store(t testing.TB, zoneYAML ...string) (primaryURL, standbyURL string, db *pgxpool.Pool) {
	t.Helper()
	primaryURL, standbyURL = p.DB(t)
	db = fill(t, primaryURL, zoneYAML)
	p.WaitReplayed(t)
	return primaryURL, standbyURL, db
}

// WaitReplayed waits until the standby has replayed everything the
// primary has written so far, bounded by the usual 30 s.
func (p *Pair) WaitReplayed(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := waitReplayed(ctx, p.Primary.URL(), p.Standby.URL()); err != nil {
		t.Fatalf("pgtest: %v\nlast lines of the standby's log %s:\n%s", err, p.Standby.logPath, p.Standby.logTail(20))
	}
}

func waitReplayed(ctx context.Context, primaryURL, standbyURL string) error {
	pc, err := pgx.Connect(ctx, primaryURL)
	if err != nil {
		return fmt.Errorf("connect to the primary: %w", err)
	}
	defer pc.Close(context.Background())
	var target string
	if err := pc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("primary's WAL position: %w", err)
	}
	sc, err := pgx.Connect(ctx, standbyURL)
	if err != nil {
		return fmt.Errorf("connect to the standby: %w", err)
	}
	defer sc.Close(context.Background())
	for {
		var done bool
		err := sc.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", target).Scan(&done)
		switch {
		case err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("standby's replay position: %w", err)
		case done:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the standby has not replayed the primary's WAL up to %s: %w", target, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitStreaming waits until the standby streams from the primary again
// (after the primary restarted, say).
func (p *Pair) WaitStreaming(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.Standby.URL())
	if err != nil {
		t.Fatalf("pgtest: connect to the standby: %v", err)
	}
	defer conn.Close(context.Background())
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*)::int FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&n); err == nil && n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgtest: the standby does not stream after %v\nlast lines of its log:\n%s", readyTimeout, p.Standby.logTail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

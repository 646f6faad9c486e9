package pgtest_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// connect opens a connection to url, bounded so that an outage fails fast.
func connect(t *testing.T, url string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := connect(t, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return conn
}

// queryInt runs a query returning one integer.
func queryInt(conn *pgx.Conn, sql string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	err := conn.QueryRow(ctx, sql).Scan(&n)
	return n, err
}

// queryURL connects to url and runs a query returning one integer.
func queryURL(t *testing.T, url, sql string) (int, error) {
	t.Helper()
	conn, err := connect(t, url)
	if err != nil {
		return 0, err
	}
	return queryInt(conn, sql)
}

// userTables counts the tables outside the system schemas.
const userTables = `SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`

func TestNewDBFreshAndSeparate(t *testing.T) {
	t.Parallel()
	a, b := pgtest.NewDB(t), pgtest.NewDB(t)
	if a == b {
		t.Fatalf("two NewDB calls returned the same URL %s", a)
	}
	ca, cb := mustConnect(t, a), mustConnect(t, b)
	ctx := context.Background()
	var na, nb string
	if err := ca.QueryRow(ctx, "SELECT current_database()").Scan(&na); err != nil {
		t.Fatal(err)
	}
	if err := cb.QueryRow(ctx, "SELECT current_database()").Scan(&nb); err != nil {
		t.Fatal(err)
	}
	if na == nb {
		t.Fatalf("both URLs lead to database %s", na)
	}
	for _, c := range []*pgx.Conn{ca, cb} {
		if n, err := queryInt(c, userTables); err != nil || n != 0 {
			t.Errorf("fresh database has %d tables (%v), want 0", n, err)
		}
	}
	if _, err := ca.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	if n, err := queryInt(ca, "SELECT sum(x)::int FROM t"); err != nil || n != 3 {
		t.Errorf("sum = %d (%v), want 3", n, err)
	}
	if n, err := queryInt(cb, userTables); err != nil || n != 0 {
		t.Errorf("a table in one database shows in the other: %d tables (%v)", n, err)
	}
}

// TestNewDBDropped checks that a test's database is gone after it, even
// with a connection left open.
func TestNewDBDropped(t *testing.T) {
	t.Parallel()
	var name, url string
	t.Run("user", func(t *testing.T) {
		url = pgtest.NewDB(t)
		conn, err := pgx.Connect(context.Background(), url) // deliberately never closed
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	other := pgtest.NewDB(t)
	n, err := queryURL(t, other, "SELECT count(*)::int FROM pg_database WHERE datname = '"+name+"'")
	if err != nil || n != 0 {
		t.Errorf("database %s still exists after its test (%d, %v)", name, n, err)
	}
}

// TestServerSettings checks the throwaway cluster's setup; with an
// external server only the loopback address can be relied on.
func TestServerSettings(t *testing.T) {
	t.Parallel()
	conn := mustConnect(t, pgtest.NewDB(t))
	local := os.Getenv(pgtest.EnvURL) == ""
	for _, tc := range []struct {
		sql, want string
		localOnly bool
	}{
		{"SELECT host(inet_server_addr())", "127.0.0.1", false},
		{"SHOW server_encoding", "UTF8", false},
		{"SHOW lc_collate", "C", false},
		{"SHOW listen_addresses", "127.0.0.1", true},
		{"SHOW fsync", "off", true},
		{"SHOW synchronous_commit", "off", true},
		{"SHOW full_page_writes", "off", true},
	} {
		if tc.localOnly && !local {
			continue
		}
		var got string
		if err := conn.QueryRow(context.Background(), tc.sql).Scan(&got); err != nil {
			t.Errorf("%s: %v", tc.sql, err)
		} else if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.sql, got, tc.want)
		}
	}
}

// TestOwnClusterStopStart checks that Stop cuts connections off and Start
// brings the same server, data included, back on the same URL.
func TestOwnClusterStopStart(t *testing.T) {
	t.Parallel()
	cl := pgtest.OwnCluster(t)
	url := cl.URL()
	conn := mustConnect(t, url)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}

	cl.Stop(t)
	if _, err := queryInt(conn, "SELECT 1"); err == nil {
		t.Error("a connection opened before Stop still works")
	}
	if _, err := queryURL(t, url, "SELECT 1"); err == nil {
		t.Error("connected to a stopped cluster")
	}

	cl.Start(t)
	if cl.URL() != url {
		t.Errorf("URL changed across a restart: %s, then %s", url, cl.URL())
	}
	if n, err := queryURL(t, url, "SELECT x FROM kept"); err != nil || n != 42 {
		t.Errorf("after Start: %d, %v; want 42", n, err)
	}
}

// TestOwnClusterIsDedicated checks that OwnCluster is local and separate
// from the server NewDB uses.
func TestOwnClusterIsDedicated(t *testing.T) {
	t.Parallel()
	cl := pgtest.OwnCluster(t)
	shared, err := pgx.ParseConfig(pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	own, err := pgx.ParseConfig(cl.URL())
	if err != nil {
		t.Fatal(err)
	}
	if own.Host != "127.0.0.1" || own.Port == shared.Port {
		t.Errorf("own cluster at %s:%d, shared server at %s:%d", own.Host, own.Port, shared.Host, shared.Port)
	}
}

func TestProxyCutRestore(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	purl := proxy.URL(url)
	before := mustConnect(t, purl)
	if n, err := queryInt(before, "SELECT 7"); err != nil || n != 7 {
		t.Fatalf("through the proxy: %d, %v", n, err)
	}

	proxy.Cut()
	for _, tc := range []struct {
		name string
		run  func() (int, error)
		ok   bool
	}{
		{"connection from before the cut", func() (int, error) { return queryInt(before, "SELECT 1") }, false},
		{"new connection through the proxy", func() (int, error) { return queryURL(t, purl, "SELECT 1") }, false},
		{"direct connection", func() (int, error) { return queryURL(t, url, "SELECT 1") }, true},
	} {
		_, err := tc.run()
		if tc.ok && err != nil {
			t.Errorf("while cut, %s: %v", tc.name, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("while cut, %s works", tc.name)
		}
	}

	proxy.Restore()
	if n, err := queryURL(t, purl, "SELECT 8"); err != nil || n != 8 {
		t.Errorf("after Restore: %d, %v", n, err)
	}
}

func TestProxyURL(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t, "127.0.0.1:1")
	host, port, err := net.SplitHostPort(proxy.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("proxy address %s (%v), want 127.0.0.1:port", proxy.Addr(), err)
	}
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@db.example:5432/d?sslmode=disable", "postgres://u@127.0.0.1:" + port + "/d?sslmode=disable"},
		{"postgresql://u:secret@10.0.0.1/d", "postgresql://u:secret@127.0.0.1:" + port + "/d"},
		{"postgres://u@db.example/d?host=other&port=1", "postgres://u@127.0.0.1:" + port + "/d"},
	} {
		if got := proxy.URL(tc.in); got != tc.want {
			t.Errorf("URL(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

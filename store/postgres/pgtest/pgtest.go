// Package pgtest runs tests against a real PostgreSQL. Every NewDB call
// gets a fresh, empty database of its own, so tests never share data and
// may run in parallel.
//
// The databases live on the server named by MERIDIAN_TEST_DATABASE_URL
// when it is set. Otherwise one throwaway cluster is started per test
// process on first use, from the initdb and pg_ctl of Debian's postgresql
// package, and Main stops it after the tests. OwnCluster and Proxy let
// tests simulate outages. Store gives a database with Meridian's schema
// and zones already in it.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDB(t) // postgres://...
//		...
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable with the URL of an existing
// server to create the test databases on. The role in it must be allowed
// to CREATE DATABASE.
const EnvURL = "MERIDIAN_TEST_DATABASE_URL"

// readyTimeout bounds starting a server and every administrative
// statement, so a broken setup fails the test rather than hanging it.
const readyTimeout = 30 * time.Second

var (
	mainCalled atomic.Bool

	sharedOnce sync.Once
	sharedMu   sync.Mutex // guards sharedC, which Main reads after m.Run
	sharedC    *Cluster
	sharedErr  error

	dbSeq atomic.Int64
)

// Main runs the tests and then stops the throwaway cluster, if any test
// started one, and exits. Call it from TestMain of every package that uses
// NewDB.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain with cleanup of its own.
func Run(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	sharedMu.Lock()
	c := sharedC
	sharedMu.Unlock()
	if c != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "pgtest: tests failed; last lines of the server log %s:\n%s\n", c.logPath, c.logTail(40))
		}
		if err := c.destroy(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// NewDB creates a fresh, empty database for t and returns its URL. The
// database is dropped, disconnecting whoever still uses it, when t ends.
func NewDB(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: NewDB needs the package's TestMain to call pgtest.Main(m), which stops the test server afterwards")
	}
	admin, c := adminURL(t)
	tail := func() string {
		if c == nil {
			return ""
		}
		return "\nlast lines of the server log " + c.logPath + ":\n" + c.logTail(30)
	}

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	// The pid and random part keep names unique across test processes
	// sharing one server, the sequence within this process.
	name := fmt.Sprintf("pgtest_%d_%d_%s", os.Getpid(), dbSeq.Add(1), hex.EncodeToString(rnd[:]))
	ident := pgx.Identifier{name}.Sanitize()

	// template0 is guaranteed empty and never has sessions that would
	// block the copy; the C locale makes ordering the same on every
	// server.
	create := "CREATE DATABASE " + ident + " TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
	if err := adminExec(admin, create); err != nil {
		t.Fatalf("pgtest: create database %s: %v%s", name, err, tail())
	}
	t.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v%s", name, err, tail())
		} else if t.Failed() && c != nil {
			t.Logf("pgtest: %s", strings.TrimPrefix(tail(), "\n"))
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// adminURL returns the URL to run CREATE/DROP DATABASE on and, when it
// belongs to the throwaway cluster, that cluster.
func adminURL(t testing.TB) (string, *Cluster) {
	t.Helper()
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Not echoed: it may hold a password.
			t.Fatalf("pgtest: %s must be a postgres:// URL", EnvURL)
		}
		return env, nil
	}
	sharedOnce.Do(func() {
		c, err := newCluster(false)
		sharedMu.Lock()
		sharedC, sharedErr = c, err
		sharedMu.Unlock()
	})
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedC.URL(), sharedC
}

// withDatabase returns base with its database replaced by name.
func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("pgtest: parse server URL: %w", err)
	}
	u.Path, u.RawPath = "/"+name, ""
	q := u.Query()
	q.Del("dbname") // would override the path
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// adminExec runs one statement on its own short-lived connection.
func adminExec(dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// Cluster is a throwaway PostgreSQL cluster listening on a loopback port,
// with everything (data, socket, log) in one temporary directory.
type Cluster struct {
	dir, data, logPath string
	pgCtl              string
	asPostgres         []string // command prefix running as the postgres user; nil when not root
	port               int
	opts               Options // where it runs: a network namespace, an address

	mu      sync.Mutex
	running bool
}

// OwnCluster starts a cluster dedicated to t, also when EnvURL is set, so
// that t can stop and start it to test outages. It is removed when t ends.
func OwnCluster(t testing.TB) *Cluster {
	t.Helper()
	return OwnClusterWith(t, Options{})
}

// URL returns the URL of the cluster's postgres database, as superuser
// postgres. It stays the same across Stop and Start.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", net.JoinHostPort(c.host(), strconv.Itoa(c.port)))
}

// Stop shuts the server down at once, dropping every connection, as a
// crash would.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		t.Fatal("pgtest: Stop: the cluster is not running")
	}
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
}

// Start starts the server again on the same port and data, and waits
// until it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		t.Fatal("pgtest: Start: the cluster is already running")
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// newCluster initializes and starts a cluster. Commits on a durable
// cluster survive Stop, which kills the server as a crash would; on
// another they may be lost, as synchronous_commit is off for speed.
func newCluster(durable bool) (*Cluster, error) {
	return newClusterOpts(durable, Options{})
}

// newClusterOpts is newCluster placed by opts.
func newClusterOpts(durable bool, opts Options) (_ *Cluster, err error) {
	initdb, pgCtl, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{pgCtl: pgCtl, opts: opts}
	var uid, gid int
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		if c.asPostgres, uid, gid, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if c.dir, err = os.MkdirTemp("", "meridian-pgtest-"); err != nil {
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
		if err := os.Chown(c.dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	c.data = filepath.Join(c.dir, "data")
	c.logPath = filepath.Join(c.dir, "postgres.log")

	// --no-sync: the data is thrown away, so durability only costs time.
	if out, err := c.run(initdb, "-D", c.data, "--auth=trust", "--username=postgres",
		"--encoding=UTF8", "--no-locale", "--no-sync"); err != nil {
		hint := ""
		if c.asPostgres != nil {
			hint = " (the postgres user must be able to reach " + c.dir + "; check TMPDIR)"
		}
		return nil, fmt.Errorf("pgtest: initdb%s: %w\n%s", hint, err, out)
	}
	// fsync is off either way: the server may crash in tests, the
	// machine may not, so the OS cache keeps what was written.
	syncCommit := "off"
	if durable {
		syncCommit = "on"
	}
	conf := fmt.Sprintf(`
# pgtest: loopback only, no durability against machine crashes.
listen_addresses = '%s'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = %s
full_page_writes = off
max_connections = 200
log_checkpoints = off
%s`, c.host(), strings.ReplaceAll(c.dir, "'", "''"), syncCommit, opts.Conf)
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

// startOnFreePort starts the server on a port picked free. The port is
// only known to be free when it is picked, so it retries when another
// process grabbed it before the server bound it.
func (c *Cluster) startOnFreePort() (err error) {
	for attempt := 1; ; attempt++ {
		if c.port, err = c.pickPort(); err != nil {
			return err
		}
		err = c.start()
		if err == nil || attempt == 3 || !strings.Contains(c.logTail(10), "could not bind") {
			return err
		}
	}
}

// start runs the server and waits until it accepts connections. The
// caller holds c.mu or owns c exclusively.
func (c *Cluster) start() error {
	deadline := time.Now().Add(readyTimeout)
	// The port goes on the command line so that newCluster can retry
	// with another one.
	out, err := c.run(c.pgCtl, "start", "-D", c.data, "-l", c.logPath, "-w",
		"-t", strconv.Itoa(int(readyTimeout/time.Second)), "-o", "-p "+strconv.Itoa(c.port))
	if err != nil {
		// pg_ctl may give up on a server that does come up later.
		_, _ = c.run(c.pgCtl, "stop", "-D", c.data, "-m", "immediate", "-w")
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\nlast lines of the server log %s:\n%s",
			err, out, c.logPath, c.logTail(30))
	}
	c.running = true
	if err := waitReady(c.URL(), deadline); err != nil {
		return fmt.Errorf("pgtest: server on port %d: %w\nlast lines of the server log %s:\n%s",
			c.port, err, c.logPath, c.logTail(30))
	}
	return nil
}

// stop stops the server without a shutdown checkpoint. The caller holds
// c.mu or owns c exclusively.
func (c *Cluster) stop() error {
	out, err := c.run(c.pgCtl, "stop", "-D", c.data, "-m", "immediate", "-w",
		"-t", strconv.Itoa(int(readyTimeout/time.Second)))
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s\nlast lines of the server log %s:\n%s",
			err, out, c.logPath, c.logTail(30))
	}
	c.running = false
	return nil
}

// destroy stops the server if it runs and removes its directory.
func (c *Cluster) destroy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.running {
		errs = append(errs, c.stop())
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("pgtest: remove cluster: %w", err))
	}
	return errors.Join(errs...)
}

// run runs a PostgreSQL program, as the postgres user when we are root.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	var argv []string
	if c.opts.Netns != "" {
		argv = []string{"ip", "netns", "exec", c.opts.Netns}
	}
	argv = append(append(argv, c.asPostgres...), prog)
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// Our working directory may be unreadable for the postgres user.
	cmd.Dir = c.dir
	cmd.Env = childEnv()
	// The server gets the log file, not our pipe; should anything keep
	// the pipe open anyway, do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// childEnv is our environment without libpq's PG* variables, which could
// point the programs at another server or data directory.
func childEnv() []string {
	env := []string{"LC_ALL=C"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return env
}

// logTail returns the last n lines of the server log.
func (c *Cluster) logTail(n int) string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	defer f.Close()
	const limit = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		_, _ = f.Seek(-limit, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady connects to dbURL until it answers or deadline passes.
func waitReady(dbURL string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, dbURL)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections after %v: %w", readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// findBinaries returns initdb and pg_ctl of one installation: from PATH,
// else from the newest /usr/lib/postgresql/*/bin, where Debian puts them.
// pg_ctl finds the postgres binary next to its own resolved path.
func findBinaries() (initdb, pgCtl string, err error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if c := filepath.Join(filepath.Dir(p), "pg_ctl"); isExecutable(c) {
			return p, c, nil
		}
		if c, err := exec.LookPath("pg_ctl"); err == nil {
			return p, c, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // newest first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, d := range dirs {
		i, c := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(i) && isExecutable(c) {
			return i, c, nil
		}
	}
	return "", "", errors.New("pgtest: initdb and pg_ctl not found in PATH or /usr/lib/postgresql/*/bin: " +
		"install Debian's postgresql package (scripts/test.sh does), or set " + EnvURL +
		" to a server where the tests may create databases")
}

// compareVersions compares dotted numeric versions such as 9.6 and 15.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// postgresUser returns a command prefix that runs a program as the
// postgres system user (created by Debian's postgresql package), and that
// user's ids.
func postgresUser() (prefix []string, uid, gid int, err error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("pgtest: running as root, which PostgreSQL refuses, and there is no postgres user to run it as "+
			"(install Debian's postgresql package, or set %s): %w", EnvURL, err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return nil, 0, 0, fmt.Errorf("pgtest: uid of postgres: %w", err)
	}
	if gid, err = strconv.Atoi(u.Gid); err != nil {
		return nil, 0, 0, fmt.Errorf("pgtest: gid of postgres: %w", err)
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return []string{p, "-u", "postgres", "--"}, uid, gid, nil
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		return []string{p, "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}, uid, gid, nil
	}
	return nil, 0, 0, errors.New("pgtest: running as root, which PostgreSQL refuses, and neither runuser nor setpriv (util-linux) is there to switch to the postgres user")
}

// freePort returns a loopback TCP port that is free right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: pick a port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// connect opens url for the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// queryInt returns the one integer that sql selects.
func queryInt(t *testing.T, url, sql string) int64 {
	t.Helper()
	var n int64
	if err := connect(t, url).QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func prune(t *testing.T, url string, keep time.Duration) postgres.PruneResult {
	t.Helper()
	res, err := postgres.PruneChanges(context.Background(), connect(t, url), keep)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// logBuffer is a store's log, kept for the test to search and shown with
// the test's output.
type logBuffer struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", strings.TrimSpace(string(p)))
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func logged(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{t: t}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

// TestPruneChanges checks what pruning deletes: changes older than the
// window, never those within it, and never the newest version's.
func TestPruneChanges(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	// Changes from days ago, as a database that has run for a while holds
	// them: a version is the time of its change in microseconds.
	daysAgo := func(d int) string {
		return "(extract(epoch FROM now() - interval '" + strconv.Itoa(d) + " days') * 1000000)::bigint"
	}
	for _, d := range []int{10, 9, 8, 6} {
		exec(t, url, "INSERT INTO changes (version, zone_id, at) SELECT "+daysAgo(d)+", id, now() - interval '"+strconv.Itoa(d)+" days' FROM zones")
	}
	recent := queryInt(t, url, "SELECT count(*) FROM changes WHERE at > now() - interval '1 hour'")

	if _, err := postgres.PruneChanges(context.Background(), connect(t, url), 0); err == nil {
		t.Error("a prune keeping nothing was accepted")
	}
	week := 7 * 24 * time.Hour
	res := prune(t, url, week)
	if res.Deleted != 6 {
		t.Errorf("deleted %d rows, want the 6 older than a week", res.Deleted)
	}
	lo, hi := queryInt(t, url, "SELECT "+daysAgo(8)), queryInt(t, url, "SELECT "+daysAgo(6))
	if res.PrunedThrough < lo || res.PrunedThrough >= hi {
		t.Errorf("pruned through %d, want between 8 days ago (%d) and 6 (%d)", res.PrunedThrough, lo, hi)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM changes"); n != recent+2 {
		t.Errorf("%d rows left, want the %d recent ones and the 2 of 6 days ago", n, recent)
	}
	c, err := postgres.ReadChangeLog(context.Background(), connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	if c.PrunedThrough != res.PrunedThrough || c.PrunedAt.IsZero() || c.Rows != recent+2 || c.Oldest < lo || c.Oldest >= hi {
		t.Errorf("change log after the prune: %+v", c)
	}

	// Again: nothing more is old enough.
	if res2 := prune(t, url, week); res2.Deleted != 0 || res2.PrunedThrough < res.PrunedThrough {
		t.Errorf("second prune: %+v after %+v", res2, res)
	}
	// A longer window never lowers the watermark.
	if res3 := prune(t, url, 30*24*time.Hour); res3.PrunedThrough < res.PrunedThrough {
		t.Errorf("a longer window lowered the watermark: %+v after %+v", res3, res)
	}

	// The smallest window still keeps the newest version.
	version := queryInt(t, url, "SELECT version FROM meridian_version")
	res = prune(t, url, time.Microsecond)
	if res.PrunedThrough != version-1 {
		t.Errorf("pruned through %d, want %d: all but the newest version", res.PrunedThrough, version-1)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM changes WHERE version <> "+strconv.FormatInt(version, 10)); n != 0 {
		t.Errorf("%d rows of older versions left", n)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM changes"); n == 0 {
		t.Error("the newest version's rows were pruned")
	}
}

// TestLoadAfterPrune checks that a store whose version was pruned out of
// the change log reloads every zone, and so serves changes whose rows are
// gone, without taking that for a restored database; and that a store
// above the watermark goes on reading only the zones that changed.
func TestLoadAfterPrune(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	addZone(t, url, "c.example.", "192.0.2.3")
	logger, log := logged(t)
	behind := newStore(t, postgres.Options{URL: url, Logger: logger})
	v := load(t, behind)
	current := newStore(t, postgres.Options{URL: url})

	// While behind is away, a.example. and then b.example. change, and
	// the log is pruned of all but the last change (b.example.'s): had
	// behind followed the log from its version, a.example. would stay
	// as it was.
	exec(t, url, "UPDATE records SET rdata = '192.0.2.10' WHERE name = 'www.a.example.'")
	exec(t, url, "UPDATE records SET rdata = '192.0.2.20' WHERE name = 'www.b.example.'")
	before := load(t, current)
	res := prune(t, url, time.Microsecond)
	if res.PrunedThrough < int64(v.Version) {
		t.Fatalf("pruned through %d, not past the store's version %d", res.PrunedThrough, v.Version)
	}

	d := load(t, behind)
	if a, b := wwwOf(d, "a.example."), wwwOf(d, "b.example."); a != "192.0.2.10" || b != "192.0.2.20" {
		t.Errorf("after the prune: a %s, b %s; want 192.0.2.10 and 192.0.2.20", a, b)
	}
	if behind.Diverged() {
		t.Error("a pruned change log was taken for a diverged database")
	}
	if out := log.String(); !strings.Contains(out, "pruned past the version served") || strings.Contains(out, "diverged") {
		t.Errorf("log:\n%s", out)
	}
	if d.Version != before.Version {
		t.Errorf("version %d, want %d", d.Version, before.Version)
	}

	// The store that kept up is above the watermark (the newest version is
	// never pruned): the next change is read from the log, and the zones
	// that did not change are not reread.
	exec(t, url, "UPDATE records SET rdata = '192.0.2.30' WHERE name = 'www.c.example.'")
	after := load(t, current)
	if wwwOf(after, "c.example.") != "192.0.2.30" || current.Diverged() {
		t.Errorf("after the next change: c %s, diverged %v", wwwOf(after, "c.example."), current.Diverged())
	}
	if zoneOf(after, "a.example.") != zoneOf(before, "a.example.") {
		t.Error("a.example. was reread though the store was above the watermark")
	}
}

// TestRestoreAfterPrune is TestRestoreUnnoticed on a database whose change
// log has been pruned: below the server's version, so the missing change
// still means another history.
func TestRestoreAfterPrune(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	prune(t, url, time.Microsecond)
	logger, log := logged(t)
	s := newStore(t, postgres.Options{URL: url, Logger: logger})
	backup := load(t, s)
	watermark := queryInt(t, url, "SELECT pruned_through FROM change_log")
	if watermark == 0 || watermark >= int64(backup.Version) {
		t.Fatalf("watermark %d, want below the version %d", watermark, backup.Version)
	}
	exec(t, url, "UPDATE records SET rdata = '192.0.2.10' WHERE name = 'www.a.example.'")
	load(t, s)
	exec(t, url,
		"SET LOCAL session_replication_role = replica",
		"UPDATE records SET rdata = '192.0.2.1' WHERE name = 'www.a.example.'",
		"DELETE FROM changes WHERE version > "+strconv.FormatUint(backup.Version, 10),
		"UPDATE meridian_version SET version = "+strconv.FormatUint(backup.Version, 10),
		"UPDATE change_log SET pruned_through = "+strconv.FormatInt(watermark, 10),
	)
	exec(t, url, "UPDATE records SET rdata = '192.0.2.20' WHERE name = 'www.b.example.'")
	d := load(t, s)
	if a, b := wwwOf(d, "a.example."), wwwOf(d, "b.example."); a != "192.0.2.1" || b != "192.0.2.20" {
		t.Errorf("after an unnoticed restore: a %s, b %s; want the database's 192.0.2.1 and 192.0.2.20", a, b)
	}
	if out := log.String(); !strings.Contains(out, "diverged") || strings.Contains(out, "pruned past") {
		t.Errorf("the restore was not reported as a divergence:\n%s", out)
	}
}

// TestConcurrentPrunes runs prunes side by side, with writes going on:
// each succeeds, together they delete each old row once, and no change
// within the window is lost.
func TestConcurrentPrunes(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	exec(t, url, "INSERT INTO changes (version, zone_id, at) SELECT (extract(epoch FROM now() - interval '30 days') * 1000000)::bigint + g, 1, now() - interval '30 days' FROM generate_series(1, 5000) g")
	// A writer beside the prunes, counting its changes.
	stop := make(chan struct{})
	type written struct {
		n   int64
		err error
	}
	writes := make(chan written, 1)
	go func() {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			writes <- written{err: err}
			return
		}
		defer conn.Close(context.Background())
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				writes <- written{n: i}
				return
			default:
			}
			if _, err := conn.Exec(context.Background(), "UPDATE records SET ttl = $1 WHERE name = 'www.a.example.'", 60+i); err != nil {
				writes <- written{err: err}
				return
			}
		}
	}()
	var wg sync.WaitGroup
	results := make([]postgres.PruneResult, 8)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() {
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close(context.Background())
			results[i], errs[i] = postgres.PruneChanges(context.Background(), conn, 24*time.Hour)
		})
	}
	wg.Wait()
	close(stop)
	w := <-writes
	if w.err != nil {
		t.Fatalf("write beside the prunes: %v", w.err)
	}
	var deleted int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("prune %d: %v", i, err)
		}
		deleted += results[i].Deleted
	}
	if deleted != 5000 {
		t.Errorf("the prunes deleted %d rows together, want 5000", deleted)
	}
	if n := queryInt(t, url, "SELECT count(*) FROM changes WHERE at < now() - interval '1 day'"); n != 0 {
		t.Errorf("%d old rows left", n)
	}
	// The zone's addition and every write since are still in the log.
	if n := queryInt(t, url, "SELECT count(*) FROM changes"); n != 1+w.n {
		t.Errorf("%d rows left in the log, want %d: the addition and %d writes", n, 1+w.n, w.n)
	}
}

// TestPruneChangeLog runs a store's pruning loop: its first pass comes at
// once and is counted.
func TestPruneChangeLog(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	exec(t, url, "INSERT INTO changes (version, zone_id, at) VALUES (1, 1, now() - interval '1 year'), (2, 1, now() - interval '1 year')")
	logger, log := logged(t)
	s := newStore(t, postgres.Options{URL: url, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.PruneChangeLog(ctx, time.Hour, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "a prune", 10*time.Second, func() bool { return s.PruneStats().OK > 0 })
	if st := s.PruneStats(); st.Deleted != 2 || st.Failed != 0 {
		t.Errorf("stats %+v, want 2 rows deleted", st)
	}
	if !strings.Contains(log.String(), "Change log pruned") {
		t.Errorf("log:\n%s", log.String())
	}

	// A database it cannot reach is a failed pass, not the end.
	bad := newStore(t, postgres.Options{URL: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	bctx, bcancel := context.WithCancel(context.Background())
	bdone := make(chan struct{})
	go func() { bad.PruneChangeLog(bctx, time.Hour, time.Hour); close(bdone) }()
	t.Cleanup(func() { bcancel(); <-bdone })
	waitFor(t, "a failed prune", 10*time.Second, func() bool { return bad.PruneStats().Failed > 0 })
}

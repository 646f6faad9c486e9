package main

// End-to-end fault tests (issue "Hardening: faults"): real processes, real
// PostgreSQL, real files, faults injected while they serve.
//
//   - TestE2EFaultPostgresOutage: the database crashes and comes back under
//     steady UDP query load; no query may fail, be answered wrongly or late;
//     meridianctl fails cleanly and changes nothing while it is down; a
//     change made after it returns reaches the server.
//   - TestE2EFaultCheckerKilled: one of two checkers is SIGKILLed; the
//     survivor's verdict takes a failing backend out; the killed checker,
//     restarted under its id, lost nothing and flips nothing.
//   - TestE2EFaultGeoIPCorrupt: truncated and corrupt GeoIP files swapped in
//     are refused with a log line naming the file and the error; answers
//     keep using the old database.
//   - TestE2EFaultZoneReload: zone files broken on reload (file watch and
//     SIGHUP): the old snapshot keeps serving, the log says file:line why,
//     and the fixed file is served.
//
// Every wait is bounded; all traffic goes to loopback addresses.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// loadQuery is a query of the load generator and what its answer must be.
type loadQuery struct {
	name  string
	qtype uint16
	check func(*dns.Msg) error // nil error: the answer is right
}

// loadStats counts the outcome of every query the load generator sent.
type loadStats struct {
	sent, ok, failed, wrong, late atomic.Int64

	mu       sync.Mutex
	rtts     []time.Duration
	problems []string // the first few failures, for the log
}

func (s *loadStats) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 10 {
		s.problems = append(s.problems, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// percentile returns the p-th percentile (0 < p <= 1) of the round trips.
func (s *loadStats) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rtts) == 0 {
		return 0
	}
	r := slices.Clone(s.rtts)
	slices.Sort(r)
	return r[min(len(r)-1, int(float64(len(r))*p))]
}

// udpLoad sends queries to addr over UDP from workers goroutines, each with
// its own socket and one query every interval, until ctx is done. Every
// query has deadline to be answered; a reply after it counts as late (it
// arrives, if ever, as a stale reply that the next exchange skips by ID).
// The returned function waits for the workers.
func udpLoad(ctx context.Context, addr string, workers int, interval, deadline time.Duration, queries []loadQuery, s *loadStats) (wait func()) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := &dns.Client{Net: "udp", Timeout: deadline}
			conn, err := c.Dial(addr)
			if err != nil {
				s.failed.Add(1)
				s.problem("worker %d: dial: %v", w, err)
				return
			}
			defer conn.Close()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			var rtts []time.Duration
			defer func() {
				s.mu.Lock()
				s.rtts = append(s.rtts, rtts...)
				s.mu.Unlock()
			}()
			for i := w; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				q := queries[i%len(queries)]
				m := new(dns.Msg)
				m.SetQuestion(q.name, q.qtype)
				s.sent.Add(1)
				r, rtt, err := c.ExchangeWithConn(m, conn)
				var nerr net.Error
				switch {
				case errors.As(err, &nerr) && nerr.Timeout():
					s.late.Add(1)
					s.problem("%s: no answer within %v", q.name, deadline)
				case err != nil:
					s.failed.Add(1)
					s.problem("%s: %v", q.name, err)
				case rtt > deadline:
					s.late.Add(1)
					s.problem("%s: answered after %v", q.name, rtt)
				default:
					rtts = append(rtts, rtt)
					if err := q.check(r); err != nil {
						s.wrong.Add(1)
						s.problem("%s: %v", q.name, err)
					} else {
						s.ok.Add(1)
					}
				}
			}
		})
	}
	return wg.Wait
}

// answerA returns the addresses of the A records of r's answer, sorted.
func answerA(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// wantA checks an authoritative NOERROR answer with exactly the addresses want.
func wantA(want ...string) func(*dns.Msg) error {
	slices.Sort(want)
	return func(r *dns.Msg) error {
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return fmt.Errorf("rcode %s aa %v, want NOERROR with aa", dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		if got := answerA(r); !slices.Equal(got, want) {
			return fmt.Errorf("A %v, want %v", got, want)
		}
		return nil
	}
}

// wantNXDOMAIN checks an authoritative NXDOMAIN with the SOA in authority.
func wantNXDOMAIN(r *dns.Msg) error {
	if r.Rcode != dns.RcodeNameError || !r.Authoritative || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
		return fmt.Errorf("rcode %s aa %v authority %v, want NXDOMAIN with aa and the SOA", dns.RcodeToString[r.Rcode], r.Authoritative, r.Ns)
	}
	return nil
}

// ask sends one query to 127.0.0.1:port.
func ask(port, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, net.JoinHostPort("127.0.0.1", port))
	return r, err
}

// ctlRun runs meridianctl against url and returns its combined output and
// exit status; unlike meridianctl it does not require success.
func ctlRun(t *testing.T, url string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, otherBinary(t, "meridianctl"), append(args, "--database", url)...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("meridianctl %s: %v\n%s", strings.Join(args, " "), err, out)
		return "", -1
	}
}

// pgRow runs one query on a connection of its own and scans its row.
func pgRow(url, sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

func mustPGRow(t *testing.T, url, sql string, args []any, dest ...any) {
	t.Helper()
	if err := pgRow(url, sql, args, dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// writeAtomic replaces path by a file holding data, by rename as editors,
// config management and geoipupdate do, so that no reader sees it half
// written.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// httpBase waits for the server's HTTP listener and returns its base URL.
func (m *meridian) httpBase(t *testing.T) string {
	t.Helper()
	line := m.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return l.Msg == "HTTP listening" })
	addr, _ := line.attrs["address"].(string)
	return "http://" + addr
}

// metric returns the value of series on the server's /metrics.
func metric(t *testing.T, base, series string) string {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	return metricValue(body, series)
}

// waitMetric waits until series has the value want, for at most 10s.
func waitMetric(t *testing.T, base, series, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, base, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q after 10s, want %q", series, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var goPanicRE = regexp.MustCompile(`panic:|goroutine \d+ \[|runtime error`)

// TestE2EFaultPostgresOutage crashes the database (pg_ctl stop -m
// immediate) under a steady UDP query load, keeps it down for a while,
// and starts it again. Every query of the whole run must be answered,
// rightly and within its deadline. While the database is down,
// meridianctl fails with a clear error and changes nothing; once it is
// back, the server says so (log, meridian_store_up) with nothing changed
// meanwhile, and a change made with meridianctl reaches it. (The server
// used to stay "unreachable" here: its first load after the crash reused
// the dead load connection, failed, and nothing retried; see Load in
// store/postgres/store.go.)
func TestE2EFaultPostgresOutage(t *testing.T) {
	requireDig(t)
	const (
		workers  = 4
		interval = 2 * time.Millisecond // per worker: about 2,000 queries/s in all
		deadline = 200 * time.Millisecond
		downFor  = 2500 * time.Millisecond
	)
	cluster := pgtest.OwnCluster(t)
	url := cluster.URL()
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	applyExamples(t, url, nil)
	otherBinary(t, "meridianctl") // built before the clock matters

	dir := t.TempDir()
	cache := filepath.Join(dir, "meridian.cache.json")
	m := startMeridian(t, dir, []string{"MERIDIAN_STORE_CACHE_FILE=" + cache},
		"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--database", url)
	base := m.httpBase(t)
	m.waitDig(t, "server answers", isNOERROR, "www.example.com", "A")
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("cache file not written after the first load: %v", err)
	}
	var before int64
	mustPGRow(t, url, "SELECT version FROM meridian_version", nil, &before)

	// The endpoint an operator will try to drain while the database is
	// down: it is in the answer without GeoIP (us-east comes first).
	const drained = "198.51.100.11"
	pool := []string{"198.51.100.11", "198.51.100.12", "198.51.100.21", "198.51.100.22"}
	queries := []loadQuery{
		{"www.example.com.", dns.TypeA, wantA("192.0.2.10")},
		{"www.example.net.", dns.TypeA, wantA(pool...)},
		{"nope.example.com.", dns.TypeA, wantNXDOMAIN},
		{"mail.example.net.", dns.TypeA, wantA("198.51.100.25")},
	}
	for _, q := range queries {
		r, err := ask(m.port, q.name, q.qtype)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.check(r); err != nil {
			t.Fatalf("before the outage, %s: %v", q.name, err)
		}
	}

	var stats loadStats
	ctx, stopLoad := context.WithCancel(context.Background())
	wait := udpLoad(ctx, net.JoinHostPort("127.0.0.1", m.port), workers, interval, deadline, queries, &stats)
	loadStopped := false
	finish := func() {
		if !loadStopped {
			loadStopped = true
			stopLoad()
			wait()
		}
	}
	defer finish()
	loadStart := time.Now()
	time.Sleep(500 * time.Millisecond) // some load before the crash

	// The crash.
	sentAtStop := stats.sent.Load()
	from := m.nextLogIndex()
	stopped := time.Now()
	cluster.Stop(t)
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
		return l.Level == "ERROR" && strings.HasPrefix(l.Msg, "PostgreSQL unreachable")
	})
	waitMetric(t, base, "meridian_store_up", "0")

	// meridianctl fails at once, clearly, and changes nothing.
	outageZone := filepath.Join(dir, "outage", "example.com.zone")
	orig, err := os.ReadFile(filepath.Join("..", "..", "examples", "example.com.zone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(outageZone), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outageZone, append(slices.Clone(orig), "outage\tIN\tA\t192.0.2.198\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	pgConfig, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	pgAddr := net.JoinHostPort(pgConfig.Host, fmt.Sprint(pgConfig.Port))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"drain", []string{"drain", "--pool", "www.example.net", "--address", drained, "--reason", "outage test"}},
		{"apply", []string{"apply", "-f", outageZone}},
	} {
		t.Run("meridianctl "+tc.name+" while down", func(t *testing.T) {
			start := time.Now()
			out, code := ctlRun(t, url, tc.args...)
			took := time.Since(start)
			t.Logf("meridianctl %s: exit %d after %v: %s", tc.name, code, took.Round(time.Millisecond), strings.TrimSpace(out))
			if code == 0 {
				t.Fatalf("meridianctl %s succeeded with the database down:\n%s", tc.name, out)
			}
			if goPanicRE.MatchString(out) {
				t.Errorf("meridianctl %s panicked:\n%s", tc.name, out)
			}
			for _, want := range []string{"meridianctl " + tc.name + ":", "connect", pgAddr, "connection refused"} {
				if !strings.Contains(out, want) {
					t.Errorf("meridianctl %s: output lacks %q:\n%s", tc.name, want, out)
				}
			}
			if n := strings.Count(strings.TrimSpace(out), "\n"); n > 2 {
				t.Errorf("meridianctl %s: %d lines of output, want a short message:\n%s", tc.name, n+1, out)
			}
			if took > 10*time.Second {
				t.Errorf("meridianctl %s took %v to give up on a refused connection", tc.name, took)
			}
		})
	}

	// Down for a while, then back.
	time.Sleep(time.Until(stopped.Add(downFor)))
	sentAtRestart := stats.sent.Load()
	from = m.nextLogIndex()
	cluster.Start(t)
	restarted := time.Now()
	m.waitLog(t, from, 15*time.Second, func(l logLine) bool { return l.Msg == "PostgreSQL reachable again" })
	t.Logf("database down %v; server reconnected %v after it started", restarted.Sub(stopped).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	waitMetric(t, base, "meridian_store_up", "1")
	waitMetric(t, base, "meridian_store_synced", "1")

	// Nothing changed: the version, the endpoint, the audit log, the zone.
	var after int64
	mustPGRow(t, url, "SELECT version FROM meridian_version", nil, &after)
	if after != before {
		t.Errorf("data version moved from %d to %d through the failed commands", before, after)
	}
	var admin string
	var audits, outageRecords int
	mustPGRow(t, url, "SELECT admin_state FROM endpoints WHERE address = $1", []any{drained}, &admin)
	mustPGRow(t, url, "SELECT count(*) FROM admin_audit", nil, &audits)
	mustPGRow(t, url, "SELECT count(*) FROM records WHERE name LIKE 'outage.%'", nil, &outageRecords)
	if admin != "active" || audits != 0 || outageRecords != 0 {
		t.Errorf("after the failed commands: %s is %s, %d audit entries, %d outage records; want active, 0, 0", drained, admin, audits, outageRecords)
	}
	if out := meridianctl(t, url, "endpoints", "--pool", "www.example.net"); !regexp.MustCompile(`(?m)^\S+\s+` + regexp.QuoteMeta(drained) + `\s+\S+\s+\d+\s+active\s`).MatchString(out) {
		t.Errorf("meridianctl endpoints does not show %s active:\n%s", drained, out)
	}
	if r := m.mustDig(t, "www.example.net", "A"); !slices.Contains(data(r.Answer, "A"), drained) {
		t.Errorf("%s no longer served after a drain that failed:\n%s", drained, r.Raw)
	}
	if r := m.mustDig(t, "outage.example.com", "A"); r.Status != "NXDOMAIN" {
		t.Errorf("outage.example.com after an apply that failed: %s", r.Raw)
	}

	// A change made now reaches the server, under load still.
	fixed := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(fixed, append(slices.Clone(orig), "caughtup\tIN\tA\t192.0.2.199\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	meridianctl(t, url, "apply", "-f", fixed)
	applied := time.Now()
	var catchUp time.Duration
	for {
		r, err := ask(m.port, "caughtup.example.com", dns.TypeA)
		if err == nil && slices.Equal(answerA(r), []string{"192.0.2.199"}) {
			catchUp = time.Since(applied)
			break
		}
		if time.Since(applied) > 10*time.Second {
			t.Fatalf("the change applied after the outage is not served after 10s (last: %v %v)", r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the load goes on over the new snapshot
	finish()
	loadTime := time.Since(loadStart)

	// The cache file follows the database.
	deadlineCache := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(cache)
		if strings.Contains(string(b), "caughtup") {
			break
		}
		if time.Now().After(deadlineCache) {
			t.Errorf("cache file %s lacks the change made after the outage", cache)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	sent, ok := stats.sent.Load(), stats.ok.Load()
	failed, wrong, late := stats.failed.Load(), stats.wrong.Load(), stats.late.Load()
	during := sentAtRestart - sentAtStop
	t.Logf("load: %d queries in %v (%.0f/s), %d during the %v outage; ok %d, failed %d, wrong %d, late (>%v) %d; latency p50 %v p99 %v max %v; catch-up after the outage %v",
		sent, loadTime.Round(time.Millisecond), float64(sent)/loadTime.Seconds(), during, downFor, ok, failed, wrong, deadline, late,
		stats.percentile(0.5), stats.percentile(0.99), stats.percentile(1), catchUp.Round(time.Millisecond))
	if failed+wrong+late != 0 || ok != sent {
		t.Errorf("%d failed, %d wrong, %d late of %d queries; first problems:\n%s", failed, wrong, late, sent, strings.Join(stats.problems, "\n"))
	}
	if during < 200 {
		t.Errorf("only %d queries during the outage: the load did not cover it", during)
	}
	m.stop(t)
}

// checkerState is a checker's row and its verdicts, from the database.
type checkerState struct {
	exists, dead bool
	started      time.Time
	verdicts     map[string]string // endpoint address -> up/down
}

func readChecker(t *testing.T, url, id string) checkerState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s := checkerState{verdicts: map[string]string{}}
	err = conn.QueryRow(ctx, "SELECT dead_since IS NOT NULL, started_at FROM checkers WHERE id = $1", id).Scan(&s.dead, &s.started)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return s
	case err != nil:
		t.Fatal(err)
	}
	s.exists = true
	rows, err := conn.Query(ctx, `SELECT host(e.address), v.state FROM probe_verdicts v JOIN endpoints e ON e.id = v.endpoint_id
		WHERE v.checker_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	var addr, state string
	if _, err := pgx.ForEachRow(rows, []any{&addr, &state}, func() error { s.verdicts[addr] = state; return nil }); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitChecker waits until ok accepts checker id's state, for at most 10s.
func waitChecker(t *testing.T, url, id, what string, ok func(checkerState) bool) checkerState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := readChecker(t, url, id)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("checker %s: %s: not after 10s: %+v", id, what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quorumTransitions counts the changes of the effective health of addr.
func quorumTransitions(t *testing.T, url, addr string) int {
	t.Helper()
	var n int
	mustPGRow(t, url, `SELECT count(*) FROM health_transitions h JOIN endpoints e ON e.id = h.endpoint_id
		WHERE h.checker_id = 'quorum' AND host(e.address) = $1`, []any{addr}, &n)
	return n
}

// TestE2EFaultCheckerKilled runs two checkers on one database and kills
// one with SIGKILL. The survivor alone takes a failing backend out of the
// answers. The killed checker, restarted under the same id, finds its row
// and verdicts, counts again, and causes no transition: the answers stay
// right throughout.
func TestE2EFaultCheckerKilled(t *testing.T) {
	requireDig(t)
	bs, port := backends(t, 3)
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// any: the quorum a stale verdict would mislead most. With one
	// checker left, its verdict alone decides once the other is found
	// dead; the restarted checker's old "up" must not bring .12 back.
	zone := strings.Replace(checkedZone("faults.test.", port, 3), "  - name: www\n", "  - name: www\n    quorum: any\n", 1)
	path := filepath.Join(dir, "faults.test.yaml")
	if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	meridianctl(t, url, "apply", "-f", path)
	c1 := checkerProcess(t, url, "c1")
	checkerProcess(t, url, "c2")
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	all := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	up := []string{"127.0.0.11", "127.0.0.13"}
	answers := func(want []string) func(*digResult) bool {
		return func(r *digResult) bool {
			a := data(r.Answer, "A")
			slices.Sort(a)
			return slices.Equal(a, want)
		}
	}
	m.waitDig(t, "three endpoints", answers(all), "www.faults.test", "A")
	allUp := func(s checkerState) bool {
		return len(s.verdicts) == 3 && s.verdicts["127.0.0.11"] == "up" && s.verdicts["127.0.0.12"] == "up" && s.verdicts["127.0.0.13"] == "up"
	}
	first := waitChecker(t, url, "c1", "all endpoints judged up", allUp)
	waitChecker(t, url, "c2", "all endpoints judged up", allUp)

	// SIGKILL: no goodbye, the row stays as it was.
	if err := c1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// .12's health URL fails: c2 alone takes it out once the sweep has
	// found c1 dead (until then c1's last "up" still counts, as it
	// should for a checker that may only be late).
	bs[1].up.Store(false)
	m.waitDig(t, ".12 leaves on the survivor's verdict", answers(up), "www.faults.test", "A")
	t.Logf("failing backend out of the answers %v after the kill (fall 2 x 200ms)", time.Since(killed).Round(time.Millisecond))
	dead := waitChecker(t, url, "c1", "swept dead by c2", func(s checkerState) bool { return s.dead })
	t.Logf("killed checker found dead %v after SIGKILL (heartbeat 300ms, ttl 3 heartbeats)", time.Since(killed).Round(time.Millisecond))
	// Nothing of c1 was lost: its row and its verdicts (as they were when
	// it died) are there.
	if !dead.exists || !dead.started.Equal(first.started) || !allUp(dead) {
		t.Errorf("after the kill, c1's state is %+v; want its row (started %v) and its three up verdicts kept", dead, first.started)
	}
	if out := meridianctl(t, url, "endpoints", "--pool", "www.faults.test"); !regexp.MustCompile(`127\.0\.0\.12\s.*\sdown\s.*any: 1 of 1 checkers say down: body lacks "UP"`).MatchString(out) {
		t.Errorf("meridianctl endpoints does not show .12 down by c2 alone:\n%s", out)
	}
	transitions := quorumTransitions(t, url, "127.0.0.12")

	// Restart c1 under its id, and watch the answers meanwhile: they must
	// stay {.11, .13} throughout, though c1 comes back with a stale "up"
	// for .12 until it has probed it again.
	var wrongAnswers []string
	var asked int
	watch := func(until func() bool) {
		deadline := time.Now().Add(10 * time.Second)
		for !until() {
			r, err := ask(m.port, "www.faults.test", dns.TypeA)
			asked++
			if err != nil {
				wrongAnswers = append(wrongAnswers, err.Error())
			} else if got := answerA(r); !slices.Equal(got, up) {
				wrongAnswers = append(wrongAnswers, fmt.Sprint(got))
			}
			if time.Now().After(deadline) {
				t.Fatal("watching the answers: the restarted checker never re-judged .12")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	restarted := time.Now()
	checkerProcess(t, url, "c1")
	var again checkerState
	var rejudged time.Time
	watch(func() bool {
		s := readChecker(t, url, "c1")
		if rejudged.IsZero() && s.exists && !s.dead && s.started.After(first.started) && s.verdicts["127.0.0.12"] == "down" {
			again, rejudged = s, time.Now()
		}
		// Go on two more heartbeats after c1 recorded its own verdict.
		return !rejudged.IsZero() && time.Since(rejudged) > 600*time.Millisecond
	})
	t.Logf("restarted checker live and .12 re-judged down %v after the restart; %d queries meanwhile", rejudged.Sub(restarted).Round(time.Millisecond), asked)
	if len(wrongAnswers) > 0 {
		t.Errorf("%d of %d answers wrong while the killed checker restarted: %v", len(wrongAnswers), asked, wrongAnswers[:min(len(wrongAnswers), 5)])
	}
	if again.verdicts["127.0.0.11"] != "up" || again.verdicts["127.0.0.13"] != "up" || len(again.verdicts) != 3 {
		t.Errorf("restarted c1's verdicts: %v, want .11 and .13 up, .12 down", again.verdicts)
	}
	if n := quorumTransitions(t, url, "127.0.0.12"); n != transitions {
		t.Errorf("the restart changed .12's effective health %d times; want no change", n-transitions)
	}

	// c1 counts again: .12 returns on the first "up", and the reason
	// counts both checkers.
	bs[1].up.Store(true)
	m.waitDig(t, ".12 returns", answers(all), "www.faults.test", "A")
	if out := meridianctl(t, url, "endpoints", "--pool", "www.faults.test"); !regexp.MustCompile(`127\.0\.0\.12\s.*\sup\s.*any: [12] of 2 checkers say up`).MatchString(out) {
		t.Errorf("meridianctl endpoints does not show .12 up by both checkers:\n%s", out)
	}
	m.stop(t)
}

// TestE2EFaultGeoIPCorrupt swaps truncated and corrupt GeoIP databases in
// while the server runs (TestE2EPools covers a file that is not a database
// at all). Each is refused with an error log naming the file and why, the
// answers keep following the old database, the build time metric stays
// the old one, meridian_geoip_reloads_total{result="error"} counts each,
// and a good file swapped in after them is taken.
func TestE2EFaultGeoIPCorrupt(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	db := filepath.Join(dir, "city.mmdb")
	if err := geotest.Write(db, geotest.World); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, []string{"MERIDIAN_GEO_RELOAD_INTERVAL=50ms"},
		"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--zone-file", filepath.Join(dir, "example.com.zone"),
		"--zone-file", filepath.Join(dir, "example.net.yaml"),
		"--geoip", db)
	base := m.httpBase(t)
	// London's subnet: eu-west first with the database, us-east (the
	// configuration order) without one.
	firstDC := func(dc string) func(*digResult) bool {
		return func(r *digResult) bool {
			a := data(r.Answer, "A")
			return len(a) == 4 && dcOfExample(a[0]) == dc
		}
	}
	m.waitDig(t, "GeoIP answers", firstDC("eu-west"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	built := metric(t, base, "meridian_geoip_build_timestamp_seconds")
	if built == "" {
		t.Fatal("no meridian_geoip_build_timestamp_seconds")
	}
	const (
		reloadsOK    = `meridian_geoip_reloads_total{result="ok"}`
		reloadsError = `meridian_geoip_reloads_total{result="error"}`
	)
	if ok, bad := metric(t, base, reloadsOK), metric(t, base, reloadsError); ok != "0" || bad != "0" {
		t.Fatalf("before any swap: %s %q, %s %q; want 0 and 0", reloadsOK, ok, reloadsError, bad)
	}

	scribbled := slices.Clone(good)
	for i := len(scribbled) / 4; i < len(scribbled)/2; i++ {
		scribbled[i] = 0xff
	}
	refused := 0
	for _, tc := range []struct {
		name string
		data []byte
		why  string // in the logged error
	}{
		{"empty (half-written) file", nil, "invalid MaxMind DB file"},
		{"truncated to half", good[:len(good)/2], "invalid MaxMind DB file"},
		{"last byte missing", good[:len(good)-1], "unexpected end of database"},
		{"search tree overwritten", scribbled, "search tree is corrupt"},
	} {
		refused++
		t.Run(tc.name, func(t *testing.T) {
			from := m.nextLogIndex()
			writeAtomic(t, db, tc.data)
			l := m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
				return l.Level == "ERROR" && strings.HasPrefix(l.Msg, "GeoIP database not reloaded")
			})
			e, _ := l.attrs["err"].(string)
			if l.attrs["path"] != db || !strings.Contains(e, db) || !strings.Contains(e, tc.why) {
				t.Errorf("log line %q path %v err %q; want the path %s and %q", l.Msg, l.attrs["path"], e, db, tc.why)
			}
			for _, l := range m.logLines() {
				if l.index >= from && l.Msg == "GeoIP database reloaded" {
					t.Errorf("a broken file was taken: %v", l.attrs)
				}
			}
			if r := m.mustDig(t, "www.example.net", "A", "+subnet=81.2.69.0/24"); !firstDC("eu-west")(r) {
				t.Errorf("after a broken file, answer %v; want the old database's (eu-west first)", data(r.Answer, "A"))
			}
			if got := metric(t, base, "meridian_geoip_build_timestamp_seconds"); got != built {
				t.Errorf("build time metric %s, want the old database's %s", got, built)
			}
			// Counted after the log line: wait for it.
			waitMetric(t, base, reloadsError, fmt.Sprint(refused))
			if got := metric(t, base, reloadsOK); got != "0" {
				t.Errorf("%s = %q after refused files only, want 0", reloadsOK, got)
			}
		})
	}

	// The watcher survived them all: a good new database is taken.
	moved := slices.Clone(geotest.World)
	moved[0].Lat, moved[0].Lon, moved[0].Country, moved[0].Continent = 1.29, 103.85, "SG", "AS"
	tmp := filepath.Join(dir, "new.mmdb")
	if err := geotest.Write(tmp, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		t.Fatal(err)
	}
	m.waitDig(t, "a good database after the broken ones", firstDC("ap-southeast"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	waitMetric(t, base, reloadsOK, "1")
	if got := metric(t, base, reloadsError); got != fmt.Sprint(refused) {
		t.Errorf("%s = %q, want %d", reloadsError, got, refused)
	}
	m.stop(t)
}

// TestE2EFaultZoneReload breaks zone files while the server serves them,
// in the ways an operator does (a typo, a CNAME beside data, a YAML syntax
// error, an unknown datacenter), noticed by the file watch or by SIGHUP.
// Each time the old snapshot keeps serving, the log says file:line why,
// and /metrics says the server is not in sync; the fixed file is served.
func TestE2EFaultZoneReload(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	comPath := filepath.Join(dir, "example.com.zone")
	netPath := filepath.Join(dir, "example.net.yaml")
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--zone-file", comPath, "--zone-file", netPath)
	base := m.httpBase(t)
	m.waitDig(t, "server answers", isNOERROR, "www.example.com", "A")

	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// lineOf is the 1-based line of the first line of s starting with prefix.
	lineOf := func(s, prefix string) int {
		for i, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line starting with %q", prefix)
		return 0
	}
	lines := func(s string) int { return strings.Count(s, "\n") }
	// The last good content of each file, with a marker record added by
	// each fix, and the markers that must be served.
	current := map[string]string{comPath: read(comPath), netPath: read(netPath)}
	var markers []string

	tests := []struct {
		name, path string
		sighup     bool
		// breakFile returns the broken content and the line of the error.
		breakFile func(good string) (string, int)
		why       string
		// fix adds the marker record name with address addr to good.
		fix func(good, name, addr string) string
	}{
		{"bad address, file watch", comPath, false,
			func(g string) (string, int) { return g + "broken\tIN\tA\tnot-an-address\n", lines(g) + 1 },
			`bad A record "not-an-address"`, fixZone},
		{"CNAME beside data, SIGHUP", comPath, true,
			func(g string) (string, int) { return g + "www\tIN\tCNAME\tmail\n", lines(g) + 1 },
			"CNAME and other data at www.example.com.", fixZone},
		{"YAML syntax error, file watch", netPath, false,
			func(g string) (string, int) {
				return strings.Replace(g, "\nrecords:\n", "\nrecords: [\n", 1), lineOf(g, "records:")
			},
			"did not find expected node content", fixYAML},
		{"unknown datacenter, SIGHUP", netPath, true,
			func(g string) (string, int) {
				ep := "      - {address: 198.51.100.61, datacenter: sa-east}"
				return strings.Replace(g, ep, strings.Replace(ep, "sa-east", "mars", 1), 1), lineOf(g, ep)
			},
			`pool www.example.net.: endpoint 198.51.100.61: unknown datacenter "mars"`, fixYAML},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := current[tc.path]
			broken, line := tc.breakFile(good)
			if broken == good {
				t.Fatal("the breakage changed nothing")
			}
			where := fmt.Sprintf("%s:%d: ", tc.path, line)
			failed := func(from int) logLine {
				return m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
					e, _ := l.attrs["err"].(string)
					return l.Level == "ERROR" && strings.HasPrefix(l.Msg, "Reload failed") && strings.Contains(e, where+tc.why)
				})
			}
			from := m.nextLogIndex()
			writeAtomic(t, tc.path, []byte(broken))
			l := failed(from) // the file watch noticed
			if tc.sighup {
				from = m.nextLogIndex()
				m.signal(t, syscall.SIGHUP)
				l = m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
					return l.Msg == "Reloading zones" && l.attrs["reason"] == "SIGHUP"
				})
				l = failed(l.index)
			}
			t.Logf("logged: %s: %v", l.Msg, l.attrs["err"])

			// The old snapshot serves: what every file said before, and
			// every marker of the fixes so far.
			if r := m.mustDig(t, "www.example.com", "A"); !slices.Equal(data(r.Answer, "A"), []string{"192.0.2.10"}) || data(r.Answer, "CNAME") != nil {
				t.Errorf("www.example.com after a broken reload:\n%s", r.Raw)
			}
			if r := m.mustDig(t, "www.example.net", "A"); len(data(r.Answer, "A")) != 4 {
				t.Errorf("www.example.net after a broken reload:\n%s", r.Raw)
			}
			for _, name := range markers {
				if r := m.mustDig(t, name, "A"); !isNOERROR(r) {
					t.Errorf("%s, served before the broken reload, is gone:\n%s", name, r.Raw)
				}
			}
			if got := metric(t, base, "meridian_store_synced"); got != "0" {
				t.Errorf("meridian_store_synced = %q after a failed reload, want 0", got)
			}
			if code, body := httpGet(t, base+"/readyz"); code != 200 {
				t.Errorf("/readyz %d %q: the old snapshot still serves", code, body)
			}

			// The fix is served.
			name := fmt.Sprintf("fix%d.%s", i, map[string]string{comPath: "example.com", netPath: "example.net"}[tc.path])
			addr := fmt.Sprintf("192.0.2.%d", 150+i)
			fixed := tc.fix(good, strings.SplitN(name, ".", 2)[0], addr)
			start := time.Now()
			writeAtomic(t, tc.path, []byte(fixed))
			m.waitDig(t, "the fixed file is served", func(r *digResult) bool {
				return slices.Equal(data(r.Answer, "A"), []string{addr})
			}, name, "A")
			t.Logf("fixed file served after %v", time.Since(start).Round(time.Millisecond))
			waitMetric(t, base, "meridian_store_synced", "1")
			current[tc.path] = fixed
			markers = append(markers, name)
		})
	}
	m.stop(t)
}

// fixZone adds an A record to an RFC 1035 zone file.
func fixZone(good, name, addr string) string {
	return good + name + "\tIN\tA\t" + addr + "\n"
}

// fixYAML adds an A record to a YAML zone file's records.
func fixYAML(good, name, addr string) string {
	return strings.Replace(good, "\nrecords:\n", "\nrecords:\n  - {name: "+name+", type: A, data: "+addr+"}\n", 1)
}

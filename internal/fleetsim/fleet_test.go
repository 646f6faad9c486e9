package fleetsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// The shortened run is make test's; scripts/fleet.sh runs the long one.
var (
	flagChanges = flag.Int("fleet.changes", 8, "changes committed and timed on every server in steady state")
	flagLong    = flag.Bool("fleet.long", false, "hold each failure longer, time more changes in each, and wait for the failback to the region's own standby")
	flagReport  = flag.String("fleet.report", "", "write the measured table (Markdown) to this file")
	flagLogDir  = flag.String("fleet.logdir", "", "write the log of every process of the fleet to this directory")
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The regions and their one-way delays (ms): round trips of 50 to 150 ms.
var (
	regionNames = []string{"core", "eu", "us", "ap"}
	oneWay      = map[[2]string]int{
		{"core", "eu"}: 25, {"core", "us"}: 40, {"core", "ap"}: 75,
		{"eu", "us"}: 45, {"eu", "ap"}: 65, {"us", "ap"}: 55,
	}
)

func delay(from, to string) time.Duration {
	if ms, ok := oneWay[[2]string{from, to}]; ok {
		return time.Duration(ms) * time.Millisecond
	}
	return time.Duration(oneWay[[2]string{to, from}]) * time.Millisecond
}

// Hosts in each region (198.18.R.host).
const (
	hostPostgres = 10
	hostServer1  = 11 // hostServer1 + i: the region's i-th meridian serve
	hostTarget1  = 21 // hostTarget1 + i: the region's i-th health target
	targetPort   = 8080
	// A checker's heartbeat is a transaction of about six statements:
	// from ap, 150 ms from the primary, it takes a second, so a heartbeat
	// of 1 s (ttl 3 s) leaves ap's checker on the edge of being found
	// dead. 2 s (ttl 6 s) holds.
	heartbeat = 2 * time.Second
)

// The zone: svc is the pool the timed changes drain and enable (an
// operator's change, committed on the primary); www is health-checked by
// the three checkers, over HTTP, on two targets in eu and two in us.
const zoneYAML = `origin: fleet.test.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters: [{name: eu, lat: 50, lon: 8}, {name: us, lat: 40, lon: -75}]
pools:
  - name: svc
    endpoints:
      - {address: 192.0.2.1, datacenter: eu}
      - {address: 192.0.2.2, datacenter: us}
  - name: www
    quorum: majority
    health_check: {type: http, port: 8080, path: /health, expect_body: UP, interval: 1s, timeout: 800ms, rise: 1, fall: 2}
    endpoints:
      - {address: 198.18.2.21, datacenter: eu}
      - {address: 198.18.2.22, datacenter: eu}
      - {address: 198.18.3.21, datacenter: us}
      - {address: 198.18.3.22, datacenter: us}
`

// svcToggled is the svc endpoint the timed changes drain and enable.
var svcToggled = netip.MustParseAddr("192.0.2.2")

// fleet is the running simulation.
type fleet struct {
	w        *WAN
	bin      string // directory of the binaries
	dir      string
	primary  *pgtest.Cluster
	standby  map[string]*pgtest.Cluster // by region
	db       *pgxpool.Pool              // on the primary, from the observer
	dbURL    map[string]string          // "core" and the standbys' regions
	servers  []*server
	checkers map[string]*proc
	drained  bool // svcToggled's admin state as last committed
}

// server is one meridian serve.
type server struct {
	*proc
	name, region, reads string
	dns, http           string // host:port
}

// proc is a process started in a region.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	done chan struct{}
}

// TestFleet runs a fleet across four regions of an emulated WAN: the
// PostgreSQL primary in core; in eu and in us a hot standby of it, two
// meridian serve reading that standby (the other region's as
// store.fallback_databases) and a meridian-checker; a third checker in
// ap. It times commit -> answer on every server, then holds three
// failures: a partition of the ap checker's region (majority quorum
// holds, www never changes, ap's checker is found dead), the eu standby
// down (eu's servers read us's standby and still get every change), the
// primary down (every server keeps answering, the standbys keep serving;
// a change arrives everywhere once it is back).
func TestFleet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("fleetsim: needs root for network namespaces and TUN devices")
	}
	start := time.Now()
	f := &fleet{bin: buildBinaries(t), dir: t.TempDir(), standby: map[string]*pgtest.Cluster{},
		dbURL: map[string]string{}, checkers: map[string]*proc{}}
	t.Logf("binaries built in %v", time.Since(start).Round(time.Millisecond))
	f.w = newWAN(t, regionNames, delay)
	f.startDatabases(t)
	t.Logf("primary and standbys up in %v", time.Since(start).Round(time.Millisecond))
	f.startTargets(t)
	// ap's checker starts once eu's and us's have judged every target:
	// its first verdicts, written from 150 ms away, hold the version row
	// for over a second each, and would slow the others' start.
	for _, r := range []string{"eu", "us"} {
		f.startChecker(t, r)
	}
	for _, r := range []string{"eu", "us"} {
		other := map[string]string{"eu": "us", "us": "eu"}[r]
		for i := range 2 {
			f.startServer(t, r, i, other)
		}
	}
	f.waitAll(t, "svc has both endpoints", 30*time.Second, "svc.fleet.test.", 2)
	f.waitAll(t, "www has its four healthy endpoints", 30*time.Second, "www.fleet.test.", 4)
	f.waitSettled(t, "eu", "us")
	f.startChecker(t, "ap")
	settled := f.dbNow(t)
	t.Logf("fleet up and every target judged up by eu's and us's checkers in %v", time.Since(start).Round(time.Millisecond))

	rep := &report{changes: *flagChanges, long: *flagLong}
	for _, s := range f.servers {
		rep.servers = append(rep.servers, s.name)
	}
	rep.rtts = f.measureRTTs(t)
	t.Run("steady", func(t *testing.T) {
		f.record(t, rep, "steady state", *flagChanges)
	})
	hold := 10 * time.Second // over ap's checker's ttl (3 heartbeats) and a sweep
	if *flagLong {
		hold = 30 * time.Second
	} else {
		// TCP backs its retransmissions off exponentially while the
		// partition lasts, up to 120 s apart, and the checker's write cut
		// off waits for the next one (its heartbeat waits behind its
		// writes). The short run caps the backoff at 1 s in ap (Linux
		// 6.15 and later); the long run measures the default.
		out, err := f.w.Command("ap", "sh", "-c", "echo 1000 > /proc/sys/net/ipv4/tcp_rto_max_ms").CombinedOutput()
		if err != nil {
			t.Logf("ap: TCP retransmission backoff not capped (%v: %s): the partition's end takes longer", err, out)
		}
	}
	t.Run("partition", func(t *testing.T) { f.partition(t, hold, rep) })
	t.Run("standby down", func(t *testing.T) { f.standbyDown(t, rep) })
	t.Run("primary down", func(t *testing.T) { f.primaryDown(t, rep) })

	// No flap, seen from the database: www's effective health did not
	// change after the fleet settled, through every failure.
	var flaps []string
	rows, err := f.db.Query(context.Background(), `SELECT t.at::text || ' ' || e.address::text || ' ' || t.old_state || ' -> ' || t.new_state || ': ' || t.reason
		FROM health_transitions t JOIN endpoints e ON e.id = t.endpoint_id
		WHERE t.checker_id = 'quorum' AND t.at > $1 ORDER BY t.id`, settled)
	if err == nil {
		flaps, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		t.Error(err)
	} else if len(flaps) > 0 {
		t.Errorf("www's effective health changed after the fleet settled:\n%s", strings.Join(flaps, "\n"))
	} else {
		rep.note("no change of any endpoint's effective health (health_transitions of the quorum) from the fleet's start to the end of the run")
	}

	relayed, dropped := f.w.Stats()
	t.Logf("router: %d packets relayed, %d dropped; whole run %v", relayed, dropped, time.Since(start).Round(time.Second))
	table := rep.String()
	t.Logf("commit -> answer per server:\n%s", table)
	if *flagReport != "" {
		if err := os.WriteFile(*flagReport, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// waitSettled waits until every checker has found every target up: until
// then each first verdict is a write, which holds the version row (as
// every write does) for several round trips from a far region, and
// changes committed meanwhile wait for it.
func (f *fleet) waitSettled(t *testing.T, regions ...string) {
	t.Helper()
	var ids []string
	for _, r := range regions {
		ids = append(ids, "checker-"+r)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM probe_verdicts WHERE state = 'up' AND checker_id = ANY($1)", ids).Scan(&n)
		if err == nil && n == 4*len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkers %v not settled after 60s (%d up verdicts of %d, %v)\n%s", ids, n, 4*len(ids), err, f.healthDump())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dbNow returns the primary's clock.
func (f *fleet) dbNow(t *testing.T) time.Time {
	t.Helper()
	var now time.Time
	if err := f.db.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// buildBinaries builds meridian, meridian-checker and meridianctl once,
// without the race detector (they are the fleet, not the test).
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/meridian", "./cmd/meridian-checker", "./cmd/meridianctl")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// startDatabases starts the primary in core and a standby in eu and us,
// with Meridian's schema and the zone, replayed by both.
func (f *fleet) startDatabases(t *testing.T) {
	core := f.w.Region("core")
	// A client cut off inside a transaction (a checker in a partitioned
	// region) would hold its locks, the version row among them, until
	// TCP keepalive gives up on it: 2 h by default. 2 s, below the
	// checkers' ttl (3 heartbeats), bounds that (docs/operations.md).
	f.primary = pgtest.OwnClusterWith(t, pgtest.Options{Netns: core.Netns, Host: core.Addr(hostPostgres),
		Conf: "idle_in_transaction_session_timeout = '2s'\n"})
	for _, r := range []string{"eu", "us"} {
		reg := f.w.Region(r)
		// As docs/postgres.md advises for a standby: a partition from
		// the primary is noticed within 10 s, and replay does not cancel
		// a server's load.
		f.standby[r] = f.primary.StandbyWith(t, pgtest.Options{Netns: reg.Netns, Host: reg.Addr(hostPostgres),
			Conf: "hot_standby_feedback = on\nwal_receiver_timeout = '10s'\n"})
	}
	ctx := context.Background()
	if err := execSQL(ctx, f.primary.URL(), "CREATE DATABASE meridian TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		t.Fatal(err)
	}
	url := func(c *pgtest.Cluster) string {
		return fmt.Sprintf("postgres://postgres@%s:%d/meridian?sslmode=disable&connect_timeout=3", c.Host(), c.Port())
	}
	f.dbURL["core"] = url(f.primary)
	for r, s := range f.standby {
		f.dbURL[r] = url(s)
	}
	if _, _, err := postgres.Migrate(ctx, f.dbURL["core"]); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.db, err = pgxpool.New(ctx, f.dbURL["core"]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.db.Close)
	z, err := zones.Parse([]byte(zoneYAML), "fleet.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Apply(ctx, f.db, []*zones.Zone{z}, postgres.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.standby {
		p := &pgtest.Pair{Primary: f.primary, Standby: s}
		p.WaitStreaming(t)
		p.WaitReplayed(t)
	}
}

func execSQL(ctx context.Context, url, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// startTargets serves the health URL of www's endpoints in eu and us,
// from sockets this process opens in those regions.
func (f *fleet) startTargets(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			fmt.Fprintln(w, "UP")
			return
		}
		http.NotFound(w, r)
	})
	for _, r := range []string{"eu", "us"} {
		for i := range 2 {
			addr := fmt.Sprintf("%s:%d", f.w.Region(r).Addr(hostTarget1+i), targetPort)
			var ln net.Listener
			if err := f.w.Do(r, func() (err error) {
				ln, err = net.Listen("tcp", addr)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}
	}
}

// start runs bin with args in region, killed when the test ends; its
// output is shown when the test failed.
func (f *fleet) start(t *testing.T, region, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logs: &logbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = f.w.Command(region, filepath.Join(f.bin, bin), args...)
	p.cmd.Dir = f.dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s log (last 60 lines):\n%s", name, lastLines(p.logs.String(), 60))
		}
		if *flagLogDir != "" {
			_ = os.WriteFile(filepath.Join(*flagLogDir, name+".log"), []byte(p.logs.String()), 0o644)
		}
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// startChecker runs region's meridian-checker, writing to the primary.
func (f *fleet) startChecker(t *testing.T, region string) {
	id := "checker-" + region
	f.checkers[region] = f.start(t, region, id, nil, "meridian-checker",
		"--database", f.dbURL["core"], "--id", id, "--region", region, "--heartbeat", heartbeat.String())
}

// startServer runs the i-th meridian serve of region, reading the
// region's standby, with the other region's as fallback.
func (f *fleet) startServer(t *testing.T, region string, i int, fallback string) {
	t.Helper()
	reg := f.w.Region(region)
	s := &server{name: fmt.Sprintf("%s%d", region, i+1), region: region, reads: region,
		dns: reg.Addr(hostServer1+i) + ":53", http: reg.Addr(hostServer1+i) + ":9153"}
	env := []string{
		"MERIDIAN_STORE_FALLBACK_DATABASES=" + f.dbURL[fallback],
		"MERIDIAN_STORE_CACHE_FILE=" + filepath.Join(f.dir, s.name+".cache"),
	}
	s.proc = f.start(t, region, s.name, env, "meridian", "serve", "--log-format", "json",
		"--listen", s.dns, "--http-listen", s.http, "--log-level", "debug", "--database", f.dbURL[region])
	f.servers = append(f.servers, s)
}

// query asks s for name A and returns the sorted addresses.
func (s *server) query(name string) ([]string, error) {
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	r, _, err := c.Exchange(q, s.dns)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s: %s", name, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

// waitAll waits until every server answers name with n addresses.
func (f *fleet) waitAll(t *testing.T, what string, timeout time.Duration, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range f.servers {
		for {
			got, err := s.query(name)
			if err == nil && len(got) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s after %v: %v %v", s.name, what, timeout, got, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// metric returns the value of series on s's /metrics, "" if absent.
func (s *server) metric(series string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.http + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, nil
		}
	}
	return "", nil
}

// waitMetric waits until series on s has the value want.
func (s *server) waitMetric(t *testing.T, series, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.metric(series)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %q (%v) after %v, want %s", s.name, series, got, err, timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logged reports whether s logged a line whose message starts with msg.
func (s *server) logged(msg string) bool {
	return strings.Contains(s.logs.String(), `"msg":"`+msg)
}

// measureRTTs times a TCP handshake from every region to the primary and
// to each standby: the WAN as the fleet sees it.
func (f *fleet) measureRTTs(t *testing.T) map[[2]string]time.Duration {
	out := map[[2]string]time.Duration{}
	for _, from := range regionNames {
		for _, to := range []string{"core", "eu", "us"} {
			if from == to {
				continue
			}
			addr := fmt.Sprintf("%s:5432", f.w.Region(to).Addr(hostPostgres))
			best := time.Hour
			for range 3 {
				best = min(best, rtt(t, f.w, from, addr))
			}
			want := delay(from, to) + delay(to, from)
			// The upper bound leaves room for a loaded machine: the
			// router is this (race-instrumented) process.
			if best < want || best > want+60*time.Millisecond {
				t.Errorf("%s -> %s: TCP handshake %v, want %v and a little more", from, to, best, want)
			}
			out[[2]string{from, to}] = best
		}
	}
	return out
}

// commit sets svcToggled's admin state on the primary, retrying while
// the primary is coming back, and returns when it committed and how long
// the write took (the observer is next to the primary: it is the time
// the transaction waited for the version row, which every write takes).
func (f *fleet) commit(t *testing.T, drain bool) (committed time.Time, took time.Duration) {
	t.Helper()
	state := zones.AdminActive
	reason := ""
	if drain {
		state, reason = zones.AdminDrain, "fleet simulation"
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f.setAdmin(ctx, state, reason)
		cancel()
		if err == nil {
			f.drained = drain
			return time.Now(), time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("commit on the primary: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fleet) setAdmin(ctx context.Context, state zones.AdminState, reason string) error {
	_, err := postgres.SetAdmin(ctx, f.db, "svc.fleet.test", svcToggled, state, reason, "fleetsim")
	return err
}

// svcWant is svc's answer while svcToggled is drained or not.
func svcWant(drained bool) []string {
	if drained {
		return []string{"192.0.2.1"}
	}
	return []string{"192.0.2.1", "192.0.2.2"}
}

// timeChanges commits n changes, each after a random pause (so that
// commits do not fall in step with the servers' polls), and returns how
// long each server took to answer each from its commit, and how long
// each write took.
func (f *fleet) timeChanges(t *testing.T, n int) (lat [][]time.Duration, writes []time.Duration) {
	t.Helper()
	lat = make([][]time.Duration, len(f.servers))
	for range n {
		time.Sleep(rand.N(250 * time.Millisecond))
		want := svcWant(!f.drained)
		start, took := f.commit(t, !f.drained)
		writes = append(writes, took)
		var wg sync.WaitGroup
		errs := make([]error, len(f.servers))
		for i, s := range f.servers {
			wg.Go(func() {
				d, err := s.answerAfter("svc.fleet.test.", want, start, 15*time.Second)
				lat[i], errs[i] = append(lat[i], d), err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	return lat, writes
}

// answerAfter asks s every 5 ms until it answers name with want, and
// returns the time since start.
func (s *server) answerAfter(name string, want []string, start time.Time, timeout time.Duration) (time.Duration, error) {
	var got []string
	var err error
	for time.Since(start) < timeout {
		if got, err = s.query(name); err == nil && slices.Equal(got, want) {
			return time.Since(start), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s: %s is %v (%v) after %v, want %v", s.name, name, got, err, timeout, want)
}

// answers returns every server's answer for svc and www.
func (f *fleet) answers(names ...string) ([]string, error) {
	if len(names) == 0 {
		names = []string{"svc.fleet.test.", "www.fleet.test."}
	}
	var out []string
	for _, s := range f.servers {
		for _, name := range names {
			got, err := s.query(name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			out = append(out, s.name+" "+name+" "+strings.Join(got, ","))
		}
	}
	return out, nil
}

// holdAnswers asks every server every 100 ms for d and fails on any
// answer for www that differs from want (a flap) or any error, calling
// each after every round when it is not nil.
func (f *fleet) holdAnswers(t *testing.T, what string, want []string, d time.Duration, each func()) {
	t.Helper()
	f.holdNames(t, what, []string{"www.fleet.test."}, want, d, each)
}

// holdNames is holdAnswers for the names given.
func (f *fleet) holdNames(t *testing.T, what string, names, want []string, d time.Duration, each func()) {
	t.Helper()
	end := time.Now().Add(d)
	for rounds := 0; time.Now().Before(end); rounds++ {
		got, err := f.answers(names...)
		if err != nil {
			t.Fatalf("%s: round %d: %v", what, rounds, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: round %d: answers changed:\n%s\nwant\n%s", what, rounds, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if each != nil {
			each()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holdAnswersUntil is holdAnswers until done returns true, for at most
// timeout.
func (f *fleet) holdAnswersUntil(t *testing.T, what string, want []string, timeout time.Duration, done func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(end) {
			t.Fatalf("%s: not done after %v\n%s", what, timeout, f.healthDump())
		}
		f.holdAnswers(t, what, want, 500*time.Millisecond, nil)
	}
}

// healthDump shows the checkers, their verdicts and the endpoints'
// health, for a failure's message.
func (f *fleet) healthDump() string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, q := range []string{
		"SELECT id, last_seen, ttl, dead_since, now() FROM checkers ORDER BY id",
		"SELECT v.checker_id, e.address, v.state, v.stale, v.changed_at, v.reason FROM probe_verdicts v JOIN endpoints e ON e.id = v.endpoint_id ORDER BY 1, 2",
		"SELECT e.address, h.state, h.reason, h.updated_at FROM endpoint_health h JOIN endpoints e ON e.id = h.endpoint_id ORDER BY 1",
		"SELECT endpoint_id, at, old_state, new_state, checker_id, reason FROM health_transitions ORDER BY id DESC LIMIT 30",
	} {
		rows, err := f.db.Query(ctx, q)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", q, err)
			continue
		}
		fmt.Fprintf(&b, "%s:\n", q)
		for rows.Next() {
			vals, _ := rows.Values()
			fmt.Fprintf(&b, "  %v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

// checkerLive reports whether the primary holds checker id for live.
func (f *fleet) checkerLive(id string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cs, err := postgres.ListCheckers(ctx, f.db)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c.Live, nil
		}
	}
	return false, fmt.Errorf("no checker %s", id)
}

// waitChecker waits until checker id is live (or dead) on the primary.
func (f *fleet) waitChecker(t *testing.T, id string, live bool, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, err := f.checkerLive(id)
		if err == nil && got == live {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s live = %v (%v) after %v, want %v", id, got, err, timeout, live)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// partition cuts ap off the WAN for hold, then joins it again. Majority
// quorum over the live checkers holds: eu's and us's say up, ap's checker
// is found dead (silent for 3 heartbeats) and stops counting, whatever
// its probes, which fail, make of the targets; no server's answer for
// www or svc changes during the partition or after it heals.
func (f *fleet) partition(t *testing.T, hold time.Duration, rep *report) {
	if *flagLong {
		f.waitSettled(t, "eu", "us", "ap")
	}
	for _, r := range []string{"eu", "us", "ap"} {
		f.waitChecker(t, "checker-"+r, true, 20*time.Second)
	}
	want, err := f.answers("www.fleet.test.")
	if err != nil {
		t.Fatal(err)
	}
	f.w.Partition("ap", true)
	cut := time.Now()
	// An operator's write just after the cut. If ap's checker was cut
	// off inside a transaction, that transaction holds the version row,
	// which every write takes, until the primary ends the session: it
	// cannot tell a silent client from a slow one before
	// idle_in_transaction_session_timeout (set on the primary here) or
	// TCP keepalive (2 h by default).
	type write struct {
		took time.Duration
		err  error
	}
	wrote := make(chan write, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		defer cancel()
		start := time.Now()
		err := f.setAdmin(ctx, zones.AdminActive, "")
		wrote <- write{time.Since(start), err}
	}()
	// Swept: another checker's heartbeat found it silent for 3
	// heartbeats and set dead_since; from then on its verdicts do not
	// count (the quorum reads only checkers with dead_since NULL).
	// The partition lasts hold, and at least until the sweep: on a
	// loaded machine that may take longer than the ttl (6 s) and the next
	// heartbeat of another checker.
	var sweptAfter time.Duration
	f.holdAnswersUntil(t, "ap partitioned", want, hold+15*time.Second, func() bool {
		if sweptAfter == 0 {
			if swept, err := f.checkerSwept("checker-ap"); err == nil && swept {
				sweptAfter = time.Since(cut)
			}
		}
		return sweptAfter > 0 && time.Since(cut) >= hold
	})
	w := <-wrote
	if w.err != nil {
		t.Errorf("a write on the primary during the partition: %v (after %v)", w.err, w.took)
	}
	hold = time.Since(cut).Round(time.Second)
	// Its probes failed for the whole partition: ap's checker holds the
	// targets down (fall 2 x 1 s), and says so when it is back.
	f.w.Partition("ap", false)
	healed := time.Now()
	// Its connections come back at their next TCP retransmission, which
	// backs off exponentially over the partition.
	var liveAfter time.Duration
	f.holdAnswersUntil(t, "ap back", want, 45*time.Second, func() bool {
		live, err := f.checkerLive("checker-ap")
		if err == nil && live {
			liveAfter = time.Since(healed)
		}
		return liveAfter > 0
	})
	// Back, it records what its probes found while cut off (every
	// target down), then finds them up again: the majority of eu's and
	// us's verdicts carries the endpoints throughout. The short run holds
	// the answers 3 s more, the long one until ap's checker has judged
	// every target up again.
	settle := time.Now()
	if *flagLong {
		f.holdAnswersUntil(t, "ap rejudging", want, 60*time.Second, func() bool {
			var n int
			err := f.db.QueryRow(context.Background(),
				"SELECT count(*) FROM probe_verdicts WHERE checker_id = 'checker-ap' AND state = 'up' AND changed_at > $1", healed).Scan(&n)
			return err == nil && n == 4
		})
	} else {
		f.holdAnswers(t, "ap back", want, 3*time.Second, nil)
	}
	var down int
	if err := f.db.QueryRow(context.Background(), "SELECT count(*) FROM endpoint_health h JOIN endpoints e ON e.id = h.endpoint_id WHERE h.state <> 'up' AND e.address << '198.18.0.0/16'").Scan(&down); err != nil {
		t.Fatal(err)
	}
	if down != 0 {
		t.Errorf("%d endpoints not up after the partition\n%s", down, f.healthDump())
	}
	var downVerdicts int
	_ = f.db.QueryRow(context.Background(), "SELECT count(*) FROM health_transitions WHERE checker_id = 'checker-ap' AND new_state = 'down' AND at > $1", healed).Scan(&downVerdicts)
	what := fmt.Sprintf("held %v more", time.Since(settle).Round(100*time.Millisecond))
	if *flagLong {
		what = fmt.Sprintf("until checker-ap had judged every target up again, %v after it was live", time.Since(settle).Round(100*time.Millisecond))
	}
	rep.note("partition of ap (%v): no answer for www changed (asked every 100 ms, 4 servers) during it nor after it (%s); checker-ap swept %v into it, live again %v after it healed, then recorded %d down verdicts from its failed probes, outvoted 2 to 1; an operator's write 0.3 s into it took %v",
		hold, what, sweptAfter.Round(100*time.Millisecond), liveAfter.Round(100*time.Millisecond), downVerdicts, w.took.Round(time.Millisecond))
}

// checkerSwept reports whether a sweep found checker id dead.
func (f *fleet) checkerSwept(id string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var swept bool
	err := f.db.QueryRow(ctx, "SELECT dead_since IS NOT NULL FROM checkers WHERE id = $1", id).Scan(&swept)
	return swept, err
}

// standbyDown stops eu's standby: eu's servers fall back to us's (the
// fallback metric and log line), keep answering and get every change;
// us's are untouched.
func (f *fleet) standbyDown(t *testing.T, rep *report) {
	f.standby["eu"].Stop(t)
	stopped := time.Now()
	var fellBack time.Duration
	for _, s := range f.servers {
		if s.region == "eu" {
			s.waitMetric(t, "meridian_store_database_index", "1", 20*time.Second)
			fellBack = max(fellBack, time.Since(stopped))
			if !s.logged("Using a fallback database") {
				t.Errorf("%s: no \"Using a fallback database\" in the log", s.name)
			}
			s.reads = "us (fallback)"
		} else if got, _ := s.metric("meridian_store_database_index"); got != "0" {
			t.Errorf("%s: meridian_store_database_index = %q, want 0", s.name, got)
		}
	}
	n := 3
	if *flagLong {
		n = 20
	}
	f.record(t, rep, "eu standby down", n)
	rep.note("eu standby down: eu1 and eu2 on us's standby (meridian_store_database_index 1) %v after it stopped",
		fellBack.Round(100*time.Millisecond))

	f.standby["eu"].Start(t)
	(&pgtest.Pair{Primary: f.primary, Standby: f.standby["eu"]}).WaitStreaming(t)
	if *flagLong {
		// The servers try the databases before the one in use every
		// 30 s (postgres.DefaultFailbackInterval).
		back := time.Now()
		for _, s := range f.servers {
			if s.region == "eu" {
				s.waitMetric(t, "meridian_store_database_index", "0", 45*time.Second)
				s.reads = "eu"
			}
		}
		rep.note("eu standby back: eu1 and eu2 on it again %v after it restarted (failback every 30 s)",
			time.Since(back).Round(100*time.Millisecond))
	}
}

// primaryDown stops the primary: every server keeps answering what it
// had, on a standby that is up (meridian_store_up 1) but no longer
// streams; once the primary is back and streamed to again, a change
// arrives everywhere.
func (f *fleet) primaryDown(t *testing.T, rep *report) {
	want, err := f.answers()
	if err != nil {
		t.Fatal(err)
	}
	f.primary.Stop(t)
	for _, s := range f.servers {
		s.waitMetric(t, "meridian_store_replication_streaming", "0", 20*time.Second)
	}
	hold := 3 * time.Second
	if *flagLong {
		hold = 15 * time.Second
	}
	f.holdNames(t, "primary down", nil, want, hold, nil)
	for _, s := range f.servers {
		if got, err := s.metric("meridian_store_up"); got != "1" {
			t.Errorf("%s: meridian_store_up = %q (%v) with the primary down, want 1: its standby serves", s.name, got, err)
		}
	}
	f.primary.Start(t)
	for _, s := range f.standby {
		(&pgtest.Pair{Primary: f.primary, Standby: s}).WaitStreaming(t)
	}
	back := time.Now()
	f.record(t, rep, "first change after the primary's return", 1)
	rep.note("primary down %v: every server answered its last data (asked every 100 ms), meridian_store_up 1; back and streaming, the first change was answered everywhere %v after the standbys streamed again",
		hold, time.Since(back).Round(10*time.Millisecond))
}

// report is the measured table.
type report struct {
	changes int
	long    bool
	servers []string // names, in the order of each row's latencies
	rtts    map[[2]string]time.Duration
	rows    []row
	notes   []string
}

type row struct {
	phase  string
	reads  []string          // by server: the database it read
	lat    [][]time.Duration // by server
	writes []time.Duration
}

// record times n changes and adds them to rep as phase.
func (f *fleet) record(t *testing.T, rep *report, phase string, n int) {
	t.Helper()
	lat, writes := f.timeChanges(t, n)
	var reads []string
	for _, s := range f.servers {
		reads = append(reads, s.reads)
	}
	rep.rows = append(rep.rows, row{phase: phase, reads: reads, lat: lat, writes: writes})
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// percentile is the nearest-rank percentile p of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	i := int(float64(len(ds))*p+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func (r *report) String() string {
	var b strings.Builder
	b.WriteString("| phase | server | reads | changes | p50 | p99 | max |\n|---|---|---|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds()) }
	line := func(phase, server, reads string, ds []time.Duration) {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %s |\n", phase, server, reads, len(ds),
			ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99)), ms(ds[len(ds)-1]))
	}
	for _, row := range r.rows {
		line(row.phase, "(the write on the primary)", "–", row.writes)
		for i, ds := range row.lat {
			line(row.phase, r.servers[i], row.reads[i], ds)
		}
	}
	b.WriteString("\nTCP handshake (one round trip) to the databases:\n\n| from | to core | to eu | to us |\n|---|---:|---:|---:|\n")
	for _, from := range regionNames {
		fmt.Fprintf(&b, "| %s |", from)
		for _, to := range []string{"core", "eu", "us"} {
			if d, ok := r.rtts[[2]string{from, to}]; ok {
				fmt.Fprintf(&b, " %.1f ms |", float64(d.Microseconds())/1000)
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, n := range r.notes {
		b.WriteString("* " + n + "\n")
	}
	return b.String()
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// healthYAML is a small zone with one pool of two endpoints.
const healthYAML = `origin: health.example.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters:
  - {name: dc1, lat: 50, lon: 8, country: DE, continent: EU}
pools:
  - name: www
    endpoints:
      - {address: 192.0.2.11, datacenter: dc1, weight: 100}
      - {address: 192.0.2.12, datacenter: dc1}
`

const healthPool = "www.health.example."

var (
	ep1 = netip.MustParseAddr("192.0.2.11")
	ep2 = netip.MustParseAddr("192.0.2.12")
)

// healthDB returns the URL of and a connection to a fresh database with
// the schema and healthYAML applied.
func healthDB(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn := healthConn(t, url)
	if _, err := postgres.Apply(ctx, conn, []*zones.Zone{healthZone(t, healthYAML)}, postgres.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

func healthConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func healthZone(t *testing.T, text string) *zones.Zone {
	t.Helper()
	z, err := zones.Parse([]byte(text), "health.yaml")
	if err != nil {
		t.Fatalf("test zone: %v", err)
	}
	return z
}

func healthVersion(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRow(context.Background(), "SELECT version FROM meridian_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func healthExec(t *testing.T, conn *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func mustRegister(t *testing.T, conn *pgx.Conn, id string, ttl time.Duration) {
	t.Helper()
	if err := postgres.RegisterChecker(context.Background(), conn, id, "region-"+id, ttl); err != nil {
		t.Fatal(err)
	}
}

func mustVerdict(t *testing.T, conn *pgx.Conn, checker string, addr netip.Addr, up bool, reason string) (zones.HealthState, bool) {
	t.Helper()
	st, changed, err := postgres.RecordVerdict(context.Background(), conn, checker, healthPool, addr, up, reason)
	if err != nil {
		t.Fatalf("verdict of %s: %v", checker, err)
	}
	return st, changed
}

func mustStatus(t *testing.T, conn *pgx.Conn, addr netip.Addr) *postgres.EndpointStatus {
	t.Helper()
	st, err := postgres.EndpointHealth(context.Background(), conn, healthPool, addr)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// transitions returns the history of addr as "checker old->new reason".
func transitions(t *testing.T, conn *pgx.Conn, addr netip.Addr) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT checker_id || ' ' || old_state || '->' || new_state || ' ' || reason
		FROM health_transitions h JOIN endpoints e ON e.id = h.endpoint_id WHERE e.address = $1 ORDER BY h.id`, addr)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHealthQuorum checks the policies with one to three checkers.
func TestHealthQuorum(t *testing.T) {
	_, conn := healthDB(t)
	// verdicts are of checkers c1, c2, c3, recorded in order: "up",
	// "down", or "" for none. The stored reason is that of the last
	// change of the effective state: a verdict that leaves it alone
	// writes nothing.
	tests := []struct {
		quorum   string
		verdicts []string
		want     zones.HealthState
		reason   string
	}{
		{"any", []string{"up"}, zones.HealthUp, "any: 1 of 1 checkers say up: c1 up"},
		{"any", []string{"down"}, zones.HealthDown, "any: 1 of 1 checkers say down: c1 down"},
		{"any", []string{"down", "up"}, zones.HealthUp, "any: 1 of 2 checkers say up: c2 up"},
		{"any", []string{"down", "down", "up"}, zones.HealthUp, "any: 1 of 3 checkers say up: c3 up"},
		{"any", []string{"up", "down", "down"}, zones.HealthUp, "any: 1 of 1 checkers say up: c1 up"},
		{"any", []string{"down", "down", "down"}, zones.HealthDown, "any: 1 of 1 checkers say down: c1 down"},
		{"majority", []string{"up"}, zones.HealthUp, "majority: 1 of 1 checkers say up: c1 up"},
		{"majority", []string{"down"}, zones.HealthDown, "majority: 1 of 1 checkers say down: c1 down"},
		{"majority", []string{"up", "down"}, zones.HealthDown, "majority: 1 of 2 checkers say down: c2 down"}, // a tie is no majority
		{"majority", []string{"up", "up"}, zones.HealthUp, "majority: 1 of 1 checkers say up: c1 up"},
		{"majority", []string{"down", "up", "up"}, zones.HealthUp, "majority: 2 of 3 checkers say up: c3 up"},
		{"majority", []string{"up", "down", "up"}, zones.HealthUp, "majority: 2 of 3 checkers say up: c3 up"},
		{"majority", []string{"up", "up", "down"}, zones.HealthUp, "majority: 1 of 1 checkers say up: c1 up"},
		{"majority", []string{"up", "", "down"}, zones.HealthDown, "majority: 1 of 2 checkers say down: c3 down"},
		{"majority", []string{"", "up", ""}, zones.HealthUp, "majority: 1 of 1 checkers say up: c2 up"},
		{"all", []string{"up"}, zones.HealthUp, "all: 1 of 1 checkers say up: c1 up"},
		{"all", []string{"down"}, zones.HealthDown, "all: 1 of 1 checkers say down: c1 down"},
		{"all", []string{"up", "down"}, zones.HealthDown, "all: 1 of 2 checkers say down: c2 down"},
		{"all", []string{"up", "up", "down"}, zones.HealthDown, "all: 1 of 3 checkers say down: c3 down"},
		{"all", []string{"down", "up", "up"}, zones.HealthDown, "all: 1 of 1 checkers say down: c1 down"},
		{"all", []string{"up", "up", "up"}, zones.HealthUp, "all: 1 of 1 checkers say up: c1 up"},
		{"all", []string{"", "", ""}, zones.HealthUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.quorum+"/"+strings.Join(tt.verdicts, ","), func(t *testing.T) {
			healthExec(t, conn, "DELETE FROM checkers", "DELETE FROM endpoint_health", "DELETE FROM health_transitions",
				"UPDATE pools SET quorum = '"+tt.quorum+"'")
			var got zones.HealthState
			var live []string
			for i, v := range tt.verdicts {
				c := fmt.Sprintf("c%d", i+1)
				mustRegister(t, conn, c, time.Minute)
				if v == "" {
					continue
				}
				live = append(live, c)
				got, _ = mustVerdict(t, conn, c, ep1, v == "up", c+" "+v)
			}
			st := mustStatus(t, conn, ep1)
			if got != tt.want || st.State != tt.want || st.Reason != tt.reason || st.Quorum != tt.quorum {
				t.Errorf("effective %s; stored %s %q (quorum %s), want %s %q", got, st.State, st.Reason, st.Quorum, tt.want, tt.reason)
			}
			var checkers []string
			for _, v := range st.Verdicts {
				checkers = append(checkers, v.Checker)
				if v.Region != "region-"+v.Checker || v.Changed.IsZero() || v.LastSeen.IsZero() || v.Reason != fmt.Sprintf("%s %s", v.Checker, map[bool]string{true: "up", false: "down"}[v.Up]) {
					t.Errorf("verdict %+v", v)
				}
			}
			if !slices.Equal(checkers, live) {
				t.Errorf("verdicts of %v, want %v", checkers, live)
			}
			if other := mustStatus(t, conn, ep2); other.State != zones.HealthUnknown || len(other.Verdicts) != 0 {
				t.Errorf("the other endpoint: %+v", other)
			}
		})
	}
}

// TestHealthWritesOnChange checks that endpoint_health, and so the data
// version, is written only when the effective state changes, and the
// history of transitions.
func TestHealthWritesOnChange(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	for _, c := range []string{"c1", "c2", "c3"} {
		mustRegister(t, conn, c, time.Minute)
	}
	v := healthVersion(t, conn)
	steps := []struct {
		checker string
		up      bool
		want    zones.HealthState
		changed bool
	}{
		{"c1", false, zones.HealthDown, true}, // unknown -> down
		{"c2", true, zones.HealthDown, false}, // 1:1, no majority
		{"c2", true, zones.HealthDown, false}, // the same verdict again
		{"c3", true, zones.HealthUp, true},    // 2 of 3 up
		{"c1", true, zones.HealthUp, false},   // 3 of 3 up
		{"c3", false, zones.HealthUp, false},  // 2 of 3 up
		{"c2", false, zones.HealthDown, true}, // 2 of 3 down
	}
	for i, s := range steps {
		got, changed := mustVerdict(t, conn, s.checker, ep1, s.up, fmt.Sprintf("step %d", i))
		if got != s.want || changed != s.changed {
			t.Errorf("step %d (%s up=%v): %s changed=%v, want %s changed=%v", i, s.checker, s.up, got, changed, s.want, s.changed)
		}
		nv := healthVersion(t, conn)
		if s.changed && nv <= v {
			t.Errorf("step %d: version %d after %d, want a later one", i, nv, v)
		}
		if !s.changed && nv != v {
			t.Errorf("step %d: version %d after %d without an effective change", i, nv, v)
		}
		v = nv
	}
	// Heartbeats with nothing expired write nothing the servers see.
	for _, c := range []string{"c1", "c2", "c3"} {
		if dead, err := postgres.Heartbeat(ctx, conn, c, time.Minute); err != nil || dead != nil {
			t.Fatalf("heartbeat %s: %v, %v", c, dead, err)
		}
	}
	if healthVersion(t, conn) != v {
		t.Error("heartbeats bumped the version")
	}
	want := []string{
		"c1 unknown->down step 0",
		"quorum unknown->down majority: 1 of 1 checkers say down: step 0",
		"c2 unknown->up step 1",
		"c3 unknown->up step 3",
		"quorum down->up majority: 2 of 3 checkers say up: step 3",
		"c1 down->up step 4",
		"c3 up->down step 5",
		"c2 up->down step 6",
		"quorum up->down majority: 2 of 3 checkers say down: step 6",
	}
	if got := transitions(t, conn, ep1); !slices.Equal(got, want) {
		t.Errorf("transitions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The DNS servers' view: ListEndpoints reads endpoint_health.
	es, err := postgres.ListEndpoints(ctx, conn, healthPool)
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Addr != ep1 || es[0].Health != zones.HealthDown || es[0].HealthReason != "majority: 2 of 3 checkers say down: step 6" {
		t.Errorf("listed %+v", es[0])
	}
}

// TestHealthCheckerExpiry stops one checker's heartbeats: its verdict
// stops counting, and counts again, not lost, when it comes back.
func TestHealthCheckerExpiry(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	healthExec(t, conn, "UPDATE pools SET quorum = 'all'")
	mustRegister(t, conn, "short", ttl)
	mustRegister(t, conn, "long", time.Minute)
	mustVerdict(t, conn, "short", ep1, false, "timeout")
	if st, _ := mustVerdict(t, conn, "long", ep1, true, "200 OK"); st != zones.HealthDown {
		t.Fatalf("all with one down: %s", st)
	}
	check := func(what string, want zones.HealthState, reason string, verdicts int) {
		t.Helper()
		st := mustStatus(t, conn, ep1)
		if st.State != want || st.Reason != reason || len(st.Verdicts) != verdicts {
			t.Errorf("%s: %s %q with %d verdicts, want %s %q with %d", what, st.State, st.Reason, len(st.Verdicts), want, reason, verdicts)
		}
	}
	heartbeat := func(id string, wantDead ...string) {
		t.Helper()
		dead, err := postgres.Heartbeat(ctx, conn, id, map[string]time.Duration{"short": ttl, "long": time.Minute}[id])
		if err != nil || !slices.Equal(dead, wantDead) {
			t.Fatalf("heartbeat of %s: dead %v, %v; want %v", id, dead, err, wantDead)
		}
	}
	// The second verdict did not change the state, so not its reason.
	check("both live", zones.HealthDown, "all: 1 of 1 checkers say down: timeout", 2)

	for _, revive := range []string{"heartbeat", "register"} {
		time.Sleep(ttl + 100*time.Millisecond)
		v := healthVersion(t, conn)
		heartbeat("long", "short")
		check("short expired", zones.HealthUp, "all: 1 of 1 checkers say up: 200 OK", 1)
		if healthVersion(t, conn) <= v {
			t.Errorf("the sweep's change did not bump the version")
		}
		// Swept already: nothing to recompute.
		v = healthVersion(t, conn)
		heartbeat("long", "short")
		if healthVersion(t, conn) != v {
			t.Error("a second sweep of the same dead checker bumped the version")
		}
		if revive == "heartbeat" {
			// The same process, late: its verdicts hold.
			heartbeat("short")
		} else {
			// A restart: its verdict from before is stale while long's
			// is current, so nothing changes until it judges anew.
			mustRegister(t, conn, "short", ttl)
			check("short restarted", zones.HealthUp, "all: 1 of 1 checkers say up: 200 OK", 2)
			if st := mustStatus(t, conn, ep1); !slices.ContainsFunc(st.Verdicts, func(v postgres.Verdict) bool { return v.Checker == "short" && v.Stale }) {
				t.Errorf("restarted checker's old verdict not marked stale: %+v", st.Verdicts)
			}
			if healthVersion(t, conn) != v {
				t.Error("a restart with only stale verdicts bumped the version")
			}
			mustVerdict(t, conn, "short", ep1, false, "timeout")
		}
		check("short back by "+revive, zones.HealthDown, "all: 1 of 2 checkers say down: timeout", 2)
		if healthVersion(t, conn) <= v {
			t.Errorf("the revival by %s did not bump the version", revive)
		}
	}
	// Expired but not yet swept: a verdict of the other checker already
	// leaves it out.
	time.Sleep(ttl + 100*time.Millisecond)
	if st, changed := mustVerdict(t, conn, "long", ep1, true, "still 200 OK"); st != zones.HealthUp || !changed {
		t.Errorf("verdict beside an expired checker: %s changed=%v", st, changed)
	}
	// Only the expiry of the one in the quorum: the transitions by quorum.
	var quorum []string
	for _, tr := range transitions(t, conn, ep1) {
		if strings.HasPrefix(tr, "quorum ") {
			quorum = append(quorum, tr)
		}
	}
	want := []string{
		"quorum unknown->down all: 1 of 1 checkers say down: timeout",
		"quorum down->up all: 1 of 1 checkers say up: 200 OK",
		"quorum up->down all: 1 of 2 checkers say down: timeout",
		"quorum down->up all: 1 of 1 checkers say up: 200 OK",
		"quorum up->down all: 1 of 2 checkers say down: timeout",
		"quorum down->up all: 1 of 1 checkers say up: still 200 OK",
	}
	if !slices.Equal(quorum, want) {
		t.Errorf("quorum transitions:\n%s\nwant:\n%s", strings.Join(quorum, "\n"), strings.Join(want, "\n"))
	}
}

// TestHealthStaleVerdicts: a checker restarted after it was found dead
// judges anew; its old verdicts count only where no live checker has a
// current one, so the restart neither undoes what changed meanwhile nor
// leaves endpoints that only it judged unknown.
func TestHealthStaleVerdicts(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	healthExec(t, conn, "UPDATE pools SET quorum = 'any'")
	mustRegister(t, conn, "a", ttl)
	mustRegister(t, conn, "b", time.Minute)
	mustVerdict(t, conn, "a", ep1, true, "200 OK")
	mustVerdict(t, conn, "b", ep1, true, "200 OK")
	mustVerdict(t, conn, "a", ep2, true, "200 OK") // b never judges ep2
	check := func(what string, addr netip.Addr, want zones.HealthState, reason string) {
		t.Helper()
		if st := mustStatus(t, conn, addr); st.State != want || st.Reason != reason {
			t.Errorf("%s: %s is %s %q, want %s %q", what, addr, st.State, st.Reason, want, reason)
		}
	}

	// a dies; while it is away ep1 fails, which b sees.
	time.Sleep(ttl + 100*time.Millisecond)
	if _, err := postgres.Heartbeat(ctx, conn, "b", time.Minute); err != nil {
		t.Fatal(err)
	}
	mustVerdict(t, conn, "b", ep1, false, "connection refused")
	check("a dead", ep1, zones.HealthDown, "any: 1 of 1 checkers say down: connection refused")
	check("a dead", ep2, zones.HealthUnknown, "any: no live checker has a verdict")

	// a restarts: its old "up" on ep1 would bring the failed endpoint
	// back under any; stale, it does not. On ep2 it is all there is.
	mustRegister(t, conn, "a", ttl)
	check("a restarted", ep1, zones.HealthDown, "any: 1 of 1 checkers say down: connection refused")
	check("a restarted", ep2, zones.HealthUp, "any: 1 of 1 checkers say up: 200 OK")

	// Its new verdicts count at once. (The stored reason changes only
	// with the state.)
	mustVerdict(t, conn, "a", ep1, false, "timeout")
	check("a judged ep1", ep1, zones.HealthDown, "any: 1 of 1 checkers say down: connection refused")
	if st := mustStatus(t, conn, ep1); len(st.Verdicts) != 2 || slices.ContainsFunc(st.Verdicts, func(v postgres.Verdict) bool { return v.Stale }) {
		t.Errorf("verdicts after the restarted checker judged: %+v", st.Verdicts)
	}
	mustVerdict(t, conn, "b", ep1, true, "200 OK")
	check("b sees ep1 back", ep1, zones.HealthUp, "any: 1 of 2 checkers say up: 200 OK")
	mustVerdict(t, conn, "a", ep2, false, "timeout")
	check("a judged ep2", ep2, zones.HealthDown, "any: 1 of 1 checkers say down: timeout")
}

// TestHealthErrors checks the refusals, which change nothing.
func TestHealthErrors(t *testing.T) {
	_, conn := healthDB(t)
	ctx := context.Background()
	mustRegister(t, conn, "c1", time.Minute)
	v := healthVersion(t, conn)
	tests := []struct {
		name string
		err  func() error
		is   error
		want string
	}{
		{"unknown pool", func() error {
			_, _, err := postgres.RecordVerdict(ctx, conn, "c1", "nope.health.example", ep1, false, "x")
			return err
		}, postgres.ErrUnknownPool, "no pool nope.health.example."},
		{"unknown endpoint", func() error {
			_, _, err := postgres.RecordVerdict(ctx, conn, "c1", healthPool, netip.MustParseAddr("192.0.2.99"), false, "x")
			return err
		}, postgres.ErrUnknownEndpoint, "pool www.health.example. has no endpoint 192.0.2.99"},
		{"unknown checker", func() error {
			_, _, err := postgres.RecordVerdict(ctx, conn, "c9", healthPool, ep1, false, "x")
			return err
		}, postgres.ErrUnknownChecker, "checker c9"},
		{"no address", func() error {
			_, _, err := postgres.RecordVerdict(ctx, conn, "c1", healthPool, netip.Addr{}, false, "x")
			return err
		}, nil, "no endpoint address"},
		{"heartbeat of an unknown checker", func() error {
			_, err := postgres.Heartbeat(ctx, conn, "c9", time.Minute)
			return err
		}, postgres.ErrUnknownChecker, "register it first"},
		{"reserved checker id", func() error {
			return postgres.RegisterChecker(ctx, conn, "quorum", "", time.Minute)
		}, nil, "reserved"},
		{"no ttl", func() error {
			return postgres.RegisterChecker(ctx, conn, "c2", "", 0)
		}, nil, "want more than 0"},
		{"status of an unknown pool", func() error {
			_, err := postgres.EndpointHealth(ctx, conn, "nope.health.example.", ep1)
			return err
		}, postgres.ErrUnknownPool, "no pool"},
		{"status of an unknown endpoint", func() error {
			_, err := postgres.EndpointHealth(ctx, conn, healthPool, netip.MustParseAddr("192.0.2.99"))
			return err
		}, postgres.ErrUnknownEndpoint, "has no endpoint"},
	}
	for _, tt := range tests {
		err := tt.err()
		if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM probe_verdicts) + (SELECT count(*) FROM health_transitions)").Scan(&n); err != nil || n != 0 {
		t.Errorf("refused verdicts left %d rows (%v)", n, err)
	}
	if healthVersion(t, conn) != v {
		t.Error("refusals bumped the version")
	}
}

// TestHealthNoDeadlock records verdicts of two checkers on one endpoint,
// heartbeats of two more that expire now and then (sweeps and revivals,
// and heartbeats that race sweeps), and applies that update the same
// endpoint, all at once. A deadlock would fail a call with PostgreSQL's
// deadlock_detected, or hang until the context's deadline.
func TestHealthNoDeadlock(t *testing.T) {
	url, conn := healthDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mustRegister(t, conn, "c1", time.Minute)
	mustRegister(t, conn, "c2", time.Minute)
	const flakyTTL = 20 * time.Millisecond
	flaky := []string{"f1", "f2"}
	for i, f := range flaky {
		mustRegister(t, conn, f, flakyTTL)
		mustVerdict(t, conn, f, ep1, i == 0, f)
	}
	conns := make([]*pgx.Conn, 6)
	for i := range conns {
		conns[i] = healthConn(t, url)
	}
	variants := []*zones.Zone{
		healthZone(t, healthYAML),
		healthZone(t, strings.Replace(healthYAML, "weight: 100", "weight: 50", 1)),
	}
	for i := range 40 {
		var wg sync.WaitGroup
		errs := make(chan error, len(conns))
		run := func(f func() error) {
			wg.Go(func() {
				if err := f(); err != nil {
					errs <- err
				}
			})
		}
		for j, c := range []string{"c1", "c2"} {
			run(func() error {
				// c1 and c2 agree, and f1 and f2 disagree: the state
				// flips every round.
				_, _, err := postgres.RecordVerdict(ctx, conns[j], c, healthPool, ep1, i%2 == 0, fmt.Sprintf("round %d", i))
				return err
			})
		}
		run(func() error {
			_, err := postgres.Apply(ctx, conns[2], []*zones.Zone{variants[i%2]}, postgres.ApplyOptions{})
			return err
		})
		run(func() error {
			_, err := postgres.Heartbeat(ctx, conns[3], []string{"c1", "c2"}[i%2], time.Minute)
			return err
		})
		for j, f := range flaky {
			run(func() error {
				if (i+j)%3 == 0 {
					return postgres.RegisterChecker(ctx, conns[4+j], f, "", flakyTTL)
				}
				_, err := postgres.Heartbeat(ctx, conns[4+j], f, flakyTTL)
				return err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", i, err)
		}
		if i%2 == 1 {
			time.Sleep(flakyTTL) // let f1 and f2 expire
		}
	}
	// The state settles to the quorum of what was recorded last, with
	// every checker live.
	for _, f := range flaky {
		mustRegister(t, conn, f, time.Minute)
	}
	st := mustStatus(t, conn, ep1)
	if len(st.Verdicts) != 4 {
		t.Errorf("verdicts %+v, want 4", st.Verdicts)
	}
	var up, down int
	for _, v := range st.Verdicts {
		if v.Up {
			up++
		} else {
			down++
		}
	}
	if want := map[bool]zones.HealthState{true: zones.HealthUp, false: zones.HealthDown}[2*up > up+down]; st.State != want {
		t.Errorf("settled at %s with %d up and %d down", st.State, up, down)
	}
}

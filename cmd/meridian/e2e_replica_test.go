package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// TestE2EReplica runs servers on a hot standby of a real primary, made by
// pg_basebackup and streaming over loopback: one reads the standby as
// store.database, the other finds store.database down and falls back to
// the standby. Changes committed on the primary (SQL and meridianctl)
// are answered by both, through polling (a standby delivers no
// notifications); the replica metrics and /readyz describe the standby;
// nothing is pruned there. With the primary stopped, both keep answering
// the last data and /readyz says the standby lost its primary: the server
// with store.max_replication_lag turns not ready once the lag passes it,
// the other stays ready. With the primary back, a change arrives again.
func TestE2EReplica(t *testing.T) {
	requireDig(t)
	pair := pgtest.OwnPair(t)
	primaryURL, standbyURL := pair.DB(t)
	if _, _, err := postgres.Migrate(context.Background(), primaryURL); err != nil {
		t.Fatal(err)
	}
	applyExamples(t, primaryURL, nil)
	pair.WaitReplayed(t)
	pair.WaitStreaming(t)
	otherBinary(t, "meridianctl")

	// Nothing listens on port 1 of the loopback: a database that is down.
	const down = "postgres://meridian@127.0.0.1:1/meridian?connect_timeout=2&sslmode=disable"
	dir := t.TempDir()
	servers := []struct {
		name     string
		database string
		env      []string
		index    string // meridian_store_database_index
		maxLag   bool   // store.max_replication_lag set
	}{
		{name: "standby", database: standbyURL, index: "0"},
		{name: "fallback", database: down, index: "1", maxLag: true,
			env: []string{"MERIDIAN_STORE_FALLBACK_DATABASES=" + standbyURL, "MERIDIAN_STORE_MAX_REPLICATION_LAG=1s"}},
	}
	var ms []*meridian
	var bases []string
	for _, s := range servers {
		env := append([]string{"MERIDIAN_STORE_POLL_INTERVAL=1h", "MERIDIAN_STORE_CACHE_FILE=" + dir + "/" + s.name + ".cache"}, s.env...)
		m := startMeridian(t, dir, env, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
			"--database", s.database, "--log-level", "debug")
		ms = append(ms, m)
		bases = append(bases, m.httpBase(t))
	}
	for i, s := range servers {
		m, base := ms[i], bases[i]
		t.Run(s.name+"/start", func(t *testing.T) {
			m.waitDig(t, "answers from the standby", isNOERROR, "www.example.com", "A")
			m.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return l.Msg == "Reading a hot standby: following the change log by polling" })
			// Written by nobody: the prune at start finds a standby.
			m.waitLog(t, 0, 10*time.Second, func(l logLine) bool {
				return l.Msg == "Change log not pruned: the database in use is a hot standby"
			})
			for series, want := range map[string]string{
				"meridian_store_standby":                                 "1",
				"meridian_store_replication_streaming":                   "1",
				"meridian_store_replication_lag_seconds":                 "0",
				"meridian_store_database_index":                          s.index,
				"meridian_store_up":                                      "1",
				`meridian_store_change_log_prunes_total{result="ok"}`:    "0",
				`meridian_store_change_log_prunes_total{result="error"}`: "0",
			} {
				waitMetric(t, base, series, want)
			}
			code, body := httpGet(t, base+"/readyz")
			if code != 200 || !strings.Contains(body, "a hot standby") || !strings.Contains(body, "streaming, replication lag 0s") {
				t.Errorf("/readyz: %d %q", code, body)
			}
			if s.index != "0" {
				m.waitLog(t, 0, time.Second, func(l logLine) bool { return l.Msg == "Using a fallback database" })
				if strings.Contains(m.logs.String(), "127.0.0.1:1/meridian") {
					t.Error("the log shows a database URL; it names databases by host and port")
				}
			}
		})
	}

	// Commit -> answer through the standby, measured on both servers
	// (no bound asserted: the numbers go in docs/postgres.md):
	// each change is one committed UPDATE on the primary, then in-process
	// queries every 2 ms until every server answers it.
	conn, err := pgx.Connect(context.Background(), primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const changes = 10
	lat := make([][]time.Duration, len(ms))
	for i := range changes {
		addr := fmt.Sprintf("192.0.2.%d", 100+i)
		// A random pause, so that commits do not fall in step with the
		// servers' polls (each change would otherwise come just after
		// the poll that found the one before).
		time.Sleep(rand.N(250 * time.Millisecond))
		start := time.Now()
		if _, err := conn.Exec(context.Background(),
			"UPDATE records SET rdata = $1 WHERE name = 'www.example.com.' AND type = 'A' AND zone_id = (SELECT id FROM zones WHERE origin = 'example.com.')", addr); err != nil {
			t.Fatal(err)
		}
		// Asked of every server at once, so that one's wait does not
		// count in the other's.
		var wg sync.WaitGroup
		errs := make([]error, len(ms))
		for j, m := range ms {
			wg.Go(func() {
				d, err := answerAfter(m.port, "www.example.com.", addr, start)
				lat[j], errs[j] = append(lat[j], d), err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	for j, s := range servers {
		slices.Sort(lat[j])
		t.Logf("%s: commit on the primary -> answer via the standby, %d changes: min %v, p50 %v, max %v (standby poll 200ms)",
			s.name, changes, lat[j][0].Round(time.Millisecond), lat[j][changes/2].Round(time.Millisecond), lat[j][changes-1].Round(time.Millisecond))
	}
	// An operator's drain, with meridianctl on the primary.
	setAdmin(t, primaryURL, "198.51.100.31", zones.AdminDrain)
	for _, m := range ms {
		m.waitDig(t, "the drain via the standby", without("198.51.100.31"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	}

	// The primary down: the standby keeps what it has, the servers keep
	// answering it, and say that the standby lost its primary.
	pair.Primary.Stop(t)
	last := fmt.Sprintf("192.0.2.%d", 100+changes-1)
	for i, s := range servers {
		m, base := ms[i], bases[i]
		t.Run(s.name+"/primary down", func(t *testing.T) {
			waitMetric(t, base, "meridian_store_replication_streaming", "0")
			m.waitLog(t, 0, 10*time.Second, func(l logLine) bool {
				return strings.HasPrefix(l.Msg, "The standby is not streaming from its primary")
			})
			if r := m.mustDig(t, "www.example.com", "A"); !slices.Equal(data(r.Answer, "A"), []string{last}) {
				t.Errorf("with the primary down: %v, want the last data %s", r.Answer, last)
			}
			if got := metric(t, base, "meridian_store_up"); got != "1" {
				t.Errorf("meridian_store_up = %s with the standby up, want 1", got)
			}
			if s.maxLag {
				// Bounded wait: the lag grows past 1s within seconds.
				code, body := waitReadyz(t, base, func(code int, _ string) bool { return code == 503 })
				if !strings.Contains(body, "exceeds store.max_replication_lag 1s") || !strings.Contains(body, "not streaming from its primary") {
					t.Errorf("/readyz: %d %q", code, body)
				}
			} else {
				code, body := waitReadyz(t, base, func(_ int, body string) bool { return strings.Contains(body, "not streaming from its primary") })
				if code != 200 {
					t.Errorf("/readyz without store.max_replication_lag: %d %q, want ready", code, body)
				}
			}
			if lag := metric(t, base, "meridian_store_replication_lag_seconds"); lag == "0" || lag == "" {
				t.Errorf("meridian_store_replication_lag_seconds = %q with the primary down, want > 0", lag)
			}
		})
	}

	// The primary back: streaming again, ready, and a change arrives.
	pair.Primary.Start(t)
	pair.WaitStreaming(t)
	for _, base := range bases {
		waitMetric(t, base, "meridian_store_replication_streaming", "1")
		waitReadyz(t, base, func(code int, _ string) bool { return code == 200 })
	}
	conn, err = pgx.Connect(context.Background(), primaryURL) // the old one died with the primary
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	start := time.Now()
	if _, err := conn.Exec(context.Background(), "UPDATE records SET rdata = '192.0.2.200' WHERE name = 'www.example.com.' AND type = 'A'"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitAnswer(t, m.port, "www.example.com.", "192.0.2.200", start)
	}
	for _, m := range ms {
		m.stop(t)
	}
}

// waitAnswer queries name A on port every 2 ms until the answer is addr,
// for at most 10 s, and returns the time since start.
func waitAnswer(t *testing.T, port, name, addr string, start time.Time) time.Duration {
	t.Helper()
	d, err := answerAfter(port, name, addr, start)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// answerAfter is waitAnswer returning its failure.
func answerAfter(port, name, addr string, start time.Time) (time.Duration, error) {
	want := netip.MustParseAddr(addr)
	c := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, _, err := c.Exchange(q, "127.0.0.1:"+port); err == nil {
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok && netip.AddrFrom4([4]byte(a.A.To4())) == want {
					return time.Since(start), nil
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s A is not %s on port %s after 10s", name, addr, port)
}

// waitReadyz polls /readyz until ok accepts it, for at most 20 s.
func waitReadyz(t *testing.T, base string, ok func(code int, body string) bool) (int, string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, base+"/readyz")
		if ok(code, body) {
			return code, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after 20s: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

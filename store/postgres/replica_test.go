package postgres_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// replicaZone is a small zone for the replica tests.
const replicaZone = `origin: r.example.
records:
  - {name: "@", type: SOA, ttl: 300, data: "ns1.r.example. hostmaster.r.example. 1 7200 3600 1209600 60"}
  - {name: "@", type: NS, ttl: 300, data: ns1.r.example.}
  - {name: ns1, type: A, ttl: 300, data: 192.0.2.53}
  - {name: www, type: A, ttl: 300, data: 192.0.2.1}
`

// debugLogged is logged at debug level, where the prune's skip is.
func debugLogged(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{t: t}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// setWWW changes www.r.example. on the primary.
func setWWW(t *testing.T, primaryURL, addr string) {
	t.Helper()
	exec(t, primaryURL, "UPDATE records SET rdata = '"+addr+"' WHERE name = 'www.r.example.' AND type = 'A'")
}

// replayPaused pauses (or resumes) the standby's replay: it keeps
// receiving WAL but applies none of it, as a standby that falls behind.
func replayPaused(t *testing.T, standbyURL string, paused bool) {
	t.Helper()
	fn := map[bool]string{true: "pg_wal_replay_pause()", false: "pg_wal_replay_resume()"}[paused]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, standbyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT "+fn); err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
}

// TestStandby runs a store on a hot standby: it loads, follows changes
// committed on the primary by polling (a standby delivers no
// notifications), measures the standby's lag (0 while it streams and has
// replayed everything, however idle the primary; growing while replay is
// paused or the primary is down), writes nothing (the prune skips it),
// and keeps reading the standby with the primary down.
func TestStandby(t *testing.T) {
	t.Parallel()
	p := pgtest.OwnPair(t)
	primaryURL, standbyURL, _ := p.Store(t, replicaZone)
	p.WaitStreaming(t)
	logger, log := debugLogged(t)
	s := newStore(t, postgres.Options{URL: standbyURL, PollInterval: time.Hour, StandbyPollInterval: 20 * time.Millisecond, Logger: logger})
	if got := wwwOf(load(t, s), "r.example."); got != "192.0.2.1" {
		t.Fatalf("www from the standby = %q, want 192.0.2.1", got)
	}
	n := watch(t, s)
	waitFor(t, "the report after connecting", 10*time.Second, func() bool { return n.Load() >= 1 })
	waitFor(t, "a lag measured on a streaming standby", 10*time.Second, func() bool {
		r := s.Replication()
		return r.Standby && r.Streaming && !r.Measured.IsZero()
	})
	if r := s.Replication(); r.Lag != 0 || r.Database != 0 || r.Switches != 0 {
		t.Errorf("streaming and caught up: %+v, want lag 0 on database 0", r)
	}
	if !strings.Contains(log.String(), "Reading a hot standby") {
		t.Error("the store did not log that it reads a standby")
	}

	// A change committed on the primary reaches the store by polling:
	// LISTEN is impossible on a standby, PollInterval is an hour.
	base := n.Load()
	setWWW(t, primaryURL, "192.0.2.2")
	waitFor(t, "a change found by polling the standby", 10*time.Second, func() bool { return n.Load() > base })
	waitFor(t, "the change loaded from the standby", 10*time.Second, func() bool {
		return wwwOf(load(t, s), "r.example.") == "192.0.2.2"
	})

	// Nothing is written: a prune pass skips the standby.
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan struct{})
	go func() { s.PruneChangeLog(pctx, time.Hour, time.Hour); close(pdone) }()
	waitFor(t, "the prune pass skipping the standby", 10*time.Second, func() bool {
		return strings.Contains(log.String(), "Change log not pruned: the database in use is a hot standby")
	})
	pcancel()
	<-pdone
	if st := s.PruneStats(); st.OK != 0 || st.Failed != 0 {
		t.Errorf("prune stats on a standby %+v, want no pass counted", st)
	}

	// Replay paused: the standby receives but does not apply, so it lags;
	// the lag is measured from when it last was caught up.
	replayPaused(t, standbyURL, true)
	setWWW(t, primaryURL, "192.0.2.3")
	waitFor(t, "a lag while replay is paused", 10*time.Second, func() bool { return s.Replication().Lag > 0 })
	if r := s.Replication(); r.Lag > time.Minute || !r.Streaming {
		t.Errorf("paused replay: %+v, want streaming with a lag under a minute", r)
	}
	replayPaused(t, standbyURL, false)
	waitFor(t, "the lag back to 0 once replayed", 10*time.Second, func() bool { return s.Replication().Lag == 0 })
	waitFor(t, "the change after the pause", 10*time.Second, func() bool {
		return wwwOf(load(t, s), "r.example.") == "192.0.2.3"
	})

	// The primary down: the standby keeps serving what it has, the store
	// stays up, and the lag grows.
	p.Primary.Stop(t)
	waitFor(t, "the standby not streaming", 20*time.Second, func() bool { return !s.Replication().Streaming })
	waitFor(t, "a lag with the primary down", 10*time.Second, func() bool { return s.Replication().Lag > 0 })
	if deg, why := s.Degraded(); deg {
		t.Errorf("degraded with the standby up: %s", why)
	}
	if got := wwwOf(load(t, s), "r.example."); got != "192.0.2.3" {
		t.Errorf("with the primary down, www = %q, want 192.0.2.3", got)
	}
	if !strings.Contains(log.String(), "The standby is not streaming from its primary") {
		t.Error("the store did not log the lost stream")
	}
	p.Primary.Start(t)
	p.WaitStreaming(t)
	waitFor(t, "the lag back to 0 with the primary back", 20*time.Second, func() bool {
		r := s.Replication()
		return r.Streaming && r.Lag == 0
	})
}

// deadURL is a database that is never there.
const deadURL = "postgres://nobody@127.0.0.1:1/none?connect_timeout=1&sslmode=disable"

// TestFallbackDatabases checks the list of databases: the first that
// answers is used, and logged; a database without the schema is skipped;
// none answering is an outage.
func TestFallbackDatabases(t *testing.T) {
	t.Parallel()
	good := newSchema(t)
	addZone(t, good, "f.example.", "192.0.2.7")
	empty := pgtest.NewDB(t) // no schema
	for _, tc := range []struct {
		name      string
		urls      []string
		database  int    // index in use after the load
		err       string // the load's error, when it fails
		degraded  bool
		switched  bool
		logSwitch bool
	}{
		{name: "first answers", urls: []string{good, deadURL}, database: 0},
		{name: "first down", urls: []string{deadURL, good}, database: 1, switched: true, logSwitch: true},
		{name: "second of three", urls: []string{deadURL, deadURL, good}, database: 2, switched: true, logSwitch: true},
		{name: "first without schema", urls: []string{empty, good}, database: 1, switched: true, logSwitch: true},
		{name: "all down", urls: []string{deadURL, deadURL}, err: "connect to #1 127.0.0.1:1", degraded: true},
		{name: "none with schema", urls: []string{deadURL, empty}, err: "no Meridian schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logger, log := logged(t)
			s := newStore(t, postgres.Options{URL: tc.urls[0], Fallbacks: tc.urls[1:], Logger: logger})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			d, err := s.Load(ctx)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("load: %v, want an error with %q", err, tc.err)
				}
				if deg, _ := s.Degraded(); deg != tc.degraded {
					t.Errorf("degraded %v, want %v", deg, tc.degraded)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := wwwOf(d, "f.example."); got != "192.0.2.7" {
				t.Errorf("www = %q", got)
			}
			r := s.Replication()
			if r.Database != tc.database || (r.Switches > 0) != tc.switched || r.Standby {
				t.Errorf("replication %+v, want database %d, switched %v, not a standby", r, tc.database, tc.switched)
			}
			if got := strings.Contains(log.String(), "Using a fallback database"); got != tc.logSwitch {
				t.Errorf("logged the fallback: %v, want %v", got, tc.logSwitch)
			}
			if strings.Contains(log.String(), "nobody") {
				t.Error("the log shows a URL's user; it names databases by host and port only")
			}
		})
	}
}

// TestFallbackAndBack reads the primary through a proxy, with the
// standby as fallback: cut, the store moves to the standby (even one
// behind the data served, which it keeps serving rather than calling a
// divergence) and follows it; restored, it goes back to the primary.
func TestFallbackAndBack(t *testing.T) {
	t.Parallel()
	p := pgtest.OwnPair(t)
	primaryURL, standbyURL, _ := p.Store(t, replicaZone)
	cfg, err := pgx.ParseConfig(primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	logger, log := logged(t)
	s := newStore(t, postgres.Options{
		URL: proxy.URL(primaryURL), Fallbacks: []string{standbyURL},
		PollInterval: 50 * time.Millisecond, StandbyPollInterval: 20 * time.Millisecond,
		FailbackInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger,
	})
	n := watch(t, s)
	waitFor(t, "the report after connecting", 10*time.Second, func() bool { return n.Load() >= 1 })
	load(t, s)

	// The standby stops replaying; the primary moves on, and the store
	// loads that from the primary.
	replayPaused(t, standbyURL, true)
	setWWW(t, primaryURL, "192.0.2.9")
	waitFor(t, "the change from the primary", 10*time.Second, func() bool {
		return wwwOf(load(t, s), "r.example.") == "192.0.2.9"
	})
	served := load(t, s).Version

	proxy.Cut()
	waitFor(t, "the move to the standby", 20*time.Second, func() bool {
		r := s.Replication()
		return r.Database == 1 && r.Standby
	})
	d := load(t, s) // the standby is behind: what was served stays
	if d.Version != served || wwwOf(d, "r.example.") != "192.0.2.9" {
		t.Errorf("on the lagging standby: version %d www %s, want %d and 192.0.2.9 kept", d.Version, wwwOf(d, "r.example."), served)
	}
	if s.Diverged() {
		t.Error("a standby behind the data served was taken for a restored database")
	}
	if !strings.Contains(log.String(), "The standby is behind the data served") {
		t.Error("the store did not log the standby behind")
	}
	replayPaused(t, standbyURL, false)
	setWWW(t, primaryURL, "192.0.2.10")
	waitFor(t, "the change through the standby", 10*time.Second, func() bool {
		return wwwOf(load(t, s), "r.example.") == "192.0.2.10"
	})

	proxy.Restore()
	waitFor(t, "the return to the first database", 20*time.Second, func() bool {
		r := s.Replication()
		return r.Database == 0 && !r.Standby
	})
	if r := s.Replication(); r.Switches != 2 {
		t.Errorf("%d switches, want 2 (to the fallback and back)", r.Switches)
	}
	setWWW(t, primaryURL, "192.0.2.11")
	waitFor(t, "a change from the primary again", 10*time.Second, func() bool {
		return wwwOf(load(t, s), "r.example.") == "192.0.2.11"
	})
	for _, want := range []string{"Using a fallback database", "Back on the first database"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

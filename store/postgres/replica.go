package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A server may read from a hot standby (a streaming replica) rather than
// the primary: a fleet in many regions reads its regional standby and
// never crosses the WAN for a load. A standby is read-only and delivers
// no notifications (LISTEN fails during recovery), so the change log is
// followed by polling the version row there, and the store writes
// nothing: it loads in read-only transactions, and the change-log prune
// skips a standby (prune.go).

// DefaultStandbyPollInterval is how often the version is polled on a
// standby unless configured otherwise. The poll reads one row and a few
// functions (replicaPoll); at this rate it costs the standby well under
// a millisecond of CPU per second (docs/postgres.md has the numbers).
const DefaultStandbyPollInterval = 200 * time.Millisecond

// DefaultFailbackInterval is how often a store reading a fallback
// database tries the ones listed before it, to go back to the preferred
// one once it answers again.
const DefaultFailbackInterval = 30 * time.Second

// errSwitch ends a watch connection so that the next one goes where the
// store now reads (another database of the list, a promoted standby),
// without counting as an outage.
var errSwitch = errors.New("postgres: switching databases")

// errStandby refuses a write on a hot standby.
var errStandby = errors.New("postgres: the database is a hot standby (read-only)")

// inRecovery reports whether conn is to a hot standby.
func inRecovery(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var standby bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return false, fmt.Errorf("postgres: pg_is_in_recovery: %w", err)
	}
	return standby, nil
}

// Replication describes the database a store reads, for metrics and
// readiness.
type Replication struct {
	// Database is the index of the database in use in the list of
	// Options.URL then Options.Fallbacks (0: URL).
	Database int
	// Switches counts the changes of database in use.
	Switches uint64
	// Standby is true while the database in use is a hot standby.
	Standby bool
	// Streaming is true while the standby receives WAL from its primary
	// (false on a primary).
	Streaming bool
	// Lag is how far the standby's data may be behind its primary's: 0
	// while everything the standby received is replayed and it is
	// streaming; otherwise the time since it last was, or since the last
	// commit it replayed, whichever is later. 0 on a primary. An idle
	// primary does not make a streaming standby look behind.
	Lag time.Duration
	// Measured is when Lag was measured (the zero time: never).
	Measured time.Time
}

// replState is what the last polls found about the database in use.
type replState struct {
	mu sync.Mutex
	r  Replication
	// caughtUp is the database's clock at the last poll that found the
	// standby streaming and fully replayed (zero: not seen).
	caughtUp time.Time
	// lost is true while the standby is not streaming, so that the
	// transition is logged once.
	lost bool
}

// Replication reports the database in use and, for a standby, its lag.
func (s *Store) Replication() Replication {
	s.repl.mu.Lock()
	r := s.repl.r
	s.repl.mu.Unlock()
	r.Database = int(s.active.Load())
	r.Switches = s.switches.Load()
	return r
}

// replicaPoll is one poll of the watch loop: the data version, whether
// the database is a standby and, if so, where its replay stands. It reads
// pg_stat_wal_receiver's status, which only roles with pg_read_all_stats
// (pg_monitor) see; for others a receiver process counts as streaming.
const replicaPoll = `SELECT v.version, pg_is_in_recovery(), now(), pg_last_xact_replay_timestamp(),
	coalesce(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(), false),
	coalesce((SELECT coalesce(status = 'streaming', pid IS NOT NULL) FROM pg_stat_wal_receiver), false)
	FROM meridian_version v`

// replicaStatus is what replicaPoll read.
type replicaStatus struct {
	version   int64
	standby   bool
	now       time.Time  // the database's clock
	replayed  *time.Time // commit time of the last transaction replayed
	replayAll bool       // everything received is replayed
	streaming bool       // a WAL receiver streams from the primary
}

func pollReplica(ctx context.Context, conn *pgx.Conn) (replicaStatus, error) {
	var st replicaStatus
	err := conn.QueryRow(ctx, replicaPoll).Scan(&st.version, &st.standby, &st.now, &st.replayed, &st.replayAll, &st.streaming)
	if err != nil {
		return st, fmt.Errorf("postgres: poll version: %w", err)
	}
	return st, nil
}

// noteReplica records a poll of the database in use: on a standby, the
// lag and the transitions of its stream, logged once each.
func (s *Store) noteReplica(st replicaStatus) {
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	r := &s.repl.r
	r.Standby, r.Measured = st.standby, time.Now()
	if !st.standby {
		r.Streaming, r.Lag, s.repl.lost = false, 0, false
		return
	}
	r.Streaming = st.streaming
	if st.streaming && st.replayAll {
		// Caught up with everything the primary sent: however old the
		// last commit, an idle primary has nothing newer.
		s.repl.caughtUp, r.Lag = st.now, 0
	} else {
		// Behind, or cut off from the primary: the data is at least as
		// fresh as the last time the standby was caught up and as the
		// last commit it replayed.
		since := s.repl.caughtUp
		if st.replayed != nil && st.replayed.After(since) {
			since = *st.replayed
		}
		if !since.IsZero() {
			r.Lag = max(st.now.Sub(since), 0)
		}
	}
	switch {
	case !st.streaming && !s.repl.lost:
		s.repl.lost = true
		s.opts.Logger.Warn("The standby is not streaming from its primary: serving what it has replayed; its lag grows until the primary is back",
			"database", s.describe(int(s.active.Load())), "lag", r.Lag.Round(time.Millisecond).String())
	case st.streaming && s.repl.lost:
		s.repl.lost = false
		s.opts.Logger.Info("The standby streams from its primary again", "database", s.describe(int(s.active.Load())), "lag", r.Lag.Round(time.Millisecond).String())
	}
}

// dial connects to the database in use or, when it does not answer, to
// the first of the list that does, and makes that one the database in
// use. A database whose schema this binary cannot use is skipped like
// one that is down; when no database answers and one of them had such a
// schema, that error is returned, which is no outage.
func (s *Store) dial(ctx context.Context) (*pgx.Conn, int, error) {
	cur := int(s.active.Load())
	order := []int{cur}
	for i := range s.targets {
		if i != cur {
			order = append(order, i)
		}
	}
	var errs []error
	var schema *schemaError
	for _, i := range order {
		conn, err := s.dialOne(ctx, i)
		if err == nil {
			s.use(i, cur)
			return conn, i, nil
		}
		if ctx.Err() != nil {
			return nil, 0, err
		}
		if se := (*schemaError)(nil); errors.As(err, &se) && schema == nil {
			schema = se
		}
		errs = append(errs, err)
	}
	if schema != nil {
		return nil, 0, schema
	}
	return nil, 0, errors.Join(errs...)
}

// dialOne connects to the i-th database and checks its schema.
func (s *Store) dialOne(ctx context.Context, i int) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.targets[i])
	if err != nil {
		return nil, fmt.Errorf("postgres: connect to %s: %w", s.describe(i), err)
	}
	if err := CheckSchema(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, &schemaError{fmt.Errorf("%s: %w", s.describe(i), err)}
	}
	return conn, nil
}

// use makes the i-th database the one in use, which was from.
func (s *Store) use(i, from int) {
	if i == from || !s.active.CompareAndSwap(int32(from), int32(i)) {
		return
	}
	s.switches.Add(1)
	if i == 0 {
		s.opts.Logger.Info("Back on the first database (store.database)", "database", s.describe(0), "from", s.describe(from))
	} else {
		s.opts.Logger.Warn("Using a fallback database", "database", s.describe(i), "index", i, "from", s.describe(from))
	}
}

// describe names the i-th database in logs and errors by host and port:
// a URL may hold a password.
func (s *Store) describe(i int) string {
	c := s.targets[i]
	return fmt.Sprintf("#%d %s:%s", i, c.Host, strconv.Itoa(int(c.Port)))
}

// failback tries, on a store reading a fallback database, the databases
// listed before it, at most every FailbackInterval, and reports whether
// one answered (and is now in use).
func (s *Store) failback(ctx context.Context, idx int, last *time.Time) bool {
	if idx == 0 || time.Since(*last) < s.opts.FailbackInterval {
		return false
	}
	*last = time.Now()
	for i := range idx {
		conn, err := s.dialOne(ctx, i) // bounded by the URL's connect_timeout, 5 s by default
		if err != nil {
			continue
		}
		conn.Close(context.Background())
		s.use(i, idx)
		return true
	}
	return false
}

// behindOrDiverged handles a database whose version v is below the one
// served. A standby may just be behind another database of the list that
// the store read before: its data is the same history, so the store keeps
// what it has until the standby catches up. A primary behind us was
// restored from a backup (setDiverged).
func (s *Store) behindOrDiverged(v uint64, standby bool) {
	if !standby {
		s.setDiverged(v)
		return
	}
	if !s.behind.Swap(true) {
		s.opts.Logger.Warn("The standby is behind the data served (it lags the database read before): serving the last snapshot until it catches up",
			"database_version", v, "served_version", s.applied.Load())
	}
}

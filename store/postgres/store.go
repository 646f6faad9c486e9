package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// channel is the LISTEN/NOTIFY channel of the change log; a notification's
// payload is the new version.
const channel = "meridian_changes"

// Options configure a Store.
type Options struct {
	// URL is the database, as a libpq URL or key=value string. It may be
	// a hot standby: the store then polls instead of listening, and
	// reports the standby's lag (Replication).
	URL string
	// Fallbacks are databases to read when URL does not answer, tried in
	// order; the store goes back to an earlier one once it answers again
	// (FailbackInterval). They should hold the same data: the primary, or
	// standbys of it.
	Fallbacks []string
	// CacheFile, when set, receives the last data loaded, so that a server
	// started while the database is unreachable still answers.
	CacheFile string
	// PollInterval is how often the version is checked when no
	// notification arrives, which bounds how long a lost notification can
	// delay a change. Default 5s.
	PollInterval time.Duration
	// StandbyPollInterval is how often the version is polled on a hot
	// standby, where notifications never arrive: it bounds how long a
	// change waits once the standby has it. Default
	// DefaultStandbyPollInterval.
	StandbyPollInterval time.Duration
	// FailbackInterval is how often a store reading a fallback database
	// tries the ones before it. Default DefaultFailbackInterval.
	FailbackInterval time.Duration
	// MaxBackoff caps the wait between reconnection attempts. Default 5s.
	MaxBackoff time.Duration
	// Keys opens the private halves of the zones' DNSSEC keys (migration
	// 010). Without it, a zone with keys cannot be signed and is loaded
	// Invalid, like a zone whose keys the secret does not open: the
	// server keeps its last good version.
	Keys *keyseal.Keyring
	// Policy is the signature policy of the zones with keys; the zero
	// Policy is signing.DefaultPolicy.
	Policy signing.Policy
	// NoKeys leaves the zones' DNSSEC keys unread, for readers that
	// serve no DNS (meridian-checker): no zone is signed or Invalid for
	// its keys.
	NoKeys bool
	Logger *slog.Logger
}

// Store is the PostgreSQL store.Store. It keeps the zones it has read and,
// after the first load, rereads only the zones the change log names.
type Store struct {
	opts Options
	// targets are the databases, URL then Fallbacks; active indexes the
	// one in use, which Load and Watch both follow.
	targets  []*pgx.ConnConfig
	active   atomic.Int32
	switches atomic.Uint64
	repl     replState
	behind   atomic.Bool // the standby in use is behind the data served

	mu      sync.Mutex // serialises Load
	conn    *pgx.Conn  // for loads; nil until connected or after a failure
	connIdx int        // the target conn is connected to
	zones   map[int64]*zones.Zone
	sorted  []*zones.Zone // zones by origin, shared with the data sets returned
	version uint64        // of zones; 0 before the first load from the database

	closed    bool             // after Close
	cacheCh   chan *store.Data // to the cache writer; nil until the first write
	cacheDone chan struct{}    // closed when the cache writer has finished

	applied  atomic.Uint64 // version last returned by Load, for Watch's polls
	degraded atomic.Bool
	diverged atomic.Bool // the database went back behind the data loaded
	reason   atomic.Pointer[string]

	prunes [2]atomic.Uint64 // PruneChangeLog passes, by result (index 1: ok)
	pruned atomic.Uint64    // change-log rows they deleted
}

var _ store.Store = (*Store)(nil)

// New returns a Store for opts. It does not connect: a server must be able
// to start (from its cache file) while the database is away.
func New(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.StandbyPollInterval <= 0 {
		opts.StandbyPollInterval = DefaultStandbyPollInterval
	}
	if opts.FailbackInterval <= 0 {
		opts.FailbackInterval = DefaultFailbackInterval
	}
	if opts.Policy == (signing.Policy{}) {
		opts.Policy = signing.DefaultPolicy()
	}
	s := &Store{opts: opts}
	for i, u := range append([]string{opts.URL}, opts.Fallbacks...) {
		cfg, err := pgx.ParseConfig(u)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("postgres: database URL: %w", err)
			}
			return nil, fmt.Errorf("postgres: fallback database %d: %w", i, err)
		}
		cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 5*time.Second)
		// A cancelled wait for a notification should just stop waiting,
		// not send the server a cancel request over a new connection.
		cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
		}
		s.targets = append(s.targets, cfg)
	}
	return s, nil
}

// target returns the configuration of the database in use.
func (s *Store) target() *pgx.ConnConfig { return s.targets[s.active.Load()] }

// Close releases the connection and waits until the last data loaded is
// in the cache file.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
	if s.cacheCh != nil {
		close(s.cacheCh)
		<-s.cacheDone
	}
}

// Degraded reports whether the database is unreachable (the server then
// answers from its last snapshot) and why.
func (s *Store) Degraded() (bool, string) {
	if !s.degraded.Load() {
		return false, ""
	}
	if r := s.reason.Load(); r != nil {
		return true, *r
	}
	return true, ""
}

func (s *Store) setDegraded(err error) {
	msg := err.Error()
	s.reason.Store(&msg)
	if !s.degraded.Swap(true) {
		s.opts.Logger.Error("PostgreSQL unreachable: serving the last snapshot until it returns", "err", err)
	}
}

// errDiverged marks a database older than the data already loaded.
var errDiverged = errors.New("postgres: the database is older than the data served (restored from a backup?); serving the last snapshot")

// Diverged reports whether the database went back behind the data served
// (restored from an older backup, say). The server then keeps serving
// what it has until the database moves past it, and then loads it whole;
// restarting the server without its cache file serves the database at
// once.
func (s *Store) Diverged() bool { return s.diverged.Load() }

func (s *Store) setDiverged(version uint64) {
	if !s.diverged.Swap(true) {
		s.opts.Logger.Error("PostgreSQL's history diverged from the data served (restored from a backup?): serving the last snapshot until the database moves past it, then loading it whole; restart the server without its cache file to serve the database now",
			"database_version", version, "served_version", s.applied.Load())
	}
}

func (s *Store) setHealthy() {
	if s.degraded.Swap(false) {
		s.opts.Logger.Info("PostgreSQL reachable again")
	}
}

// Load implements store.Store. The first load reads every zone; later ones
// read the change log since the last load and reread only the zones it
// names (every zone when the log was pruned past the last load, see
// PruneChanges), all in one read-only REPEATABLE READ transaction, so the
// result is one consistent version. When the database cannot be reached
// before anything was loaded from it, the cache file is served instead.
func (s *Store) Load(ctx context.Context) (*store.Data, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reused := s.conn != nil
	d, err := s.load(ctx)
	// The connection kept since the last load may have died since (the
	// database restarted while nothing was loaded): only its first use
	// finds out. Without a second try on a new connection, the load the
	// watcher asks for once the database is back failed, and nothing
	// asked again until the next change: the server stayed "unreachable"
	// (meridian_store_up 0) with the database up, and a change made
	// during the outage waited for a poll (TestE2EFaultPostgresOutage).
	if err != nil && reused && ctx.Err() == nil && s.conn != nil && s.conn.IsClosed() {
		s.conn = nil
		d, err = s.load(ctx)
	}
	if err == nil {
		s.setHealthy()
		s.applied.Store(d.Version)
		s.writeCache(d)
		return d, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
	var se *schemaError
	if errors.As(err, &se) || errors.Is(err, errDiverged) {
		return nil, err // not an outage: a cache would hide a real problem
	}
	s.setDegraded(err)
	if s.zones == nil && s.opts.CacheFile != "" {
		c, cerr := readCache(s.opts.CacheFile, s.keyOpener())
		if cerr != nil {
			return nil, fmt.Errorf("%w (and the cache file: %w)", err, cerr)
		}
		s.opts.Logger.Warn("Serving the cache file until PostgreSQL is reachable", "file", s.opts.CacheFile, "version", c.Version, "zones", len(c.Zones))
		return c, nil
	}
	return nil, err
}

// schemaError marks a database whose schema this binary cannot use.
type schemaError struct{ err error }

func (e *schemaError) Error() string { return e.err.Error() }
func (e *schemaError) Unwrap() error { return e.err }

// connect returns the load connection, to the database in use: when the
// watcher moved to another one of the list, the load follows, so that
// both read the same database.
func (s *Store) connect(ctx context.Context) (*pgx.Conn, error) {
	if s.conn != nil && !s.conn.IsClosed() && s.connIdx == int(s.active.Load()) {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
	conn, idx, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.conn, s.connIdx = conn, idx
	return conn, nil
}

func (s *Store) load(ctx context.Context) (*store.Data, error) {
	if o := s.keyOpener(); o != nil {
		ctx = context.WithValue(ctx, keysKey{}, o) // ReadZones opens the zones' DNSSEC keys
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	var v int64
	var standby bool
	if err := tx.QueryRow(ctx, "SELECT version, pg_is_in_recovery() FROM meridian_version").Scan(&v, &standby); err != nil {
		return nil, fmt.Errorf("postgres: read version: %w", err)
	}
	version := uint64(v)
	if standby && s.zones != nil && version < s.version && !s.diverged.Load() {
		// A standby behind the database read before: the same history,
		// later. Keep what we have (behindOrDiverged).
		s.behindOrDiverged(version, true)
		return s.data(nil), nil
	}
	if s.behind.Swap(false) {
		s.opts.Logger.Info("The standby caught up with the data served", "version", version)
	}
	next := s.zones
	// pruned is the change log's watermark when it was pruned past our
	// version: the log can no longer say which zones changed since.
	var pruned uint64
	if s.zones != nil && version > s.version && !s.diverged.Load() {
		var through int64
		if err := tx.QueryRow(ctx, "SELECT pruned_through FROM change_log").Scan(&through); err != nil {
			return nil, fmt.Errorf("postgres: read change log: %w", err)
		}
		switch {
		case through > 0 && s.version <= uint64(through):
			pruned = uint64(through)
		case s.version > 0:
			// Above the watermark, the change that gave us our version
			// must still be in the log; if not, the database was
			// restored from a backup and has moved on since: changes
			// after our version would belong to another history than
			// the one we hold.
			var ours bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM changes WHERE version = $1)", int64(s.version)).Scan(&ours); err != nil {
				return nil, fmt.Errorf("postgres: read change log: %w", err)
			}
			if !ours {
				s.setDiverged(version)
			}
		}
	}
	switch {
	case s.zones == nil:
		if next, err = ReadZones(ctx, tx, nil); err != nil {
			return nil, err
		}
	case version < s.version:
		// A database restored from an older backup, say: serving it would
		// move versions backwards, which servers refuse anyway.
		s.setDiverged(version)
		return nil, fmt.Errorf("%w: database version %d, %d already loaded", errDiverged, version, s.version)
	case s.diverged.Load():
		// The database went back and has since moved past what we
		// loaded: its change log no longer continues our history, so
		// changes since our version would mix two histories. Read it
		// whole.
		if next, err = ReadZones(ctx, tx, nil); err != nil {
			return nil, err
		}
		s.opts.Logger.Warn("PostgreSQL moved past the data served after going back; loaded it whole", "version", version)
	case pruned > 0:
		// This server fell further behind than the change log's
		// retention (cut off from the database, say): reading every
		// zone is the only way to catch up. The data is the same
		// history, so this is no divergence.
		if next, err = ReadZones(ctx, tx, nil); err != nil {
			return nil, err
		}
		s.opts.Logger.Warn("The change log was pruned past the version served: loaded every zone",
			"served_version", s.version, "pruned_through", pruned, "version", version, "zones", len(next))
	case version > s.version:
		rows, err := tx.Query(ctx, "SELECT DISTINCT zone_id FROM changes WHERE version > $1 AND version <= $2", int64(s.version), v)
		if err != nil {
			return nil, fmt.Errorf("postgres: read change log: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("postgres: read change log: %w", err)
		}
		changed, err := ReadZones(ctx, tx, ids)
		if err != nil {
			return nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, fmt.Errorf("postgres: commit: %w", err)
		}
		// Only the zones changed are touched, in place: the cost of a
		// change does not grow with the number of zones.
		delta := &store.Delta{From: s.version}
		for _, id := range ids {
			old, had := s.zones[id]
			z, ok := changed[id]
			if had && (!ok || old.Origin != z.Origin) {
				delta.Removed = append(delta.Removed, old.Origin) // deleted, or renamed
			}
			if ok {
				s.zones[id] = z
				delta.Changed = append(delta.Changed, z)
			} else {
				delete(s.zones, id)
			}
		}
		s.sorted = patchSorted(s.sorted, delta)
		s.version = version
		s.diverged.Store(false)
		s.opts.Logger.Debug("Applied changes", "from", delta.From, "to", version, "zones", len(ids))
		return s.data(delta), nil
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	s.zones, s.version = next, version
	s.sorted = nil
	for _, z := range s.zones {
		s.sorted = append(s.sorted, z)
	}
	slices.SortFunc(s.sorted, compareOrigins)
	s.diverged.Store(false)
	return s.data(nil), nil
}

func compareOrigins(a, b *zones.Zone) int { return cmp.Compare(a.Origin, b.Origin) }

// data returns the zones loaded, sorted, at their version, with the
// delta from the data returned before (nil: none to tell).
func (s *Store) data(delta *store.Delta) *store.Data {
	return &store.Data{Version: s.version, Zones: s.sorted, Delta: delta}
}

// patchSorted returns sorted, a list of zones by origin shared with data
// sets already returned, with delta applied, in a new list.
func patchSorted(sorted []*zones.Zone, delta *store.Delta) []*zones.Zone {
	out := slices.Clone(sorted)
	find := func(origin string) (int, bool) {
		return slices.BinarySearchFunc(out, origin, func(z *zones.Zone, o string) int { return cmp.Compare(z.Origin, o) })
	}
	for _, o := range delta.Removed {
		if i, ok := find(o); ok {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, z := range delta.Changed {
		if i, ok := find(z.Origin); ok {
			out[i] = z
		} else {
			out = slices.Insert(out, i, z)
		}
	}
	return out
}

// Watch implements store.Store. On a primary it listens for change
// notifications on a connection of its own and reports a change for each;
// when none arrives for PollInterval it compares the database version with
// the last one loaded, so a lost notification costs at most one interval.
// On a hot standby, where notifications never arrive, it polls the version
// every StandbyPollInterval instead, and measures the standby's lag. When
// the connection fails it reconnects with backoff, to the next database of
// the list when one does not answer, and reports a change once back, so
// the caller catches up on whatever happened meanwhile. It returns only
// when ctx is done.
func (s *Store) Watch(ctx context.Context, changed func()) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, changed, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errSwitch) {
			continue
		}
		s.setDegraded(err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
	return nil
}

// listen runs one watch connection until it fails, the store moves to
// another database, or ctx is done.
func (s *Store) listen(ctx context.Context, changed, connected func()) error {
	conn, idx, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer conn.Close(context.Background())
	st, err := pollReplica(ctx, conn)
	if err != nil {
		return err
	}
	s.noteReplica(st)
	if st.standby {
		s.opts.Logger.Info("Reading a hot standby: following the change log by polling", "database", s.describe(idx), "interval", s.opts.StandbyPollInterval.String())
		connected()
		changed() // anything may have changed while nobody watched
		return s.follow(ctx, conn, idx, changed)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	connected()
	changed() // anything may have changed while nobody listened
	lastFailback := time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			changed()
		case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
			st, err := pollReplica(ctx, conn)
			if err != nil {
				return err
			}
			s.noteReplica(st)
			switch applied := s.applied.Load(); {
			case uint64(st.version) > applied:
				s.opts.Logger.Info("Change found by polling (notification lost?)", "version", st.version, "loaded", applied)
				changed()
			case uint64(st.version) < applied:
				s.behindOrDiverged(uint64(st.version), false)
			}
			if s.failback(ctx, idx, &lastFailback) || idx != int(s.active.Load()) {
				return errSwitch
			}
		default:
			return fmt.Errorf("postgres: wait for notification: %w", err)
		}
	}
}

// follow polls a hot standby's version every StandbyPollInterval and
// reports a change when it moved past the version loaded. The poll is one
// row read by its primary key plus a few functions, whatever the number
// of zones; a change then costs one Load, which reads the change log by
// its primary key range. When the standby is promoted it returns
// errSwitch, so that the next connection listens instead.
func (s *Store) follow(ctx context.Context, conn *pgx.Conn, idx int, changed func()) error {
	t := time.NewTicker(s.opts.StandbyPollInterval)
	defer t.Stop()
	lastFailback := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := pollReplica(ctx, conn)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.noteReplica(st)
		if !st.standby {
			s.opts.Logger.Info("The standby was promoted: listening for notifications", "database", s.describe(idx))
			return errSwitch
		}
		switch applied := s.applied.Load(); {
		case uint64(st.version) > applied:
			s.opts.Logger.Debug("Change found by polling the standby", "version", st.version, "loaded", applied)
			changed()
		case uint64(st.version) < applied:
			s.behindOrDiverged(uint64(st.version), true)
		}
		if s.failback(ctx, idx, &lastFailback) || idx != int(s.active.Load()) {
			return errSwitch
		}
	}
}

// Command meridian-checker keeps endpoint health true: it probes every
// endpoint of every pool that has a health check, at the endpoint's own
// address, decides up and down with hysteresis, and writes only state
// transitions (and heartbeats) to the PostgreSQL store, where the verdicts
// of all live checkers combine by the pool's quorum into the health the
// DNS servers answer from.
//
// Usage:
//
//	meridian-checker --database URL [--id NAME] [--region NAME] [--listen ADDR]
//
// With --listen it also serves, on that address, the health-agent API
// (health/agentapi, under /v1), the status page (health/statuspage, at
// /status) and Prometheus metrics (/metrics).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/health"
	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/health/statuspage"
	"github.com/meridiandns/meridian/health/targets"
	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/internal/httpserve"
	imetrics "github.com/meridiandns/meridian/internal/metrics"
	"github.com/meridiandns/meridian/store/postgres"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version is used.
var version = ""

// versionString returns the version set at build time, else the module
// version, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the checker's settings.
type options struct {
	database      string
	id, region    string
	heartbeat     time.Duration
	maxConcurrent int
	logLevel      string
	listen        string // HTTP address (agent API, status page, metrics); "" for none
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	host, _ := os.Hostname()
	var o options
	fs := pflag.NewFlagSet("meridian-checker", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.database, "database", os.Getenv("MERIDIAN_STORE_DATABASE"), "PostgreSQL URL (default $MERIDIAN_STORE_DATABASE)")
	fs.StringVar(&o.id, "id", host, "this checker's id: keep it across restarts, unique among checkers")
	fs.StringVar(&o.region, "region", "", "where this checker runs, for operators")
	fs.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "heartbeat interval; a checker silent for 3 intervals stops counting")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", 256, "probes in flight at most")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.listen, "listen", "", "serve the health-agent API, the status page (/status) and metrics (/metrics) on this address (host:port); none by default")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian-checker --database URL [flags]\n\nProbe the endpoints of the pools in a Meridian PostgreSQL store and record their health.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian-checker", args, stderr); !ok {
		return code
	}
	if o.database == "" || o.id == "" || fs.NArg() > 0 || o.heartbeat <= 0 {
		fs.Usage()
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "meridian-checker: --log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := checker(ctx, o, logger); err != nil {
		logger.Error("Exiting", "err", err)
		return 1
	}
	return 0
}

// checker runs until ctx is done.
func checker(ctx context.Context, o options, logger *slog.Logger) error {
	pcfg, err := pgxpool.ParseConfig(o.database)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	postgres.ConfigureWriter(pcfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	ttl := 3 * o.heartbeat
	if err := postgres.RegisterChecker(ctx, pool, o.id, o.region, ttl); err != nil {
		return err
	}
	reg := imetrics.NewRegistry(versionString())
	m := newCheckerMetrics(reg)
	m.heartbeatAt(time.Now()) // registering is the first heartbeat
	m.storeAnswered(true)
	st, err := postgres.New(postgres.Options{URL: o.database, NoKeys: true, Logger: logger})
	if err != nil {
		return err
	}
	defer st.Close()
	// HTTP: listen before anything runs, so a bad address fails now.
	var api *http.Server
	var apiListener net.Listener
	if o.listen != "" {
		if apiListener, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		api = agentapi.NewServer(o.listen, httpHandler(pool, o.id, reg, m, logger))
	}
	logger.Info("Checker started", "id", o.id, "region", o.region, "version", versionString())

	ag := &agentChecks{db: pool, logger: logger, metrics: m, last: map[string]agentSent{}}
	sched := health.NewScheduler(health.SchedulerOptions{MaxConcurrent: o.maxConcurrent, Logger: logger,
		Probe: func(ctx context.Context, t health.Target) health.Result {
			r := ag.probe(ctx, t)
			m.probed(t.Check.Type, r)
			return r
		}})
	w := &writer{db: pool, id: o.id, logger: logger, metrics: m, pending: map[string]verdict{}, timeout: ttl}
	reload := make(chan struct{}, 1)
	good := newLastGood(logger)
	load := func() {
		d, err := st.Load(ctx)
		if err != nil {
			logger.Error("Loading targets failed; probing the previous ones", "err", err)
			return
		}
		ts := targets.FromZones(good.apply(d.Zones), logger)
		if err := sched.SetTargets(ts); err != nil {
			logger.Warn("Some endpoints are not probed", "err", err)
		}
		m.targets.Set(float64(len(sched.Snapshot())))
		logger.Info("Targets loaded", "version", d.Version, "targets", len(ts))
	}
	load()

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	if api != nil {
		wg.Go(func() {
			logger.Info("HTTP listening: agent API, status page, metrics", "address", apiListener.Addr().String())
			if err := httpserve.Serve(ctx, api, apiListener); err != nil {
				logger.Error("HTTP server failed", "err", err)
			}
		})
	}
	wg.Go(func() {
		st.Watch(ctx, func() {
			select {
			case reload <- struct{}{}:
			default:
			}
		})
	})
	// SIGHUP reloads the targets, as it reloads zones in meridian serve,
	// rather than killing the checker (its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				logger.Info("Reloading targets", "reason", "SIGHUP")
				load()
			case <-reload:
				load()
			}
		}
	})
	wg.Go(func() {
		t := time.NewTicker(o.heartbeat)
		defer t.Stop()
		countCheckers(ctx, pool, m, logger)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hctx, cancel := context.WithTimeout(ctx, ttl)
			expired, err := postgres.Heartbeat(hctx, pool, o.id, ttl)
			cancel()
			if err != nil {
				logger.Warn("Heartbeat failed", "err", err)
				m.storeAnswered(false)
			} else {
				m.heartbeatAt(time.Now())
				m.storeAnswered(true)
				if len(expired) > 0 {
					logger.Warn("Checkers no longer heartbeating; their verdicts stop counting", "checkers", expired)
				}
				countCheckers(ctx, pool, m, logger)
			}
			w.flush(ctx) // verdicts that could not be written before
			// Agent API: expired agent reports hand over to the quorum.
			if n, err := postgres.ExpireReports(ctx, pool); err != nil {
				logger.Warn("Expiring agent reports failed", "err", err)
			} else if n > 0 {
				logger.Info("Agent reports expired; the checkers' quorum decides again", "endpoints", n)
			}
		}
	})
	sched.Run(ctx, func(t health.Target, tr health.Transition) { w.record(ctx, t.Key, tr) })
	return nil
}

// httpHandler serves, on --listen, the metrics at /metrics, the status
// page under /status (and / sends browsers there), and the health-agent
// API for everything else. Its server is agentapi.NewServer, with that
// server's timeouts and header limit; the API and the page limit bodies
// (64 KiB, 8 KiB) and keep store errors and panics out of their answers.
func httpHandler(db *pgxpool.Pool, id string, reg *prometheus.Registry, m *checkerMetrics, logger *slog.Logger) http.Handler {
	api := agentapi.New(agentapi.PG{DB: db}, logger)
	api.OnReport(func(accepted bool) { m.reported("api", accepted) })
	page := statuspage.New(statuspage.PG{PG: agentapi.PG{DB: db}}, id, logger)
	mux := http.NewServeMux()
	// The API and the page recover their own panics, in their own
	// formats; the metrics get Recover's plain "internal error".
	mux.Handle("GET /metrics", agentapi.Recover(imetrics.Handler(reg), logger, nil))
	mux.Handle("/status", page)
	mux.Handle("/status/", page)
	mux.Handle("GET /{$}", http.RedirectHandler("/status", http.StatusSeeOther))
	mux.Handle("/", api)
	return mux
}

// countCheckers sets the gauge of live and expired checkers.
func countCheckers(ctx context.Context, db *pgxpool.Pool, m *checkerMetrics, logger *slog.Logger) {
	cs, err := postgres.ListCheckers(ctx, db)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("Counting checkers failed", "err", err)
			m.storeAnswered(false)
		}
		return
	}
	var live, expired int
	for _, c := range cs {
		if c.Live {
			live++
		} else {
			expired++
		}
	}
	m.checkers.WithLabelValues("live").Set(float64(live))
	m.checkers.WithLabelValues("expired").Set(float64(expired))
}

// verdict is a transition waiting to be written.
type verdict struct {
	pool   string
	addr   netip.Addr
	up     bool
	reason string
}

// writer records transitions; those that fail (database away) are kept,
// the latest per endpoint, and retried with each heartbeat. Writes are
// serialised, so that a retried verdict never overwrites a newer one.
type writer struct {
	db      *pgxpool.Pool
	id      string
	logger  *slog.Logger
	metrics *checkerMetrics
	mu      sync.Mutex // held across writes
	pending map[string]verdict
	// timeout bounds each write: one stuck on a cut-off network must
	// not hold up the others and the heartbeat for longer than the
	// checker's ttl, after which its verdicts stop counting anyway (a
	// failed write is retried with the next heartbeat). A write from far
	// away is about ten round trips, and may wait for the version row.
	timeout time.Duration
}

func (w *writer) record(ctx context.Context, key string, tr health.Transition) {
	pool, addr, ok := targets.SplitKey(key)
	if !ok {
		return
	}
	v := verdict{pool: pool, addr: addr, up: tr.Up, reason: tr.Reason}
	w.logger.Info("Endpoint transition", "pool", pool, "address", addr, "up", tr.Up, "reason", tr.Reason)
	w.metrics.transition(pool, tr.Up)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.write(ctx, v); err != nil {
		w.logger.Warn("Could not record a transition; will retry", "pool", pool, "address", addr, "err", err)
		w.pending[key] = v
	} else {
		delete(w.pending, key) // an older one that failed is stale now
	}
	w.metrics.pending.Set(float64(len(w.pending)))
}

// write writes v; the caller holds w.mu.
func (w *writer) write(ctx context.Context, v verdict) error {
	parent := ctx // its end is a shutdown, not a store that does not answer
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	state, changed, err := postgres.RecordVerdict(ctx, w.db, w.id, v.pool, v.addr, v.up, v.reason)
	if err != nil {
		if errors.Is(err, postgres.ErrUnknownEndpoint) || errors.Is(err, postgres.ErrUnknownPool) {
			return nil // removed meanwhile: nothing to record
		}
		if parent.Err() == nil {
			w.metrics.storeAnswered(false)
		}
		return err
	}
	w.metrics.storeAnswered(true)
	if changed {
		w.logger.Info("Endpoint health changed", "pool", v.pool, "address", v.addr, "state", state.String())
	}
	return nil
}

// flush retries the transitions that could not be written.
func (w *writer) flush(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, v := range w.pending {
		if w.write(ctx, v) == nil {
			delete(w.pending, key)
		}
	}
	w.metrics.pending.Set(float64(len(w.pending)))
}

// agentChecks maps what HAProxy agent-check agents say onto the same
// agent reports the JSON API takes, weights and drain included, so that
// existing agents work unchanged. A report is written when the agent's
// words change, and renewed well before it expires, not on every probe.
type agentChecks struct {
	db      *pgxpool.Pool
	logger  *slog.Logger
	metrics *checkerMetrics
	mu      sync.Mutex
	last    map[string]agentSent
}

type agentSent struct {
	words string
	at    time.Time
}

func (a *agentChecks) probe(ctx context.Context, t health.Target) health.Result {
	r := health.Probe(ctx, t)
	if t.Check.Type != health.TypeAgent || r.Agent == "" {
		return r
	}
	ttl := 10 * t.Check.WithDefaults().Interval
	a.mu.Lock()
	prev := a.last[t.Key]
	due := prev.words != r.Agent || time.Since(prev.at) > ttl/2
	a.mu.Unlock()
	if !due {
		return r
	}
	st, err := agentapi.ParseStatus(r.Agent)
	if err != nil {
		a.metrics.reported("agent-check", false)
		return r // the probe's verdict already says what is wrong
	}
	rep := postgres.Report{Status: st.State, WeightPercent: st.WeightPercent, Capacity: st.MaxConn, Message: st.Note, TTL: ttl}
	pool, addr, ok := targets.SplitKey(t.Key)
	if !ok {
		return r
	}
	// The probe's context is nearly spent; the write gets its own time.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, _, err := postgres.ReportAgent(wctx, a.db, pool, addr, rep); err != nil {
		a.logger.Warn("Could not record what an agent said", "pool", pool, "address", addr, "err", err)
		a.metrics.reported("agent-check", false)
		return r
	}
	a.metrics.reported("agent-check", true)
	a.mu.Lock()
	a.last[t.Key] = agentSent{words: r.Agent, at: time.Now()}
	a.mu.Unlock()
	return r
}

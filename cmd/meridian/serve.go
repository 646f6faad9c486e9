package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/internal/dnstaplog"
	"github.com/meridiandns/meridian/internal/httpserve"
	"github.com/meridiandns/meridian/secondary"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/transfer"
	"github.com/meridiandns/meridian/update"
	"github.com/meridiandns/meridian/zones"
	"github.com/prometheus/client_golang/prometheus"
)

// serveCmd implements "meridian serve": it serves the configured zones
// until SIGINT or SIGTERM, reloading them on SIGHUP and when they change.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newServeFlags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian serve [flags]\n\nServe DNS for the configured zones.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian serve", args, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meridian serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(fs)
	if err != nil {
		fmt.Fprintf(stderr, "meridian serve: %v\n", err)
		return 1
	}
	logger := newLogger(stderr, cfg.Log)
	logger.Info("Starting Meridian", "version", versionString(), "config", cfg.file, "zone_files", cfg.Zones.Files, "database", cfg.Store.Database != "")
	for _, w := range cfg.warnings {
		logger.Warn("Configuration: " + w)
	}

	// Take the signals before anything else: SIGHUP's default action
	// would otherwise kill a process that is still starting.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := serve(ctx, cfg, logger, sigs); err != nil {
		logger.Error("Exiting", "err", err)
		return 1
	}
	logger.Info("Stopped")
	return 0
}

// serve wires the server, the store and the reloader and runs them until
// ctx is done or a terminating signal arrives on sigs.
func serve(ctx context.Context, cfg *config, logger *slog.Logger, sigs <-chan os.Signal) error {
	srv, err := dnsserver.New(cfg.server(), logger)
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	pgStore, _ := st.(*postgres.Store) // nil with zone files; the wrappers below hide it
	idle := func(ctx context.Context) error { <-ctx.Done(); return nil }
	// Inside the health overlay, so that in-process health reaches the
	// pools defined on secondary zones.
	secActor := actor{"secondary zones", idle}
	var sec *secondary.Manager
	if cfg.Secondary.enabled() {
		sc, err := cfg.Secondary.parse(cfg.Transfer.TSIGKeys)
		if err != nil {
			return err
		}
		if sec, err = secondary.New(sc, logger); err != nil {
			return err
		}
		st = sec.Store(st)
		srv.SetNotifier(sec)
		secActor.run = sec.Run
		logger.Info("Secondary zones configured", "zones", sec.Origins())
	}
	pruner := actor{"change log pruner", idle}
	if pg := pgStore; pg != nil && cfg.Store.ChangeLogRetention > 0 {
		// Every server prunes: one is enough, but none is special, and
		// concurrent prunes are safe (postgres.PruneChanges).
		pruner.run = func(ctx context.Context) error {
			pg.PruneChangeLog(ctx, cfg.Store.ChangeLogRetention, postgres.DefaultPruneInterval)
			return nil
		}
	}
	checks, agents := actor{"health checker", idle}, actor{"agent API", idle}
	if cfg.Store.Database == "" && (cfg.Health.Checks || cfg.Health.AgentListen != "") {
		h := store.NewHealth()
		if cfg.Health.Checks {
			lc := &localChecker{health: h, logger: logger}
			checks.run = lc.run
		}
		st = store.WithHealth(st, h)
		if cfg.Health.AgentListen != "" {
			run, err := agentAPI(cfg, h, logger)
			if err != nil {
				return err
			}
			agents.run = run
		}
	}
	var pub publisher = srv
	xfrActor := actor{"zone transfers", idle}
	var xfr *transfer.Server
	if cfg.Transfer.enabled() {
		xc, err := cfg.Transfer.parse()
		if err != nil {
			return err
		}
		if xfr, err = transfer.New(xc, logger); err != nil {
			return err
		}
		srv.SetTransferer(xfr)
		pub = transferPublisher{srv, xfr}
		xfrActor.run = xfr.Run
	}
	// Dynamic updates and the management API write zone files through
	// one store.Files, which serialises their writes.
	writeFiles := store.NewFiles(cfg.Zones.Files, logger)
	var upd *update.Updater
	if cfg.Update.enabled() {
		if upd, err = newUpdater(cfg, writeFiles, logger); err != nil {
			return err
		}
		srv.SetUpdater(upd)
	}
	apiActor := actor{"management API", idle}
	var apiMetrics prometheus.Collector
	if cfg.API.Listen != "" {
		run, free, m, err := managementAPI(ctx, cfg, writeFiles, logger)
		if err != nil {
			return err
		}
		defer free()
		apiActor.run, apiMetrics = run, m
	}
	r := newReloader(st, pub, logger)
	tapActor := actor{"dnstap", idle}
	var tap *dnstaplog.Logger
	if cfg.Dnstap.Socket != "" || cfg.Dnstap.File != "" {
		identity := cfg.Dnstap.Identity
		if identity == "" {
			identity, _ = os.Hostname()
		}
		tap, err = dnstaplog.New(dnstaplog.Options{
			Socket: cfg.Dnstap.Socket, File: cfg.Dnstap.File, Queue: cfg.Dnstap.Queue,
			Identity: identity, Version: "meridian " + versionString(), Logger: logger,
		})
		if err != nil {
			return err
		}
		srv.SetTap(tap.Log)
		tapActor.run = tap.Run
	}
	o := newOps(srv, r, st, tap, logger)
	o.addReplica(pgStore, cfg.Store.MaxReplicationLag)
	if xfr != nil {
		o.reg.MustRegister(xfr)
	}
	if sec != nil {
		o.reg.MustRegister(sec)
	}
	if upd != nil {
		o.reg.MustRegister(upd)
	}
	if apiMetrics != nil {
		o.reg.MustRegister(apiMetrics)
	}
	if cfg.HTTP.Listen != "" {
		// Served from the start, so that /readyz says "loading" during a
		// long first load instead of refusing connections.
		httpActor, err := o.listen(cfg.HTTP.Listen)
		if err != nil {
			return err
		}
		hctx, stopHTTP := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := httpActor.run(hctx); err != nil {
				logger.Error("HTTP server failed", "err", err)
			}
		}()
		defer func() { stopHTTP(); <-done }()
	}
	var geoDB *geo.DB
	if cfg.Geo.Database != "" {
		// A configured database that does not open is a configuration
		// error: better to refuse to start than to answer without geo.
		db, err := geo.Open(cfg.Geo.Database)
		if err != nil {
			return err
		}
		srv.SetGeo(db)
		geoDB = db
		logger.Info("GeoIP database loaded", "path", cfg.Geo.Database, "locations", db.Len(), "coordinates", db.HasCoords())
	} else {
		logger.Warn("No GeoIP database configured: pools order datacenters by CIDR rules and configuration order only")
	}
	// The first load must succeed: there is nothing to fall back to.
	if err := r.reload(ctx); err != nil {
		return fmt.Errorf("initial load: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	var addrs []string
	for _, a := range srv.Addrs() {
		addrs = append(addrs, a.String())
	}
	logger.Info("Listening", "addrs", addrs)
	// Zones, GeoIP and the health in the store are loaded (without a
	// database, in-process checks start from unknown: see docs/health.md).
	o.markReady()
	defer o.markStopping()

	return runGroup(ctx,
		tapActor,
		xfrActor,
		secActor,
		actor{"watchdog", o.watchdog},
		actor{"dns server", srv.Serve},
		actor{"reloader", r.run},
		pruner,
		checks,
		agents,
		apiActor,
		actor{"geoip watcher", func(ctx context.Context) error {
			if cfg.Geo.Database != "" {
				geo.Watch(ctx, cfg.Geo.Database, cfg.Geo.ReloadInterval, geoDB, func(db *geo.DB, err error) {
					o.geoReloads[b2i(err == nil)].Add(1)
					if err == nil {
						srv.SetGeo(db)
					}
				}, logger)
			}
			<-ctx.Done()
			return nil
		}},
		actor{"signals", func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case s := <-sigs:
					if s == syscall.SIGHUP {
						r.requestReload("SIGHUP")
						reloadCookies(cfg, srv, logger)
						continue
					}
					logger.Info("Shutting down", "signal", s.String())
					o.markStopping()
					lameduck(ctx, cfg.DNS.Lameduck, sigs, logger)
					return nil
				}
			}
		}},
	)
}

// reloadCookies reads the configuration again and applies a change of
// dns.cookies, the one section a running server takes without a restart,
// so that a fleet rolls its cookie secret over with SIGHUP. The secrets
// are never logged.
func reloadCookies(cfg *config, srv *dnsserver.Server, logger *slog.Logger) {
	if cfg.reread == nil {
		return
	}
	next, err := cfg.reread()
	if err != nil {
		logger.Error("Configuration not reloaded; DNS cookies unchanged", "err", err)
		return
	}
	if reflect.DeepEqual(next.DNS.Cookies, cfg.DNS.Cookies) {
		return
	}
	cookies, _ := next.DNS.Cookies.parse() // checked by loadConfig
	srv.SetCookies(cookies)
	logger.Info("DNS cookies reloaded", "enabled", next.DNS.Cookies.Enabled, "secret_set", next.DNS.Cookies.Secret != "", "accepted_secrets", len(next.DNS.Cookies.AcceptSecrets))
	cfg.DNS.Cookies = next.DNS.Cookies
}

// lameduck keeps the server answering for d after shutdown began, while
// /readyz reports it, so that whatever routes queries here stops first;
// another terminating signal or ctx ends it early.
func lameduck(ctx context.Context, d time.Duration, sigs <-chan os.Signal, logger *slog.Logger) {
	if d <= 0 {
		return
	}
	logger.Info("Lame duck: still answering until the sockets close", "for", d.String())
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case s := <-sigs:
			if s != syscall.SIGHUP {
				logger.Info("Lame duck ended early", "signal", s.String())
				return
			}
		}
	}
}

// agentAPI listens for the health-agent API of a server without a
// database and returns the actor serving it.
func agentAPI(cfg *config, h *store.Health, logger *slog.Logger) (func(context.Context) error, error) {
	mem, err := newMemAgents(cfg.Health.AgentTokens, h, logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Health.AgentListen)
	if err != nil {
		return nil, fmt.Errorf("health.agent_listen: %w", err)
	}
	srv := agentapi.NewServer(cfg.Health.AgentListen, agentapi.New(mem, logger))
	logger.Info("Agent API listening", "address", ln.Addr().String(), "tokens", len(cfg.Health.AgentTokens))
	return func(ctx context.Context) error { return httpserve.Serve(ctx, srv, ln) }, nil
}

// openStore returns the configured store: the database, or zone files.
func openStore(cfg *config, logger *slog.Logger) (store.Store, func(), error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Store.Database == "" {
		var st store.Store = store.NewFiles(cfg.Zones.Files, logger)
		if cfg.DNSSEC.KeyDir != "" {
			st = store.WithKeys(st, cfg.DNSSEC.KeyDir, cfg.DNSSEC.policy(), logger)
		}
		return st, func() {}, nil
	}
	ring, err := cfg.Store.keyring()
	if err != nil {
		return nil, nil, err
	}
	if ring != nil {
		// The id names the secret without revealing it, as
		// "meridianctl keys list" shows it for each key.
		logger.Info("DNSSEC key secret configured", "id", ring.ID(), "old_secrets", len(cfg.Store.KeyOldSecrets))
	}
	pg, err := postgres.New(postgres.Options{
		URL: cfg.Store.Database, CacheFile: cfg.Store.CacheFile,
		PollInterval: cfg.Store.PollInterval, Keys: ring, Policy: cfg.DNSSEC.policy(), Logger: logger,
		Fallbacks: cfg.Store.FallbackDatabases, StandbyPollInterval: cfg.Store.StandbyPollInterval,
	})
	if err != nil {
		return nil, nil, err
	}
	return pg, pg.Close, nil
}

// newLogger returns the process logger; cfg has been validated.
func newLogger(w io.Writer, cfg logConfig) *slog.Logger {
	level, _ := cfg.level()
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// transferPublisher publishes each snapshot to the DNS server, then,
// when the server took it, to the transfer server, which journals the
// changed zones and notifies their secondaries.
type transferPublisher struct {
	srv *dnsserver.Server
	x   *transfer.Server
}

func (p transferPublisher) Publish(snap *zones.Snapshot) bool {
	if !p.srv.Publish(snap) {
		return false
	}
	p.x.Publish(snap)
	return true
}

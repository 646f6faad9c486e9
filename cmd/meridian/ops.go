package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/internal/dnstaplog"
	"github.com/meridiandns/meridian/internal/httpserve"
	"github.com/meridiandns/meridian/internal/metrics"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
)

// ops is what "meridian serve" tells operators and their tools: metrics,
// liveness and readiness over HTTP (http.listen), and readiness,
// shutdown and watchdog pings to systemd (Type=notify).
type ops struct {
	srv    *dnsserver.Server
	reg    *prometheus.Registry
	logger *slog.Logger
	// ready is set once the first snapshot is served and the DNS sockets
	// are open; stopping once shutdown begins.
	ready, stopping atomic.Bool
	// geoReloads counts GeoIP database reloads by result (index 1: ok).
	geoReloads [2]atomic.Uint64
	// replica judges readiness on the database's replication
	// (replica.go); nil without a database.
	replica func(why string) (bool, string)
}

// newOps registers the server's metrics and those of the reloader, the
// store and the dnstap output (nil: off).
func newOps(srv *dnsserver.Server, r *reloader, st store.Store, tap *dnstaplog.Logger, logger *slog.Logger) *ops {
	o := &ops{srv: srv, reg: metrics.NewRegistry(versionString()), logger: logger}
	o.reg.MustRegister(srv.Collector(), invalidZones{srv})
	for _, ok := range []bool{true, false} {
		result := map[bool]string{true: "ok", false: "error"}[ok]
		o.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "reloads_total",
			Help:        "Loads and builds of the zone data, by result.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(r.reloads[b2i(ok)].Load()) }))
		o.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "geoip_reloads_total",
			Help:        "Reloads of a changed GeoIP database file, by result; on error the database in use stays.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(o.geoReloads[b2i(ok)].Load()) }))
	}
	up := func() bool {
		if d, ok := st.(interface{ Degraded() (bool, string) }); ok {
			bad, _ := d.Degraded()
			return !bad
		}
		return r.loadOK.Load()
	}
	o.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "store_up",
			Help: "1 while the store answers: the database is reachable, or the zone files were read.",
		}, func() float64 { return float64(b2i(up())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "store_synced",
			Help: "1 while the snapshot served holds the latest data the store has: the store answers and the last reload succeeded.",
		}, func() float64 {
			if d, ok := st.(interface{ Diverged() bool }); ok && d.Diverged() {
				return 0 // the database went back: what we serve is not what it holds
			}
			return float64(b2i(up() && r.reloadOK.Load()))
		}),
	)
	// Change-log pruning (store.change_log_retention): zero unless this
	// server prunes a database.
	prune := func() postgres.PruneStats {
		if p, ok := st.(interface{ PruneStats() postgres.PruneStats }); ok {
			return p.PruneStats()
		}
		return postgres.PruneStats{}
	}
	for result, f := range map[string]func() uint64{"ok": func() uint64 { return prune().OK }, "error": func() uint64 { return prune().Failed }} {
		o.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "store_change_log_prunes_total",
			Help:        "Passes of this server pruning the database's change log, by result.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(f()) }))
	}
	o.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "store_change_log_pruned_rows_total",
		Help: "Rows of the database's change log deleted by this server's pruning.",
	}, func() float64 { return float64(prune().Deleted) }))
	if tap != nil {
		for result, f := range map[string]func() uint64{"sent": tap.Sent, "dropped": tap.Dropped} {
			o.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metrics.Namespace, Name: "dnstap_messages_total",
				Help:        "dnstap messages written, and dropped because the output fell behind.",
				ConstLabels: prometheus.Labels{"result": result},
			}, func() float64 { return float64(f()) }))
		}
	}
	return o
}

// handler serves /metrics, /healthz and /readyz.
func (o *ops) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(o.reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := o.readiness()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready: "+why)
	})
	return mux
}

// readiness tells whether the server should get traffic, and why.
func (o *ops) readiness() (bool, string) {
	switch snap := o.srv.Snapshot(); {
	case o.stopping.Load():
		return false, "shutting down"
	case !o.ready.Load() || snap == nil:
		return false, "loading zones"
	default:
		why := fmt.Sprintf("serving version %d, %d zones", snap.Version, len(snap.Zones()))
		if o.replica != nil {
			return o.replica(why)
		}
		return true, why
	}
}

// listen opens the HTTP listener, so that a bad address fails at start,
// and returns the actor serving it.
func (o *ops) listen(addr string) (actor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return actor{}, fmt.Errorf("http.listen: %w", err)
	}
	hs := &http.Server{
		Handler:           o.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	o.logger.Info("HTTP listening", "address", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return actor{"http", func(ctx context.Context) error {
		return httpserve.Serve(ctx, hs, ln)
	}}, nil
}

// notify sends state to systemd when it started us with Type=notify;
// without NOTIFY_SOCKET it does nothing.
func (o *ops) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		o.logger.Warn("sd_notify failed", "err", err)
	}
}

// markReady records that zones, GeoIP and the first health state are
// loaded and the sockets open, and tells systemd.
func (o *ops) markReady() {
	o.ready.Store(true)
	_, why := o.readiness()
	o.notify(daemon.SdNotifyReady + "\nSTATUS=" + why)
}

// markStopping tells /readyz and systemd that shutdown began.
func (o *ops) markStopping() {
	if o.stopping.Swap(true) {
		return
	}
	o.notify(daemon.SdNotifyStopping + "\nSTATUS=shutting down")
}

// watchdog pings systemd's watchdog (WatchdogSec) while the server answers
// a query on its own UDP socket: a hung query path then leads systemd to
// restart us, which a timer alone would not.
func (o *ops) watchdog(ctx context.Context) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	addrs := o.srv.Addrs()
	if len(addrs) == 0 {
		<-ctx.Done()
		return nil
	}
	target := selfAddr(addrs[0].(*net.UDPAddr))
	c := &dns.Client{Net: "udp", Timeout: interval / 3}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	t := time.NewTicker(interval / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, _, err := c.ExchangeContext(ctx, m, target); err != nil {
			o.logger.Warn("Watchdog: the server did not answer itself; not pinging systemd", "err", err)
			continue
		}
		o.notify(daemon.SdNotifyWatchdog)
	}
}

// selfAddr is where to reach a listener bound to a: the loopback address
// of its family when it is bound to all addresses.
func selfAddr(a *net.UDPAddr) string {
	ip := a.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/metrics"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// publisher is the part of the DNS server a reloader feeds.
type publisher interface {
	// Publish serves snap from now on and reports whether it was taken
	// (a server refuses a snapshot older than the one it serves).
	Publish(snap *zones.Snapshot) bool
}

// reloader loads the store, builds a snapshot and publishes it: once at
// start, then whenever asked (SIGHUP) or told by the store that data
// changed. A failed reload is logged and changes nothing, so the last good
// snapshot keeps being served. A zone that cannot be compiled does not
// fail the reload: zones.Rebuild keeps serving its last good version, and
// the reloader logs it and exports it as meridian_zone_invalid.
type reloader struct {
	store  store.Store
	pub    publisher
	logger *slog.Logger
	// requests holds at most one pending reload; requests made while one
	// is pending are merged into it, so a burst costs one rebuild.
	requests chan string
	// last is the snapshot last published: a rebuild reuses its zones that
	// the store hands back unchanged.
	last *zones.Snapshot
	// resign asks for a rebuild when the first signed zone's signatures
	// are due for renewal (one timer, moved by each publish).
	resign *time.Timer
	// invalid holds the reason of each zone the last snapshot published
	// could not compile, by origin, so that each change is logged once.
	invalid map[string]string

	// For metrics: whether the last Load and the last whole reload
	// succeeded, and reloads by result (index 1: ok, 0: error).
	loadOK, reloadOK atomic.Bool
	reloads          [2]atomic.Uint64
}

func newReloader(st store.Store, pub publisher, logger *slog.Logger) *reloader {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &reloader{store: st, pub: pub, logger: logger, requests: make(chan string, 1)}
}

// reload loads, builds and publishes once.
func (r *reloader) reload(ctx context.Context) error {
	err := r.reloadOnce(ctx)
	r.reloadOK.Store(err == nil)
	r.reloads[b2i(err == nil)].Add(1)
	return err
}

func (r *reloader) reloadOnce(ctx context.Context) error {
	d, err := r.store.Load(ctx)
	r.loadOK.Store(err == nil)
	if err != nil {
		return err
	}
	start := time.Now()
	snap, err := build(r.last, d)
	if err != nil {
		return fmt.Errorf("build snapshot: %w", err)
	}
	if !r.pub.Publish(snap) {
		return fmt.Errorf("snapshot version %d is older than the one served", d.Version)
	}
	r.last = snap
	r.scheduleRamp(snap)
	r.logInvalid(snap)
	r.logger.Info("Snapshot published", "version", d.Version, "zones", len(snap.Zones()), "invalid", len(snap.Invalid()), "took", time.Since(start).Round(time.Microsecond).String())
	return nil
}

// logInvalid logs the zones snap could not compile that were not invalid,
// or not for the same reason, in the snapshot before, and the zones that
// are no longer invalid: one line per transition, not per reload.
func (r *reloader) logInvalid(snap *zones.Snapshot) {
	next := make(map[string]string, len(snap.Invalid()))
	for _, iz := range snap.Invalid() {
		reason := iz.Err.Error()
		next[iz.Origin] = reason
		if old, ok := r.invalid[iz.Origin]; ok && old == reason {
			continue
		}
		if iz.KeptVersion != 0 {
			r.logger.Error("Zone invalid: serving its last good version until it is fixed", "zone", iz.Origin, "reason", reason, "kept_version", iz.KeptVersion)
		} else {
			r.logger.Error("Zone invalid and not served: it has no good version to fall back on", "zone", iz.Origin, "reason", reason)
		}
	}
	for origin := range r.invalid {
		if _, still := next[origin]; still {
			continue
		}
		if _, served := slices.BinarySearch(snap.Zones(), origin); served {
			r.logger.Info("Zone valid again: serving its current version", "zone", origin)
		} else {
			r.logger.Info("Invalid zone removed from the store", "zone", origin)
		}
	}
	r.invalid = next
}

// zoneInvalidDesc describes meridian_zone_invalid.
var zoneInvalidDesc = prometheus.NewDesc(metrics.Namespace+"_zone_invalid",
	"1 for each zone of the store that could not be loaded or compiled: its last good version is served, or nothing when it has none.",
	[]string{"zone"}, nil)

// invalidZones exports meridian_zone_invalid from the snapshot served.
type invalidZones struct {
	srv interface{ Snapshot() *zones.Snapshot }
}

// Describe implements prometheus.Collector.
func (c invalidZones) Describe(ch chan<- *prometheus.Desc) { ch <- zoneInvalidDesc }

// Collect implements prometheus.Collector.
func (c invalidZones) Collect(ch chan<- prometheus.Metric) {
	snap := c.srv.Snapshot()
	if snap == nil {
		return
	}
	for _, iz := range snap.Invalid() {
		ch <- prometheus.MustNewConstMetric(zoneInvalidDesc, prometheus.GaugeValue, 1, iz.Origin)
	}
}

// build compiles d, reusing what prev compiled of unchanged zones: when
// d says how it differs from the data prev was built from (a PostgreSQL
// store's change), only the zones changed are looked at (zones.Patch).
// A bug in Build that some input triggers must not take down a server
// that is answering from the previous snapshot: the panic becomes a
// failed reload.
func build(prev *zones.Snapshot, d *store.Data) (snap *zones.Snapshot, err error) {
	defer func() {
		if p := recover(); p != nil {
			snap, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	if prev != nil && d.Delta != nil && d.Delta.From == prev.Version {
		return zones.Patch(prev, d.Delta.Changed, d.Delta.Removed, d.Version)
	}
	return zones.Rebuild(prev, d.Zones, d.Version)
}

// rampStep is how often a snapshot whose weights ramp up (slow start) is
// rebuilt; Rebuild then recompiles only the ramping zones.
const rampStep = time.Second

// scheduleRamp asks for a rebuild in a step while snap has endpoints in
// slow start, so that their weights grow.
func (r *reloader) scheduleRamp(snap *zones.Snapshot) {
	if until := snap.RampUntil(); !until.IsZero() {
		time.AfterFunc(min(rampStep, max(time.Until(until), 0)+10*time.Millisecond), func() { r.requestReload("slow start") })
	}
	if at := snap.ResignAt(); !at.IsZero() {
		d := max(time.Until(at), 0) + time.Second
		if r.resign == nil {
			r.resign = time.AfterFunc(d, func() { r.requestReload("signatures due for renewal") })
		} else {
			r.resign.Reset(d)
		}
	}
}

// requestReload asks run for a reload. It never blocks.
func (r *reloader) requestReload(reason string) {
	select {
	case r.requests <- reason:
	default: // one is pending already and will see the new data
	}
}

// run reloads on request and on store changes until ctx is done. It
// returns an error only when the store can no longer be watched.
func (r *reloader) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan error, 1)
	go func() {
		watched <- r.store.Watch(ctx, func() { r.requestReload("store changed") })
	}()
	for {
		select {
		case <-ctx.Done():
			<-watched
			return nil
		case err := <-watched:
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("watch ended")
			}
			return fmt.Errorf("watch store: %w", err)
		case reason := <-r.requests:
			r.logger.Info("Reloading zones", "reason", reason)
			if err := r.reload(ctx); err != nil {
				if ctx.Err() != nil {
					<-watched
					return nil
				}
				r.logger.Error("Reload failed, still serving the previous snapshot", "err", err)
			}
		}
	}
}

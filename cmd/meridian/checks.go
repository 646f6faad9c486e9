package main

import (
	"context"
	"log/slog"

	"github.com/meridiandns/meridian/health"
	"github.com/meridiandns/meridian/health/targets"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// localChecker is the health checker "meridian serve" runs in-process
// when it serves zone files: the same prober and hysteresis as
// meridian-checker, with what it finds kept in memory (store.Health) and
// laid over the zones, so that one machine gets health checking without a
// database. With a database, meridian-checker does this job.
type localChecker struct {
	files  store.Store // the zones, to find targets in
	health *store.Health
	logger *slog.Logger
}

// run probes until ctx is done, following changes of the zone files.
func (c *localChecker) run(ctx context.Context) error {
	sched := health.NewScheduler(health.SchedulerOptions{Logger: c.logger})
	reload := make(chan struct{}, 1)
	reload <- struct{}{}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	go c.files.Watch(watchCtx, func() {
		select {
		case reload <- struct{}{}:
		default:
		}
	})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
			}
			d, err := c.files.Load(ctx)
			if err != nil {
				continue // the reloader logs it; keep probing the previous targets
			}
			ts := targets.FromZones(d.Zones, c.logger)
			if err := sched.SetTargets(ts); err != nil {
				c.logger.Warn("Some endpoints are not probed", "err", err)
			}
			if len(ts) > 0 {
				c.logger.Info("Health checks", "targets", len(ts))
			}
		}
	}()
	return sched.Run(ctx, func(t health.Target, tr health.Transition) {
		pool, addr, ok := targets.SplitKey(t.Key)
		if !ok {
			return
		}
		state := zones.HealthDown
		if tr.Up {
			state = zones.HealthUp
		}
		if c.health.Set(pool, addr, state) {
			c.logger.Info("Endpoint health changed", "pool", pool, "address", addr, "state", state.String(), "reason", tr.Reason)
		}
	})
}

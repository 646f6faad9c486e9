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
	health *store.Health
	logger *slog.Logger
}

// run probes until ctx is done. It follows the zones the server loads
// (store.Health.OnLoad) rather than reading the files again.
func (c *localChecker) run(ctx context.Context) error {
	sched := health.NewScheduler(health.SchedulerOptions{Logger: c.logger})
	probed := -1
	c.health.OnLoad(func(d *store.Data) {
		ts := targets.FromZones(d.Zones, c.logger)
		if err := sched.SetTargets(ts); err != nil {
			c.logger.Warn("Some endpoints are not probed", "err", err)
		}
		if len(ts) != probed {
			probed = len(ts)
			c.logger.Info("Health checks", "targets", len(ts))
		}
	})
	if d := c.health.Last(); d != nil {
		if err := sched.SetTargets(targets.FromZones(d.Zones, c.logger)); err != nil {
			c.logger.Warn("Some endpoints are not probed", "err", err)
		}
	}
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

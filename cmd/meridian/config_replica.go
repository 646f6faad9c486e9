package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/viper"

	"github.com/meridiandns/meridian/store/postgres"
)

// The store section's keys for reading hot standbys (docs/postgres.md,
// "Servers on regional standbys"); the fields are in storeConfig:
//
//   - store.fallback_databases: PostgreSQL URLs tried in order when
//     store.database does not answer. The server goes back to an earlier
//     one once it answers again.
//   - store.standby_poll_interval: how often the data version is polled
//     when the database in use is a hot standby, where no notification
//     ever arrives. store.poll_interval keeps its meaning (the safety net
//     of LISTEN on a primary, 5 s): a standby's poll is the only way it
//     learns of a change, hence a default of its own, 40 times shorter.
//   - store.max_replication_lag: /readyz reports not ready while the
//     standby in use lags its primary by more; 0 (the default) never, so
//     that a fleet whose primary is down keeps answering.

// setReplicaDefaults sets the defaults of the replica keys.
func setReplicaDefaults(v *viper.Viper) {
	v.SetDefault("store.fallback_databases", []string{})
	v.SetDefault("store.standby_poll_interval", postgres.DefaultStandbyPollInterval)
	v.SetDefault("store.max_replication_lag", time.Duration(0))
}

// validateReplica checks the replica keys.
func (s storeConfig) validateReplica() error {
	if len(s.FallbackDatabases) > 0 && s.Database == "" {
		return errors.New("store.fallback_databases is set without store.database: they are tried when it does not answer")
	}
	for i, u := range s.FallbackDatabases {
		if u == "" {
			return fmt.Errorf("store.fallback_databases[%d]: empty URL", i)
		}
	}
	switch {
	case s.StandbyPollInterval <= 0:
		return fmt.Errorf("store.standby_poll_interval: must be positive, got %s", s.StandbyPollInterval)
	case s.StandbyPollInterval < time.Millisecond:
		return fmt.Errorf("store.standby_poll_interval: %s is less than a millisecond; write a unit, e.g. \"200ms\"", s.StandbyPollInterval)
	case s.MaxReplicationLag < 0:
		return fmt.Errorf("store.max_replication_lag: must not be negative (0: never not ready for lag), got %s", s.MaxReplicationLag)
	case s.MaxReplicationLag > 0 && s.MaxReplicationLag < time.Millisecond:
		return fmt.Errorf("store.max_replication_lag: %s is less than a millisecond; write a unit, e.g. \"30s\"", s.MaxReplicationLag)
	}
	return nil
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
)

// fakeReplica is a replicaSource with fixed answers.
type fakeReplica struct {
	r    postgres.Replication
	down bool
}

func (f fakeReplica) Replication() postgres.Replication { return f.r }
func (f fakeReplica) Degraded() (bool, string)          { return f.down, "" }

// TestReplicaReadiness checks /readyz's view of the database read: a
// primary adds nothing (or names the fallback), a standby adds its state
// and lag, and only a lag above store.max_replication_lag makes the
// server not ready.
func TestReplicaReadiness(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const why = "serving version 7, 2 zones"
	for _, tc := range []struct {
		name   string
		src    fakeReplica
		maxLag time.Duration
		ready  bool
		want   []string // in the reason
	}{
		{"primary", fakeReplica{r: postgres.Replication{}}, time.Second, true, []string{why}},
		{"fallback primary", fakeReplica{r: postgres.Replication{Database: 2}}, time.Second, true, []string{"reading the primary (store.fallback_databases[1])"}},
		{"standby caught up", fakeReplica{r: postgres.Replication{Standby: true, Streaming: true, Measured: now}}, time.Second, true,
			[]string{why, "a hot standby, streaming, replication lag 0s"}},
		{"standby lagging, no bound", fakeReplica{r: postgres.Replication{Standby: true, Lag: time.Hour, Measured: now}}, 0, true,
			[]string{"not streaming from its primary, replication lag 1h0m0s"}},
		{"standby lagging within bound", fakeReplica{r: postgres.Replication{Standby: true, Streaming: true, Lag: 2 * time.Second, Measured: now}}, 5 * time.Second, true,
			[]string{"replication lag 2s"}},
		{"standby lagging past bound", fakeReplica{r: postgres.Replication{Standby: true, Lag: 12 * time.Second, Measured: now}}, 5 * time.Second, false,
			[]string{"replication lag 12s exceeds store.max_replication_lag 5s", "not streaming from its primary", why}},
		{"fallback standby", fakeReplica{r: postgres.Replication{Database: 1, Standby: true, Streaming: true, Measured: now}}, 0, true,
			[]string{"a hot standby (store.fallback_databases[0]), streaming"}},
		// The standby itself away: the lag counts on from its last
		// measurement.
		{"standby unreachable", fakeReplica{r: postgres.Replication{Standby: true, Streaming: true, Measured: now.Add(-10 * time.Second)}, down: true}, 5 * time.Second, false,
			[]string{"replication lag 10s exceeds", "unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := replicaReadiness(tc.src.r, tc.src, tc.maxLag, why, now)
			if ok != tc.ready {
				t.Errorf("ready %v, want %v (%s)", ok, tc.ready, reason)
			}
			for _, w := range tc.want {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q lacks %q", reason, w)
				}
			}
		})
	}
}

// TestReplicaMetricsDocumented checks docs/metrics.md's section on the
// PostgreSQL store against the replica collector.
func TestReplicaMetricsDocumented(t *testing.T) {
	c := replicaCollector{fakeReplica{r: postgres.Replication{Standby: true, Lag: time.Second}}}
	compareDoc(t, docMetrics(t, "PostgreSQL store"), describedMetrics(t, c))
}

// TestReplicaConfig loads the replica keys from a file and from the
// environment, and refuses bad values with the key named.
func TestReplicaConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "store:\n  database: postgres://a/db\n  fallback_databases: [postgres://b/db, postgres://c/db]\n  standby_poll_interval: 50ms\n  max_replication_lag: 30s\n")
	c, err := parseConfig(t, "--config", good)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Store; len(s.FallbackDatabases) != 2 || s.FallbackDatabases[1] != "postgres://c/db" ||
		s.StandbyPollInterval != 50*time.Millisecond || s.MaxReplicationLag != 30*time.Second {
		t.Errorf("store section %+v", s)
	}
	def, err := parseConfig(t, "--database", "postgres://a/db")
	if err != nil {
		t.Fatal(err)
	}
	if s := def.Store; len(s.FallbackDatabases) != 0 || s.StandbyPollInterval != postgres.DefaultStandbyPollInterval || s.MaxReplicationLag != 0 {
		t.Errorf("defaults %+v, want no fallbacks, 200ms, 0", s)
	}
	t.Setenv("MERIDIAN_STORE_FALLBACK_DATABASES", "postgres://b/db,postgres://c/db")
	env, err := parseConfig(t, "--database", "postgres://a/db")
	if err != nil {
		t.Fatal(err)
	}
	if len(env.Store.FallbackDatabases) != 2 {
		t.Errorf("from the environment: %q, want two URLs", env.Store.FallbackDatabases)
	}
	t.Setenv("MERIDIAN_STORE_FALLBACK_DATABASES", "")

	for _, tc := range []struct{ name, body, want string }{
		{"fallback without database", "zones:\n  files: [x.zone]\nstore:\n  fallback_databases: [postgres://b/db]\n", "store.fallback_databases is set without store.database"},
		{"empty fallback", "store:\n  database: postgres://a/db\n  fallback_databases: [\"\"]\n", "store.fallback_databases[0]: empty URL"},
		{"zero poll", "store:\n  database: postgres://a/db\n  standby_poll_interval: 0s\n", "store.standby_poll_interval: must be positive"},
		{"bare poll", "store:\n  database: postgres://a/db\n  standby_poll_interval: 200\n", "store.standby_poll_interval: 200ns is less than a millisecond"},
		{"negative lag", "store:\n  database: postgres://a/db\n  max_replication_lag: -1s\n", "store.max_replication_lag: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.body)
			_, err := parseConfig(t, "--config", path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming %s with %q", err, path, tc.want)
			}
		})
	}
}

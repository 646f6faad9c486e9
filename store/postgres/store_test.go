package postgres_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newSchema returns the URL of a fresh database with Meridian's schema.
func newSchema(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	return url
}

// exec runs SQL statements on url in one transaction.
func exec(t *testing.T, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// addZone inserts a minimal valid zone with one A record at www.
func addZone(t *testing.T, url, origin, www string) {
	t.Helper()
	exec(t, url,
		"INSERT INTO zones (origin) VALUES ('"+origin+"')",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, origin, 'SOA', 300, 'ns1."+origin+" hostmaster."+origin+" 1 7200 3600 1209600 60' FROM zones WHERE origin = '"+origin+"'",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, origin, 'NS', 300, 'ns1."+origin+"' FROM zones WHERE origin = '"+origin+"'",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, 'ns1.'||origin, 'A', 300, '192.0.2.53' FROM zones WHERE origin = '"+origin+"'",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, 'www.'||origin, 'A', 300, '"+www+"' FROM zones WHERE origin = '"+origin+"'",
	)
}

func newStore(t *testing.T, opts postgres.Options) *postgres.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	s, err := postgres.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

func load(t *testing.T, s store.Store) *store.Data {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zones.Build(d.Zones, d.Version); err != nil {
		t.Fatalf("data from the store does not build: %v", err)
	}
	return d
}

// wwwOf returns the A data of www in zone origin, or "" when absent.
func wwwOf(d *store.Data, origin string) string {
	for _, z := range d.Zones {
		if z.Origin != origin {
			continue
		}
		for _, r := range z.Records {
			if a, ok := r.RR.(*dns.A); ok && strings.HasPrefix(a.Hdr.Name, "www.") {
				return a.A.String()
			}
		}
	}
	return ""
}

func zoneOf(d *store.Data, origin string) *zones.Zone {
	for _, z := range d.Zones {
		if z.Origin == origin {
			return z
		}
	}
	return nil
}

// TestLoadIncremental checks that every kind of change reaches a later
// Load, that versions only grow, and that unchanged zones are not reread.
func TestLoadIncremental(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	s := newStore(t, postgres.Options{URL: url})

	d1 := load(t, s)
	if len(d1.Zones) != 2 || wwwOf(d1, "a.example.") != "192.0.2.1" {
		t.Fatalf("first load: %d zones, www %q", len(d1.Zones), wwwOf(d1, "a.example."))
	}
	d2 := load(t, s)
	if d2.Version != d1.Version || zoneOf(d2, "a.example.") != zoneOf(d1, "a.example.") {
		t.Errorf("a load without changes reread data: version %d -> %d", d1.Version, d2.Version)
	}

	steps := []struct {
		name  string
		sql   []string
		check func(*store.Data) string
	}{
		{"record update", []string{"UPDATE records SET rdata = '192.0.2.9' WHERE name = 'www.a.example.'"}, func(d *store.Data) string {
			if wwwOf(d, "a.example.") != "192.0.2.9" {
				return "www.a.example. not updated"
			}
			return ""
		}},
		{"datacenter and pool", []string{
			"INSERT INTO datacenters (zone_id, name, lat, lon) SELECT id, 'dc1', 50, 8 FROM zones WHERE origin = 'a.example.'",
			"INSERT INTO pools (zone_id, name) SELECT id, 'pool.a.example.' FROM zones WHERE origin = 'a.example.'",
			"INSERT INTO endpoints (pool_id, address, datacenter) SELECT id, '192.0.2.77', 'dc1' FROM pools WHERE name = 'pool.a.example.'",
		}, func(d *store.Data) string {
			z := zoneOf(d, "a.example.")
			if len(z.Pools) != 1 || len(z.Pools[0].Endpoints) != 1 || z.Pools[0].Endpoints[0].Addr.String() != "192.0.2.77" {
				return "pool not loaded"
			}
			return ""
		}},
		{"health", []string{"INSERT INTO endpoint_health (endpoint_id, state) SELECT id, 'down' FROM endpoints"}, func(d *store.Data) string {
			if zoneOf(d, "a.example.").Pools[0].Endpoints[0].Health != zones.HealthDown {
				return "health not loaded"
			}
			return ""
		}},
		{"admin state", []string{"UPDATE endpoints SET admin_state = 'drain', admin_reason = 'test'"}, func(d *store.Data) string {
			if zoneOf(d, "a.example.").Pools[0].Endpoints[0].Admin != zones.AdminDrain {
				return "admin state not loaded"
			}
			return ""
		}},
		{"pool setting", []string{"UPDATE pools SET max_answers = 2, geo = 'none'"}, func(d *store.Data) string {
			if p := zoneOf(d, "a.example.").Pools[0]; p.MaxAnswers != 2 || p.Geo != zones.GeoNone {
				return "pool settings not loaded"
			}
			return ""
		}},
		{"endpoint delete", []string{"DELETE FROM endpoint_health", "INSERT INTO endpoints (pool_id, address, datacenter) SELECT id, '192.0.2.78', 'dc1' FROM pools", "DELETE FROM endpoints WHERE address = '192.0.2.77'"}, func(d *store.Data) string {
			if eps := zoneOf(d, "a.example.").Pools[0].Endpoints; len(eps) != 1 || eps[0].Addr.String() != "192.0.2.78" {
				return "endpoint delete not loaded"
			}
			return ""
		}},
		{"zone delete", []string{"DELETE FROM zones WHERE origin = 'b.example.'"}, func(d *store.Data) string {
			if zoneOf(d, "b.example.") != nil || len(d.Zones) != 1 {
				return "deleted zone still loaded"
			}
			return ""
		}},
		{"zone add", nil, nil}, // filled below: addZone needs t
	}
	prev := d1
	for _, st := range steps {
		if st.name == "zone add" {
			addZone(t, url, "c.example.", "192.0.2.3")
			st.check = func(d *store.Data) string {
				if wwwOf(d, "c.example.") != "192.0.2.3" {
					return "new zone not loaded"
				}
				return ""
			}
		} else {
			exec(t, url, st.sql...)
		}
		before := zoneOf(prev, "a.example.")
		d := load(t, s)
		if d.Version <= prev.Version {
			t.Errorf("%s: version %d after %d", st.name, d.Version, prev.Version)
		}
		if msg := st.check(d); msg != "" {
			t.Errorf("%s: %s", st.name, msg)
		}
		if st.name == "zone add" && zoneOf(d, "a.example.") != before {
			t.Errorf("%s: zone a.example. was reread though it did not change", st.name)
		}
		prev = d
	}
}

// TestSchemaChecks refuses databases without the schema or with a newer one.
func TestSchemaChecks(t *testing.T) {
	bare := pgtest.NewDB(t)
	s := newStore(t, postgres.Options{URL: bare, CacheFile: filepath.Join(t.TempDir(), "cache.json")})
	if _, err := s.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "meridian migrate") {
		t.Errorf("load from a database without schema: %v, want advice to run meridian migrate", err)
	}
	newer := newSchema(t)
	exec(t, newer, "UPDATE meridian_schema_version SET version = version + 1")
	s = newStore(t, postgres.Options{URL: newer})
	if _, err := s.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("load from a newer schema: %v", err)
	}
	if _, _, err := postgres.Migrate(context.Background(), newer); err == nil {
		t.Error("migrate accepted a newer schema")
	}
	// Migrating twice is harmless.
	from, to, err := postgres.Migrate(context.Background(), newSchema(t))
	if err != nil || from != to || to != postgres.SchemaVersion() {
		t.Errorf("second migrate: %d -> %d, %v", from, to, err)
	}
}

// watch runs s.Watch until the test ends and counts its change reports.
func watch(t *testing.T, s *postgres.Store) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Watch(ctx, func() { n.Add(1) }); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &n
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchNotification checks that a committed change is reported at
// once, through LISTEN/NOTIFY (polling is set far beyond the test).
func TestWatchNotification(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	s := newStore(t, postgres.Options{URL: url, PollInterval: time.Hour})
	load(t, s)
	n := watch(t, s)
	waitFor(t, "the report after connecting", 5*time.Second, func() bool { return n.Load() >= 1 })
	base := n.Load()
	exec(t, url, "UPDATE records SET ttl = 60 WHERE name = 'www.a.example.'")
	waitFor(t, "a notification", 5*time.Second, func() bool { return n.Load() > base })
}

// TestWatchLostNotification changes data without a notification, as if it
// were lost, and checks that polling the version finds it.
func TestWatchLostNotification(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	s := newStore(t, postgres.Options{URL: url, PollInterval: 100 * time.Millisecond})
	d := load(t, s)
	n := watch(t, s)
	waitFor(t, "the report after connecting", 5*time.Second, func() bool { return n.Load() >= 1 })
	time.Sleep(300 * time.Millisecond) // polls find nothing new
	base := n.Load()
	if base != 1 {
		t.Errorf("%d reports without a change, want 1", base)
	}
	// Triggers off: the change log and version are written by hand, and no
	// NOTIFY is sent.
	exec(t, url,
		"SET LOCAL session_replication_role = replica",
		"UPDATE records SET rdata = '192.0.2.5' WHERE name = 'www.a.example.'",
		"UPDATE meridian_version SET version = version + 1",
		"INSERT INTO changes (version, zone_id) SELECT v.version, z.id FROM meridian_version v, zones z",
	)
	waitFor(t, "polling to find the change", 5*time.Second, func() bool { return n.Load() > base })
	d2 := load(t, s)
	if d2.Version != d.Version+1 || wwwOf(d2, "a.example.") != "192.0.2.5" {
		t.Errorf("after the silent change: version %d, www %s", d2.Version, wwwOf(d2, "a.example."))
	}
}

// TestOutageAndCache cuts the database off: loads fail (the server keeps
// its snapshot) and the store says it is degraded; a store started during
// the outage serves the cache file; all catch up once it is back.
func TestOutageAndCache(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	proxy := pgtest.NewProxy(t, hostPort(t, url))
	purl := proxy.URL(url)
	cache := filepath.Join(t.TempDir(), "cache.json")
	s := newStore(t, postgres.Options{URL: purl, CacheFile: cache, PollInterval: 100 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	d := load(t, s)
	n := watch(t, s)
	waitFor(t, "the report after connecting", 5*time.Second, func() bool { return n.Load() >= 1 })
	waitFor(t, "the cache file", 5*time.Second, func() bool { _, err := os.Stat(cache); return err == nil })

	proxy.Cut()
	if _, err := s.Load(context.Background()); err == nil {
		t.Fatal("load succeeded with the database cut off")
	}
	waitFor(t, "degraded", 5*time.Second, func() bool { deg, _ := s.Degraded(); return deg })

	// A server restarted now answers from the cache.
	s2 := newStore(t, postgres.Options{URL: purl, CacheFile: cache})
	c := load(t, s2)
	if c.Version != d.Version || wwwOf(c, "a.example.") != "192.0.2.1" {
		t.Errorf("cache: version %d (want %d), www %q", c.Version, d.Version, wwwOf(c, "a.example."))
	}
	// A store without a cache has nothing to serve.
	s3 := newStore(t, postgres.Options{URL: purl})
	if _, err := s3.Load(context.Background()); err == nil {
		t.Error("a store without cache loaded during the outage")
	}

	// Changes made during the outage arrive once the database is back.
	exec(t, url, "UPDATE records SET rdata = '192.0.2.7' WHERE name = 'www.a.example.'")
	base := n.Load()
	proxy.Restore()
	waitFor(t, "a report after reconnecting", 10*time.Second, func() bool { return n.Load() > base })
	d2 := load(t, s)
	if wwwOf(d2, "a.example.") != "192.0.2.7" {
		t.Errorf("after the outage, www = %q", wwwOf(d2, "a.example."))
	}
	if deg, _ := s.Degraded(); deg {
		t.Error("still degraded after the database returned")
	}
	d3 := load(t, s2)
	if d3.Version <= c.Version || wwwOf(d3, "a.example.") != "192.0.2.7" {
		t.Errorf("store started from cache: version %d, www %q after the outage", d3.Version, wwwOf(d3, "a.example."))
	}
}

// TestReconnectAfterRestart stops and starts a real PostgreSQL under a
// watching store.
func TestReconnectAfterRestart(t *testing.T) {
	cl := pgtest.OwnCluster(t)
	url := cl.URL()
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	addZone(t, url, "a.example.", "192.0.2.1")
	s := newStore(t, postgres.Options{URL: url, PollInterval: time.Hour, MaxBackoff: 200 * time.Millisecond})
	load(t, s)
	n := watch(t, s)
	waitFor(t, "the report after connecting", 5*time.Second, func() bool { return n.Load() >= 1 })

	cl.Stop(t)
	waitFor(t, "degraded", 10*time.Second, func() bool { deg, _ := s.Degraded(); return deg })
	base := n.Load()
	cl.Start(t)
	waitFor(t, "a report after the restart", 15*time.Second, func() bool { return n.Load() > base })
	exec(t, url, "UPDATE records SET rdata = '192.0.2.8' WHERE name = 'www.a.example.'")
	var last error
	waitFor(t, "the change", 10*time.Second, func() bool {
		d, err := s.Load(context.Background())
		if err != nil {
			if last == nil || last.Error() != err.Error() {
				t.Logf("load: %v", err)
			}
			last = err
		}
		return err == nil && wwwOf(d, "a.example.") == "192.0.2.8"
	})
}

// hostPort returns host:port of a postgres:// URL.
func hostPort(t *testing.T, url string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
)

// TestRestoredOlderDatabase simulates a database restored from a backup
// taken before the data a server loaded: the store keeps serving what it
// has and says so, is not "unreachable", and once the database moves past
// what it served, loads it whole rather than mixing the change log of two
// histories (the restored zone must come back as restored).
func TestRestoredOlderDatabase(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	s := newStore(t, postgres.Options{URL: url})
	backup := load(t, s)
	// After the backup: a.example. changes, and the server loads it.
	exec(t, url, "UPDATE records SET rdata = '192.0.2.10' WHERE name = 'www.a.example.'")
	served := load(t, s)
	if wwwOf(served, "a.example.") != "192.0.2.10" {
		t.Fatalf("change not loaded: %s", wwwOf(served, "a.example."))
	}
	// The restore: data, version and change log as at the backup, written
	// with triggers off as pg_restore would.
	exec(t, url,
		"SET LOCAL session_replication_role = replica",
		"UPDATE records SET rdata = '192.0.2.1' WHERE name = 'www.a.example.'",
		"DELETE FROM changes WHERE version > "+strconv.FormatUint(backup.Version, 10),
		"UPDATE meridian_version SET version = "+strconv.FormatUint(backup.Version, 10),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Load(ctx); err == nil || !s.Diverged() {
		t.Fatalf("older database accepted (err %v, diverged %v)", err, s.Diverged())
	}
	if bad, why := s.Degraded(); bad {
		t.Errorf("a reachable database reported unreachable: %s", why)
	}
	// A change after the restore, to the other zone: the database now
	// moves past the version served.
	exec(t, url, "UPDATE records SET rdata = '192.0.2.20' WHERE name = 'www.b.example.'")
	d := load(t, s)
	if d.Version <= served.Version {
		t.Fatalf("version %d not past %d", d.Version, served.Version)
	}
	if got := wwwOf(d, "a.example."); got != "192.0.2.1" {
		t.Errorf("a.example. www %s after the restore: the change log of the old history was mixed in", got)
	}
	if got := wwwOf(d, "b.example."); got != "192.0.2.20" {
		t.Errorf("b.example. www %s, want the change made after the restore", got)
	}
	if s.Diverged() {
		t.Error("still diverged after loading the database whole")
	}
}

// TestRestoreUnnoticed is the same restore, but the server loads only
// after the database has moved past it: the missing change in the log
// still tells it the history changed.
func TestRestoreUnnoticed(t *testing.T) {
	url := newSchema(t)
	addZone(t, url, "a.example.", "192.0.2.1")
	addZone(t, url, "b.example.", "192.0.2.2")
	s := newStore(t, postgres.Options{URL: url})
	backup := load(t, s)
	exec(t, url, "UPDATE records SET rdata = '192.0.2.10' WHERE name = 'www.a.example.'")
	load(t, s)
	exec(t, url,
		"SET LOCAL session_replication_role = replica",
		"UPDATE records SET rdata = '192.0.2.1' WHERE name = 'www.a.example.'",
		"DELETE FROM changes WHERE version > "+strconv.FormatUint(backup.Version, 10),
		"UPDATE meridian_version SET version = "+strconv.FormatUint(backup.Version, 10),
	)
	exec(t, url, "UPDATE records SET rdata = '192.0.2.20' WHERE name = 'www.b.example.'")
	d := load(t, s)
	if a, b := wwwOf(d, "a.example."), wwwOf(d, "b.example."); a != "192.0.2.1" || b != "192.0.2.20" {
		t.Errorf("after an unnoticed restore: a %s, b %s; want the database's 192.0.2.1 and 192.0.2.20", a, b)
	}
}

package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// TestE2EInvalidZone breaks one zone in PostgreSQL by hand, as a manual
// SQL edit can, and checks that the server keeps answering it from its
// last good version while another zone's change is answered at once; the
// log, meridian_zone_invalid, /readyz and "meridianctl zones" say so, and
// fixing the zone brings its current data back.
func TestE2EInvalidZone(t *testing.T) {
	requireDig(t)
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	applyExamples(t, url, nil)
	m := startMeridian(t, t.TempDir(), nil, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--database", url)
	base := m.httpBase(t)
	const series = `meridian_zone_invalid{zone="example.com."}`
	hasA := func(addr string) func(*digResult) bool {
		return func(r *digResult) bool { return isNOERROR(r) && slices.Equal(data(r.Answer, "A"), []string{addr}) }
	}
	m.waitDig(t, "www.example.com answered", hasA("192.0.2.10"), "www.example.com", "A")

	// In one transaction, example.com. gets a record that does not parse
	// and a new name, and example.net. a new name.
	from := m.nextLogIndex()
	sqlExec(t, url,
		"UPDATE records SET rdata = 'not-an-address' WHERE name = 'www.example.com.' AND type = 'A'",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, 'new.example.com.', 'A', 300, '192.0.2.99' FROM zones WHERE origin = 'example.com.'",
		"INSERT INTO records (zone_id, name, type, ttl, rdata) SELECT id, 'new.example.net.', 'A', 300, '192.0.2.98' FROM zones WHERE origin = 'example.net.'")
	m.waitDig(t, "the other zone's change is answered", hasA("192.0.2.98"), "new.example.net", "A")
	l := m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
		return strings.HasPrefix(l.Msg, "Zone invalid: serving its last good version") && l.attrs["zone"] == "example.com."
	})
	if reason, _ := l.attrs["reason"].(string); l.Level != "ERROR" || !strings.Contains(reason, `www.example.com. A "not-an-address"`) {
		t.Errorf("log line %+v, want an error with the broken record as reason", l)
	}
	if r := m.mustDig(t, "www.example.com", "A"); !hasA("192.0.2.10")(r) {
		t.Errorf("the broken zone's last good version is not served:\n%s", r.Raw)
	}
	if r := m.mustDig(t, "new.example.com", "A"); r.Status != "NXDOMAIN" {
		t.Errorf("a change of the broken zone is served:\n%s", r.Raw)
	}
	waitMetric(t, base, series, "1")
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if out := meridianctl(t, url, "zones"); !strings.Contains(out, `invalid: postgres: zone example.com.: record www.example.com. A "not-an-address"`) {
		t.Errorf("meridianctl zones does not show the invalid zone:\n%s", out)
	}
	// Reloads while it stays broken do not log it again.
	sqlExec(t, url, "UPDATE records SET rdata = '192.0.2.97' WHERE name = 'new.example.net.'")
	m.waitDig(t, "the other zone's next change is answered", hasA("192.0.2.97"), "new.example.net", "A")

	// Fixed, the zone's current data is served, new name included.
	from = m.nextLogIndex()
	sqlExec(t, url, "UPDATE records SET rdata = '192.0.2.11' WHERE name = 'www.example.com.' AND type = 'A'")
	m.waitDig(t, "the fixed zone is served", hasA("192.0.2.11"), "www.example.com", "A")
	m.waitDig(t, "the fixed zone's new name is served", hasA("192.0.2.99"), "new.example.com", "A")
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
		return strings.HasPrefix(l.Msg, "Zone valid again") && l.attrs["zone"] == "example.com."
	})
	waitMetric(t, base, series, "")
	n := 0
	for _, l := range m.logLines() {
		if strings.HasPrefix(l.Msg, "Zone invalid") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the invalid zone was logged %d times, want once", n)
	}
	m.stop(t)
}

// sqlExec runs statements on the database at url in one transaction.
func sqlExec(t *testing.T, url string, stmts ...string) {
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

package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// TestE2EChangeLogPrune checks that a server prunes the change log at
// start (store.change_log_retention), and that a server cut off while the
// log is pruned past its version catches up by reading every zone: the
// change whose log row is gone arrives too, and nobody cries divergence.
func TestE2EChangeLogPrune(t *testing.T) {
	requireDig(t)
	url := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	applyExamples(t, url, nil)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	sql := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Three changes from a year ago, before the apply.
	sql(`INSERT INTO changes (version, zone_id, at)
		SELECT (extract(epoch FROM now() - interval '1 year') * 1000000)::bigint + g, 1, now() - interval '1 year'
		FROM generate_series(1, 3) g`)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	a := startMeridian(t, t.TempDir(), []string{"MERIDIAN_STORE_CHANGE_LOG_RETENTION=24h"},
		"--listen", "127.0.0.1:0", "--database", proxy.URL(url))
	a.waitLog(t, 0, 15*time.Second, func(l logLine) bool {
		return l.Msg == "Change log pruned" && l.attrs["deleted"] == float64(3)
	})
	a.waitDig(t, "a answers", isNOERROR, "www.example.com", "A")

	// Cut off, a misses two changes to two zones; then the log is pruned
	// of all but the last one.
	proxy.Cut()
	a.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return strings.Contains(l.Msg, "PostgreSQL unreachable") })
	sql("UPDATE records SET rdata = '198.51.100.99' WHERE name = 'ns1.example.net.' AND type = 'A'")
	sql("UPDATE records SET rdata = '192.0.2.99' WHERE name = 'www.example.com.' AND type = 'A'")
	meridianctl(t, url, "changes", "prune", "--keep", "1ms")
	proxy.Restore()

	a.waitLog(t, 0, 15*time.Second, func(l logLine) bool {
		return strings.Contains(l.Msg, "pruned past the version served")
	})
	a.waitDig(t, "the change still in the log", func(r *digResult) bool {
		return slices.Equal(data(r.Answer, "A"), []string{"192.0.2.99"})
	}, "www.example.com", "A")
	if r := a.mustDig(t, "ns1.example.net", "A"); !slices.Equal(data(r.Answer, "A"), []string{"198.51.100.99"}) {
		t.Errorf("the change pruned from the log was not loaded: %v", r.Answer)
	}
	for _, l := range a.logLines() {
		if strings.Contains(l.Msg, "diverged") {
			t.Errorf("a pruned log taken for a divergence: %s", l.Msg)
		}
	}
	a.stop(t)
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// applyExamples loads the example zones into the database at url.
func applyExamples(t testing.TB, url string, mutate func([]*zones.Zone)) {
	t.Helper()
	var zs []*zones.Zone
	for _, f := range []string{"example.com.zone", "example.net.yaml"} {
		path := filepath.Join("..", "..", "examples", f)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		z, err := zones.Parse(b, path)
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	if mutate != nil {
		mutate(zs)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := postgres.Apply(ctx, conn, zs, postgres.ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// meridianctl runs the meridianctl binary against the database at url.
func meridianctl(t testing.TB, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, otherBinary(t, "meridianctl"), append(args, "--database", url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("meridianctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var builds sync.Map // command name -> *binaryBuild

type binaryBuild struct {
	once sync.Once
	path string
	err  error
}

// otherBinary builds ./cmd/NAME once per test run, next to meridian.
func otherBinary(t testing.TB, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(name, &binaryBuild{})
	b := v.(*binaryBuild)
	b.once.Do(func() {
		b.path = filepath.Join(filepath.Dir(meridianBinary(t)), name)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, "./cmd/"+name)
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// setAdmin changes an endpoint of the example pool with meridianctl, as an
// operator would.
func setAdmin(t *testing.T, url, addr string, state zones.AdminState) {
	t.Helper()
	verb := map[zones.AdminState]string{zones.AdminActive: "enable", zones.AdminDrain: "drain", zones.AdminDisabled: "disable"}[state]
	meridianctl(t, url, verb, "--pool", "www.example.net", "--address", addr, "--reason", "e2e test")
}

// poolAnswer returns the datacenters of the example pool's A answer for a
// London client, in answer order (which endpoint of a datacenter comes is
// a weighted random choice, so addresses may differ between servers).
func poolAnswer(t *testing.T, m *meridian) []string {
	t.Helper()
	r := m.mustDig(t, "www.example.net", "A", "+subnet=81.2.69.0/24")
	var dcs []string
	for _, a := range data(r.Answer, "A") {
		dcs = append(dcs, dcOfExample(a))
	}
	return dcs
}

func without(addr string) func(*digResult) bool {
	return func(r *digResult) bool {
		a := data(r.Answer, "A")
		return len(a) > 0 && !slices.Contains(a, addr)
	}
}

// TestE2EPostgres runs two servers on one database: both answer the same,
// learn a drain at once, keep answering through an outage, restart from
// their cache file during it, and catch up afterwards. The query path
// sends the database nothing.
func TestE2EPostgres(t *testing.T) {
	requireDig(t)
	url := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, meridianBinary(t), "migrate", "--database", url).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "migrated from version 0") {
		t.Fatalf("meridian migrate: %v\n%s", err, out)
	}
	applyExamples(t, url, nil)

	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)))
	dir := t.TempDir()
	cache := filepath.Join(dir, "a.cache")
	db := filepath.Join(dir, "city.mmdb")
	if err := geotest.Write(db, geotest.World); err != nil {
		t.Fatal(err)
	}
	// Server a reaches the database through the proxy and polls rarely, so
	// that anything it sends is the query path's doing.
	startA := func() *meridian {
		return startMeridian(t, dir, []string{"MERIDIAN_STORE_POLL_INTERVAL=1h", "MERIDIAN_STORE_CACHE_FILE=" + cache},
			"--listen", "127.0.0.1:0", "--database", proxy.URL(url), "--geoip", db)
	}
	a := startA()
	b := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url, "--geoip", db)
	a.waitDig(t, "a answers", isNOERROR, "www.example.com", "A")
	b.waitDig(t, "b answers", isNOERROR, "www.example.com", "A")

	// Both servers give the same answers.
	for _, q := range [][]string{{"www.example.com", "A"}, {"nope.example.com", "A"}, {"example.net", "MX"}} {
		ra, rb := a.mustDig(t, q...), b.mustDig(t, q...)
		if ra.Status != rb.Status || !slices.Equal(data(ra.Answer, q[1]), data(rb.Answer, q[1])) {
			t.Errorf("%v: a says %s %v, b says %s %v", q, ra.Status, ra.Answer, rb.Status, rb.Answer)
		}
	}
	if pa, pb := poolAnswer(t, a), poolAnswer(t, b); !slices.Equal(pa, pb) || len(pa) == 0 || pa[0] != "eu-west" {
		t.Errorf("pool answers differ or lack London: a %v, b %v", pa, pb)
	}

	// A drain reaches both servers through NOTIFY (polling is an hour).
	setAdmin(t, url, "198.51.100.31", zones.AdminDrain)
	a.waitDig(t, "a drops the drained endpoint", without("198.51.100.31"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	b.waitDig(t, "b drops the drained endpoint", without("198.51.100.31"), "www.example.net", "A", "+subnet=81.2.69.0/24")

	// A flood of random names sends nothing to the database.
	before := proxy.Sent()
	c := &dns.Client{Timeout: 2 * time.Second}
	for i := range 300 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("r%d-%d.example.com.", i, time.Now().UnixNano()), dns.TypeA)
		if _, _, err := c.Exchange(m, "127.0.0.1:"+a.port); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if sent := proxy.Sent() - before; sent != 0 {
		t.Errorf("300 queries made the server send %d bytes to PostgreSQL", sent)
	}

	// Outage: a keeps answering from its snapshot.
	proxy.Cut()
	a.waitLog(t, 0, 10*time.Second, func(l logLine) bool { return strings.Contains(l.Msg, "PostgreSQL unreachable") })
	if r := a.mustDig(t, "www.example.com", "A"); !isNOERROR(r) {
		t.Errorf("during the outage: %s", r.Raw)
	}
	// Restarted during the outage, a answers from its cache file.
	a.stop(t)
	a = startA()
	if r := a.mustDig(t, "www.example.net", "A", "+subnet=81.2.69.0/24"); !without("198.51.100.31")(r) {
		t.Errorf("restarted from the cache: %v, want the drained state kept", r.Answer)
	}
	// A change made during the outage arrives once the database is back.
	setAdmin(t, url, "198.51.100.31", zones.AdminActive)
	setAdmin(t, url, "198.51.100.32", zones.AdminDisabled)
	b.waitDig(t, "b sees the changes", without("198.51.100.32"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	proxy.Restore()
	a.waitDig(t, "a catches up", without("198.51.100.32"), "www.example.net", "A", "+subnet=81.2.69.0/24")
	if pa, pb := poolAnswer(t, a), poolAnswer(t, b); !slices.Equal(pa, pb) {
		t.Errorf("after the outage the servers differ: a %v, b %v", pa, pb)
	}
	a.stop(t)
	b.stop(t)
}

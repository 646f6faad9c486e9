package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/meridiandns/meridian/health"
	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scrape reads the metrics at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value returns the value of the series of family name with labels (name,
// value pairs), or -1 when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == labels[i] && l.GetValue() == labels[i+1] }) {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestCheckerMetrics runs the checker against PostgreSQL, an HTTP backend
// and an agent-check agent, and watches its metrics follow: probes,
// transitions, heartbeats, checkers, agent reports; then checks them
// against docs/metrics.md.
func TestCheckerMetrics(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			fmt.Fprintln(w, "UP")
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer backend.Close()
	agent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("up 50%\n"))
			c.Close()
		}
	}()
	httpPort := backend.Listener.Addr().(*net.TCPAddr).Port
	agentPort := agent.Addr().(*net.TCPAddr).Port
	url, db := pgtest.Store(t, fmt.Sprintf(`origin: m.test.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters: [{name: dc, lat: 50, lon: 8}]
pools:
  - name: www
    health_check: {type: http, port: %d, path: /health, expect_body: UP, interval: 50ms, timeout: 40ms, rise: 2, fall: 2}
    endpoints: [{address: 127.0.0.1, datacenter: dc}]
  - name: agents
    health_check: {type: agent, port: %d, interval: 50ms, timeout: 40ms, rise: 1, fall: 1}
    endpoints: [{address: 127.0.0.1, datacenter: dc}]
`, httpPort, agentPort))
	ctx := context.Background()
	// A checker that stopped long ago.
	if err := postgres.RegisterChecker(ctx, db, "old", "", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "UPDATE checkers SET last_seen = now() - interval '1 hour' WHERE id = 'old'"); err != nil {
		t.Fatal(err)
	}
	token, _, err := postgres.CreateToken(ctx, db, postgres.TokenAgent, "www.m.test.", "w")
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var logs logbuf.Buffer
	go func() {
		done <- checker(cctx, options{database: url, id: "m1", heartbeat: 100 * time.Millisecond, maxConcurrent: 4, listen: addr},
			slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("checker: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the checker did not stop within 10s")
		}
		if t.Failed() {
			t.Logf("checker log:\n%s", logs.String())
		}
	}()

	// wait scrapes until ok accepts the metrics.
	wait := func(what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
				resp.Body.Close()
				if mfs := scrape(t, addr); ok(mfs) {
					return mfs
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const pool = "www.m.test."
	mfs := wait("www up", func(m map[string]*dto.MetricFamily) bool {
		return value(m, "meridian_checker_transitions_total", "pool", pool, "to", "up") == 1 &&
			value(m, "meridian_agent_reports_total", "source", "agent-check", "result", "accepted") >= 1
	})
	start := time.Now()
	for _, c := range []struct {
		name   string
		labels []string
		ok     func(float64) bool
	}{
		{"meridian_checker_targets", nil, func(v float64) bool { return v == 2 }},
		{"meridian_checker_probes_total", []string{"type", "http", "result", "up"}, func(v float64) bool { return v >= 2 }},
		{"meridian_checker_probes_total", []string{"type", "dns", "result", "down"}, func(v float64) bool { return v == 0 }},
		{"meridian_checker_probe_duration_seconds", []string{"type", "http"}, func(v float64) bool { return v >= 2 }},
		{"meridian_checker_pending_verdicts", nil, func(v float64) bool { return v == 0 }},
		{"meridian_checker_heartbeat_timestamp_seconds", nil, func(v float64) bool {
			return v > float64(start.Add(-10*time.Second).Unix()) && v <= float64(time.Now().Unix()+1)
		}},
		{"meridian_checker_checkers", []string{"state", "live"}, func(v float64) bool { return v == 1 }},
		{"meridian_checker_checkers", []string{"state", "expired"}, func(v float64) bool { return v == 1 }},
		{"meridian_store_up", nil, func(v float64) bool { return v == 1 }},
		{"meridian_build_info", []string{"version", "devel"}, func(v float64) bool { return v == 1 }},
		{"meridian_agent_reports_total", []string{"source", "api", "result", "accepted"}, func(v float64) bool { return v == 0 }},
	} {
		if v := value(mfs, c.name, c.labels...); !c.ok(v) {
			t.Errorf("%s%v = %v", c.name, c.labels, v)
		}
	}

	// The backend fails: probes say down, and the verdict changes once.
	healthy.Store(false)
	wait("www down", func(m map[string]*dto.MetricFamily) bool {
		return value(m, "meridian_checker_transitions_total", "pool", pool, "to", "down") == 1 &&
			value(m, "meridian_checker_probes_total", "type", "http", "result", "down") >= 2
	})

	// Agent reports through the API: one accepted, one refused.
	post := func(token string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/pools/www.m.test/endpoints/127.0.0.1/report", strings.NewReader(`{"status": "up"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post(token)
	post("mrd_wrong")
	mfs = wait("API reports", func(m map[string]*dto.MetricFamily) bool {
		return value(m, "meridian_agent_reports_total", "source", "api", "result", "accepted") == 1 &&
			value(m, "meridian_agent_reports_total", "source", "api", "result", "rejected") == 1
	})

	// The same address serves the status page and sends / there.
	for _, c := range []struct {
		path, contains string
		code           int
	}{
		{"/status", `data-address="127.0.0.1" data-state="up"`, 200}, // the agent's report wins over the quorum
		{"/", `data-pool="agents.m.test."`, 200},
		{"/healthz", `"ok"`, 200},
		{"/v1/pools", "missing or invalid token", 401},
	} {
		resp, err := http.Get("http://" + addr + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.contains) {
			t.Errorf("GET %s: %d, want %d with %q", c.path, resp.StatusCode, c.code, c.contains)
		}
	}

	checkDocumented(t, mfs)
}

// checkDocumented compares the checker's metrics with the "Health
// checker" table of docs/metrics.md: the same names, types and labels,
// and lints them.
func checkDocumented(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Health checker")
	if !ok {
		t.Fatal("docs/metrics.md has no Health checker section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	paren := regexp.MustCompile(`\([^)]*\)`)
	label := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		// | `name` | type | labels | meaning |
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`meridian_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		typ, _, _ := strings.Cut(strings.TrimSpace(cells[2]), " ")
		documented[name] = true
		var want []string
		for _, l := range label.FindAllStringSubmatch(paren.ReplaceAllString(cells[3], ""), -1) {
			want = append(want, l[1])
		}
		slices.Sort(want)
		mf, ok := mfs[name]
		if !ok {
			t.Errorf("%s is documented but not exported", name)
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != typ {
			t.Errorf("%s: type %s, documented %s", name, got, typ)
		}
		for _, s := range mf.GetMetric() {
			var got []string
			for _, l := range s.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: labels %v, documented %v", name, got, want)
				break
			}
		}
	}
	if len(documented) < 10 {
		t.Fatalf("only %d metrics found in the docs table: is the parser broken?", len(documented))
	}
	var lint []*dto.MetricFamily
	for name, mf := range mfs {
		if strings.HasPrefix(name, "meridian_") {
			if !documented[name] {
				t.Errorf("%s is exported but not documented", name)
			}
			lint = append(lint, mf)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(lint).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %+v", err, problems)
	}
}

// TestMetricsRegistered makes sure every series that needs no event
// exists from the start (so that dashboards and alerts see zeros, not
// gaps) and that registering twice fails loudly.
func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	newCheckerMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	for name, n := range map[string]int{
		"meridian_checker_targets": 1, "meridian_checker_probes_total": 10, "meridian_checker_probe_duration_seconds": 5,
		"meridian_checker_pending_verdicts": 1, "meridian_checker_heartbeat_timestamp_seconds": 1, "meridian_checker_checkers": 2,
		"meridian_agent_reports_total": 4, "meridian_store_up": 1,
	} {
		if series[name] != n {
			t.Errorf("%s: %d series, want %d", name, series[name], n)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("registering twice did not panic")
		}
	}()
	newCheckerMetrics(reg)
}

// TestWriterRetries keeps a transition that could not be written and
// retries it, but never lets it overwrite a newer one.
func TestWriterRetries(t *testing.T) {
	_, db := pgtest.Store(t, `origin: w.test.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters: [{name: dc, lat: 50, lon: 8}]
pools:
  - name: www
    endpoints: [{address: 192.0.2.1, datacenter: dc}, {address: 192.0.2.2, datacenter: dc}]
`)
	ctx := context.Background()
	if err := postgres.RegisterChecker(ctx, db, "w1", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	m := newCheckerMetrics(prometheus.NewRegistry())
	w := &writer{db: db, id: "w1", logger: slog.New(slog.DiscardHandler), metrics: m, pending: map[string]verdict{}}
	gone, cancel := context.WithCancel(ctx)
	cancel() // as good as a database that does not answer
	const k1, k2 = "www.w.test./192.0.2.1", "www.w.test./192.0.2.2"
	w.record(gone, k1, health.Transition{Up: false, Reason: "timeout"})
	w.record(gone, k2, health.Transition{Up: false, Reason: "timeout"})
	if got := testGauge(m.pending); got != 2 {
		t.Fatalf("pending %v, want 2", got)
	}
	// .1 recovers while the database is back: its stale "down" is dropped.
	w.record(ctx, k1, health.Transition{Up: true})
	if got := testGauge(m.pending); got != 1 {
		t.Errorf("pending %v, want 1", got)
	}
	w.flush(ctx)
	if got := testGauge(m.pending); got != 0 {
		t.Errorf("pending after flush %v, want 0", got)
	}
	for addr, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": false} {
		st, err := postgres.EndpointHealth(ctx, db, "www.w.test.", netip.MustParseAddr(addr))
		if err != nil || len(st.Verdicts) != 1 || st.Verdicts[0].Up != want {
			t.Errorf("%s: %+v, %v; want up=%v", addr, st, err, want)
		}
	}
}

func testGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	_ = g.Write(&m)
	return m.GetGauge().GetValue()
}

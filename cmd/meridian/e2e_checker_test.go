package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// backend is an HTTP server on one loopback address whose health URL says
// UP, or something else, and which can be stopped and started again.
type backend struct {
	addr string // ip:port
	up   atomic.Bool
	mu   sync.Mutex
	srv  *http.Server
}

func (b *backend) start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && b.up.Load() {
			fmt.Fprintln(w, "UP")
			return
		}
		fmt.Fprintln(w, "MAINTENANCE")
	})}
	go b.srv.Serve(ln)
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

// backends starts n HTTP backends on 127.0.0.11, .12, ... sharing a port.
func backends(t *testing.T, n int) ([]*backend, int) {
	t.Helper()
	for try := 0; try < 20; try++ {
		ln, err := net.Listen("tcp", "127.0.0.11:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		var bs []*backend
		ok := true
		for i := range n {
			b := &backend{addr: fmt.Sprintf("127.0.0.%d:%d", 11+i, port)}
			b.up.Store(true)
			probe, err := net.Listen("tcp", b.addr)
			if err != nil {
				ok = false
				break
			}
			probe.Close()
			bs = append(bs, b)
		}
		if !ok {
			continue
		}
		for _, b := range bs {
			b.start(t)
			t.Cleanup(b.stop)
		}
		return bs, port
	}
	t.Fatal("no port free on 127.0.0.11-13")
	return nil, 0
}

// checkedZone is a YAML zone with a pool www of n endpoints on
// 127.0.0.11 and up, probed over HTTP on port: fast checks (200 ms, rise
// and fall 2) so that tests see transitions quickly.
func checkedZone(origin string, port, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `origin: %s
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters: [{name: dc, lat: 50, lon: 8}]
pools:
  - name: www
    health_check: {type: http, port: %d, path: /health, expect_body: UP, interval: 200ms, timeout: 150ms, rise: 2, fall: 2}
    endpoints:
`, origin, port)
	for i := range n {
		fmt.Fprintf(&b, "      - {address: 127.0.0.%d, datacenter: dc}\n", 11+i)
	}
	return b.String()
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// apiPost posts body to the health-agent API at addr with token and
// returns the HTTP status.
func apiPost(t *testing.T, addr, path, token, body string) int {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ctlToken creates a token with meridianctl and returns it.
func ctlToken(t *testing.T, url string, args ...string) string {
	t.Helper()
	for _, line := range strings.Split(meridianctl(t, url, append([]string{"token", "create"}, args...)...), "\n") {
		if strings.HasPrefix(line, "mrd_") {
			return strings.TrimSpace(line)
		}
	}
	t.Fatal("meridianctl token create printed no token")
	return ""
}

// checkerProcess runs meridian-checker until the test ends.
func checkerProcess(t *testing.T, url, id string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(otherBinary(t, "meridian-checker"), append([]string{"--database", url, "--id", id, "--heartbeat", "300ms"}, extra...)...)
	var logs logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("checker %s log:\n%s", id, logs.String())
		}
	})
	return cmd
}

// TestE2EChecker runs PostgreSQL, meridian serve, two meridian-checkers
// and three HTTP backends: a backend that fails its health URL leaves the
// answers, comes back when healthy, survives one checker dying, and a
// drain takes it out regardless of health.
func TestE2EChecker(t *testing.T) {
	requireDig(t)
	bs, port := backends(t, 3)
	url := pgtest.NewDB(t)
	ctx := context.Background()
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zone := checkedZone("e2e.test.", port, 3)
	if err := os.WriteFile(dir+"/e2e.test.yaml", []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	meridianctl(t, url, "apply", "-f", dir+"/e2e.test.yaml")

	c1 := checkerProcess(t, url, "c1")
	apiAddr := freeAddr(t)
	checkerProcess(t, url, "c2", "--listen", apiAddr)
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	all := func(r *digResult) bool { return len(data(r.Answer, "A")) == 3 }
	without := func(addr string) func(*digResult) bool {
		return func(r *digResult) bool {
			a := data(r.Answer, "A")
			return len(a) == 2 && !slices.Contains(a, addr)
		}
	}
	m.waitDig(t, "three endpoints", all, "www.e2e.test", "A")
	// Both checkers have judged every endpoint up.
	waitHealth(t, url, "127.0.0.12", "up")

	// A wrong body (the service says it is in maintenance) takes .12 out.
	start := time.Now()
	bs[1].up.Store(false)
	m.waitDig(t, ".12 leaves", without("127.0.0.12"), "www.e2e.test", "A")
	t.Logf("failing health URL: out of the answers after %v (fall 2 x interval 200ms)", time.Since(start).Round(time.Millisecond))
	bs[1].up.Store(true)
	start = time.Now()
	m.waitDig(t, ".12 returns", all, "www.e2e.test", "A")
	t.Logf("healthy again: back after %v (rise 2 x interval 200ms)", time.Since(start).Round(time.Millisecond))

	// A stopped backend (connection refused) leaves too, and one checker
	// dying changes nothing: the other's verdicts carry the quorum.
	c1.Process.Kill()
	start = time.Now()
	bs[2].stop()
	m.waitDig(t, ".13 leaves", without("127.0.0.13"), "www.e2e.test", "A")
	t.Logf("stopped backend: out of the answers after %v", time.Since(start).Round(time.Millisecond))
	bs[2].start(t)
	m.waitDig(t, ".13 returns", all, "www.e2e.test", "A")

	// An agent on .12 reports itself down through the API (with a token
	// for its pool); it leaves at once, and comes back when it says up.
	token := ctlToken(t, url, "--pool", "www.e2e.test", "--label", "agent12")
	report := func(token, status string) int {
		t.Helper()
		return apiPost(t, apiAddr, "/v1/pools/www.e2e.test/endpoints/127.0.0.12/report", token, `{"status": "`+status+`", "ttl": "60s"}`)
	}
	if code := report(token, "down"); code != http.StatusOK {
		t.Fatalf("agent report: HTTP %d", code)
	}
	m.waitDig(t, ".12 reported down", without("127.0.0.12"), "www.e2e.test", "A")
	if code := report(token, "up"); code != http.StatusOK {
		t.Fatalf("agent report: HTTP %d", code)
	}
	m.waitDig(t, ".12 reported up", all, "www.e2e.test", "A")
	if code := report("mrd_wrong", "down"); code != http.StatusUnauthorized {
		t.Errorf("a wrong token got HTTP %d, want 401", code)
	}

	// An operator drains .11 through the API: it leaves whatever its
	// health, and the audit log says who.
	opToken := ctlToken(t, url, "--operator", "--label", "alice")
	if code := apiPost(t, apiAddr, "/v1/pools/www.e2e.test/endpoints/127.0.0.11/admin", opToken,
		`{"state": "drain", "reason": "kernel upgrade"}`); code != http.StatusOK {
		t.Fatalf("operator drain: HTTP %d", code)
	}
	m.waitDig(t, ".11 drained", without("127.0.0.11"), "www.e2e.test", "A")
	if audit := meridianctl(t, url, "audit"); !strings.Contains(audit, "token:alice") || !strings.Contains(audit, "kernel upgrade") {
		t.Errorf("audit log lacks the operator's drain:\n%s", audit)
	}
	// meridianctl enables it again.
	meridianctl(t, url, "enable", "--pool", "www.e2e.test", "--address", "127.0.0.11", "--reason", "done")
	m.waitDig(t, ".11 enabled", all, "www.e2e.test", "A")
	m.stop(t)
}

// waitHealth waits until meridianctl shows the endpoint in state.
func waitHealth(t *testing.T, url, addr, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := meridianctl(t, url, "endpoints", "--pool", "www.e2e.test")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, addr) && strings.Contains(line, " "+state) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s:\n%s", addr, state, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2ELocalChecks serves zone files with health checks and no
// database: the server probes the backends itself.
func TestE2ELocalChecks(t *testing.T) {
	requireDig(t)
	bs, port := backends(t, 2)
	dir := t.TempDir()
	zone := checkedZone("local.test.", port, 2)
	path := dir + "/local.test.yaml"
	if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--zone-file", path)
	both := func(r *digResult) bool { return len(data(r.Answer, "A")) == 2 }
	m.waitDig(t, "both endpoints", both, "www.local.test", "A")
	bs[0].up.Store(false)
	m.waitDig(t, ".11 leaves", func(r *digResult) bool {
		a := data(r.Answer, "A")
		return len(a) == 1 && a[0] == "127.0.0.12"
	}, "www.local.test", "A")
	m.waitLog(t, 0, 5*time.Second, func(l logLine) bool { return l.Msg == "Endpoint health changed" && l.attrs["state"] == "down" })
	bs[0].up.Store(true)
	m.waitDig(t, ".11 returns", both, "www.local.test", "A")
	m.stop(t)
}

// makeAgentToken runs "meridian agent-token" and returns the token and the
// configuration entry it prints.
func makeAgentToken(t *testing.T, args ...string) (token, entry string) {
	t.Helper()
	out, err := exec.Command(meridianBinary(t), append([]string{"agent-token"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("agent-token: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "token: "):
			token = strings.TrimPrefix(line, "token: ")
		case strings.HasPrefix(line, "- {"):
			entry = line
		}
	}
	if token == "" || entry == "" {
		t.Fatalf("agent-token printed no token or entry:\n%s", out)
	}
	return token, entry
}

// TestE2ELocalAgentAPI serves zone files with the health-agent API and no
// database: an agent's report and an operator's drain reach dig.
func TestE2ELocalAgentAPI(t *testing.T) {
	requireDig(t)
	dir := t.TempDir()
	zone := strings.Replace(checkedZone("agents.test.", 1, 2), "    health_check: {type: http, port: 1, path: /health, expect_body: UP, interval: 200ms, timeout: 150ms, rise: 2, fall: 2}\n", "", 1)
	if err := os.WriteFile(dir+"/agents.test.yaml", []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	agentTok, agentEntry := makeAgentToken(t, "--pool", "www.agents.test", "--label", "web1")
	opTok, opEntry := makeAgentToken(t, "--operator", "--label", "alice")
	api := freeAddr(t)
	config := fmt.Sprintf("zones:\n  files: [agents.test.yaml]\nhealth:\n  agent_listen: %s\n  agent_tokens:\n    %s\n    %s\n", api, agentEntry, opEntry)
	if err := os.WriteFile(dir+"/meridian.yaml", []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", dir+"/meridian.yaml", "--listen", "127.0.0.1:0")
	both := func(r *digResult) bool { return len(data(r.Answer, "A")) == 2 }
	only := func(addr string) func(*digResult) bool {
		return func(r *digResult) bool { a := data(r.Answer, "A"); return len(a) == 1 && a[0] == addr }
	}
	m.waitDig(t, "both endpoints", both, "www.agents.test", "A")
	post := func(token, path, body string) int {
		t.Helper()
		return apiPost(t, api, "/v1/pools/www.agents.test/endpoints/"+path, token, body)
	}
	if code := post(agentTok, "127.0.0.12/report", `{"status": "down", "ttl": "1h"}`); code != http.StatusOK {
		t.Fatalf("agent report: HTTP %d", code)
	}
	m.waitDig(t, ".12 reported down", only("127.0.0.11"), "www.agents.test", "A")
	if code := post(agentTok, "127.0.0.12/report", `{"status": "up 50%", "ttl": "1h"}`); code != http.StatusOK {
		t.Fatalf("agent report: HTTP %d", code)
	}
	m.waitDig(t, ".12 reported up", both, "www.agents.test", "A")
	for _, tc := range []struct {
		token, path, body string
		code              int
	}{
		{"mrd_wrong", "127.0.0.12/report", `{"status": "down"}`, http.StatusUnauthorized},
		{agentTok, "127.0.0.11/admin", `{"state": "drain", "reason": "x"}`, http.StatusForbidden},
		{agentTok, "127.0.0.99/report", `{"status": "down"}`, http.StatusNotFound},
		{agentTok, "127.0.0.12/report", `{"status": "sideways"}`, http.StatusBadRequest},
	} {
		if code := post(tc.token, tc.path, tc.body); code != tc.code {
			t.Errorf("%s %s: HTTP %d, want %d", tc.path, tc.body, code, tc.code)
		}
	}
	if code := post(opTok, "127.0.0.11/admin", `{"state": "drain", "reason": "kernel upgrade"}`); code != http.StatusOK {
		t.Fatalf("operator drain: HTTP %d", code)
	}
	m.waitDig(t, ".11 drained", only("127.0.0.12"), "www.agents.test", "A")
	m.waitLog(t, 0, 5*time.Second, func(l logLine) bool {
		return l.Msg == "Admin state changed" && l.attrs["actor"] == "token:alice" && l.attrs["reason"] == "kernel upgrade"
	})
	m.stop(t)
}

// agentListeners runs HAProxy agent-check agents on 127.0.0.11, .12, ...
// sharing a port; each answers every connection with its current line.
func agentListeners(t *testing.T, n int) ([]*atomic.Value, int) {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", "127.0.0.11:0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 1; i < n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", 11+i, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) < n {
			for _, ln := range lns {
				ln.Close()
			}
			continue
		}
		var lines []*atomic.Value
		for _, ln := range lns {
			v := &atomic.Value{}
			v.Store("up\n")
			lines = append(lines, v)
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte(v.Load().(string)))
					c.Close()
				}
			}()
		}
		return lines, port
	}
	t.Fatal("no port free on 127.0.0.11 and up")
	return nil, 0
}

// TestE2EAgentCheck probes HAProxy agent-check agents with the real
// checker: a drain takes an endpoint out, "up 50%" brings it back at half
// weight, as the JSON API would.
func TestE2EAgentCheck(t *testing.T) {
	requireDig(t)
	lines, port := agentListeners(t, 2)
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zone := strings.Replace(checkedZone("agent.test.", port, 2), "type: http, port: "+fmt.Sprint(port)+", path: /health, expect_body: UP,", "type: agent, port: "+fmt.Sprint(port)+",", 1)
	if err := os.WriteFile(dir+"/agent.test.yaml", []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	meridianctl(t, url, "apply", "-f", dir+"/agent.test.yaml")
	checkerProcess(t, url, "c1")
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	both := func(r *digResult) bool { return len(data(r.Answer, "A")) == 2 }
	m.waitDig(t, "both endpoints", both, "www.agent.test", "A")
	lines[1].Store("drain # deploying\n")
	m.waitDig(t, ".12 drains", func(r *digResult) bool {
		a := data(r.Answer, "A")
		return len(a) == 1 && a[0] == "127.0.0.11"
	}, "www.agent.test", "A")
	lines[1].Store("up 50%\n")
	m.waitDig(t, ".12 returns", both, "www.agent.test", "A")
	// The weight the agent gave is recorded as the JSON API would.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pct int
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := conn.QueryRow(context.Background(), `SELECT coalesce(a.weight_percent, 0) FROM agent_reports a
			JOIN endpoints e ON e.id = a.endpoint_id WHERE e.address = '127.0.0.12'`).Scan(&pct)
		if err == nil && pct == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent weight not recorded: %d, %v", pct, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.stop(t)
}

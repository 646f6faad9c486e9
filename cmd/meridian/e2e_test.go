package main

// End-to-end tests: the real binary, started as an operator would, asked
// with the real dig. dig is required (scripts/test.sh installs it); these
// tests fail rather than skip without it. All traffic goes to 127.0.0.1 and
// every wait is bounded.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// meridianBinary builds cmd/meridian once per test run.
func meridianBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "meridian-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "meridian")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/meridian")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// requireDig fails the test when dig is missing: the end-to-end tests are
// the proof that real resolvers' tools get the right answers.
func requireDig(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatal("dig not found: install bind9-dnsutils (scripts/test.sh does)")
	}
}

// meridian is a running meridian process.
type meridian struct {
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	port string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// startMeridian starts "meridian serve" with args plus JSON logs and waits
// until it logs that it listens. It is killed at the end of the test if
// still running.
func startMeridian(t testing.TB, dir string, env []string, args ...string) *meridian {
	t.Helper()
	bin := meridianBinary(t)
	m := &meridian{logs: &logbuf.Buffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(bin, append([]string{"serve", "--log-format", "json"}, args...)...)
	m.cmd.Dir = dir
	m.cmd.Env = append(os.Environ(), env...)
	m.cmd.Stdout = m.logs
	m.cmd.Stderr = m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			t.Logf("meridian log:\n%s", m.logs.String())
		}
	})

	line := m.waitLog(t, 0, 15*time.Second, func(l logLine) bool { return l.Msg == "Listening" })
	addrs, _ := line.attrs["addrs"].([]any)
	if len(addrs) == 0 {
		t.Fatalf("Listening log without addresses: %v", line.attrs)
	}
	addr, _ := addrs[0].(string)
	host, port, ok := strings.Cut(addr, ":")
	if !ok || host != "127.0.0.1" {
		t.Fatalf("listening on %q, want 127.0.0.1:port", addr)
	}
	m.port = port
	return m
}

// logLine is one JSON log line of the process.
type logLine struct {
	index int
	Level string
	Msg   string
	attrs map[string]any
}

func (m *meridian) logLines() []logLine {
	var out []logLine
	for i, s := range strings.Split(m.logs.String(), "\n") {
		var attrs map[string]any
		if json.Unmarshal([]byte(s), &attrs) != nil {
			continue
		}
		l := logLine{index: i, attrs: attrs}
		l.Level, _ = attrs["level"].(string)
		l.Msg, _ = attrs["msg"].(string)
		out = append(out, l)
	}
	return out
}

// waitLog waits until a log line at or after index from matches and
// returns it. It fails the test when the process exits first.
func (m *meridian) waitLog(t testing.TB, from int, timeout time.Duration, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range m.logLines() {
			if l.index >= from && match(l) {
				return l
			}
		}
		select {
		case <-m.done:
			t.Fatalf("meridian exited (%v) while waiting for a log line", m.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching log line after %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextLogIndex is the index the next log line will have.
func (m *meridian) nextLogIndex() int {
	return strings.Count(m.logs.String(), "\n")
}

func (m *meridian) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := m.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGTERM and requires a clean exit within 5 seconds.
func (m *meridian) stop(t testing.TB) {
	t.Helper()
	m.signal(t, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		t.Fatal("meridian did not exit within 5s of SIGTERM")
	}
	if m.err != nil {
		t.Fatalf("meridian exited with %v after SIGTERM, want status 0", m.err)
	}
}

// digRR is one record line of dig's output.
type digRR struct {
	Name, TTL, Type, Data string
}

// digResult is dig's output, parsed.
type digResult struct {
	Status     string
	Flags      []string
	NSID       string
	Answer     []digRR
	Authority  []digRR
	Additional []digRR
	Raw        string
}

func (r *digResult) hasFlag(f string) bool { return slices.Contains(r.Flags, f) }

// data returns the data of the records of type typ in rrs.
func data(rrs []digRR, typ string) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Type == typ {
			out = append(out, rr.Data)
		}
	}
	return out
}

var (
	statusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`;; flags:([^;]*);`)
	nsidRE   = regexp.MustCompile(`; NSID: .*\("(.*)"\)`)
)

// dig runs dig against the server; query is dig's query arguments and
// options. A dig failure (timeout, unreachable) is an error.
func (m *meridian) dig(query ...string) (*digResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"@127.0.0.1", "-p", m.port, "+time=2", "+tries=1", "+norec"}, query...)
	out, err := exec.CommandContext(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r := &digResult{Raw: string(out)}
	sm := statusRE.FindStringSubmatch(r.Raw)
	fm := flagsRE.FindStringSubmatch(r.Raw)
	if sm == nil || fm == nil {
		return nil, fmt.Errorf("dig %s: no reply header in:\n%s", strings.Join(args, " "), out)
	}
	r.Status, r.Flags = sm[1], strings.Fields(fm[1])
	if nm := nsidRE.FindStringSubmatch(r.Raw); nm != nil {
		r.NSID = nm[1]
	}
	var section *[]digRR
	for _, line := range strings.Split(r.Raw, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			section = &r.Answer
		case strings.HasPrefix(line, ";; AUTHORITY SECTION:"):
			section = &r.Authority
		case strings.HasPrefix(line, ";; ADDITIONAL SECTION:"):
			section = &r.Additional
		case line == "" || strings.HasPrefix(line, ";"):
			section = nil
		case section != nil:
			f := strings.Fields(line)
			if len(f) >= 5 {
				*section = append(*section, digRR{Name: f[0], TTL: f[1], Type: f[3], Data: strings.Join(f[4:], " ")})
			}
		}
	}
	return r, nil
}

// mustDig is dig that fails the test on error.
func (m *meridian) mustDig(t *testing.T, query ...string) *digResult {
	t.Helper()
	r, err := m.dig(query...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitDig repeats a query until ok accepts the answer, for at most 10s.
func (m *meridian) waitDig(t *testing.T, what string, ok func(*digResult) bool, query ...string) *digResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := m.dig(query...)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			t.Fatalf("%s: last answer:\n%s", what, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// copyExamples copies the example zones into a new directory.
func copyExamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"example.com.zone", "example.net.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func isNOERROR(r *digResult) bool { return r.Status == "NOERROR" && len(r.Answer) > 0 }

func TestE2EZoneFiles(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	zoneFile := filepath.Join(dir, "example.com.zone")
	m := startMeridian(t, dir, nil,
		"--listen", "127.0.0.1:0",
		"--zone-file", zoneFile,
		"--zone-file", filepath.Join(dir, "example.net.yaml"),
		"--nsid", "e2e-test")
	m.waitDig(t, "server answers", isNOERROR, "www.example.com", "A")

	queries := []struct {
		name  string
		query []string
		check func(t *testing.T, r *digResult)
	}{
		{"authoritative answer", []string{"www.example.com", "A"}, func(t *testing.T, r *digResult) {
			if r.Status != "NOERROR" || !r.hasFlag("aa") {
				t.Errorf("status %s flags %v, want NOERROR with aa", r.Status, r.Flags)
			}
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
				t.Errorf("A = %v, want [192.0.2.10]", got)
			}
		}},
		{"AAAA", []string{"www.example.com", "AAAA"}, func(t *testing.T, r *digResult) {
			if got := data(r.Answer, "AAAA"); !slices.Equal(got, []string{"2001:db8::10"}) {
				t.Errorf("AAAA = %v, want [2001:db8::10]", got)
			}
		}},
		{"nxdomain", []string{"missing.example.com", "A"}, func(t *testing.T, r *digResult) {
			if r.Status != "NXDOMAIN" || !r.hasFlag("aa") {
				t.Errorf("status %s flags %v, want NXDOMAIN with aa", r.Status, r.Flags)
			}
			if len(r.Answer) != 0 || len(data(r.Authority, "SOA")) != 1 {
				t.Errorf("answer %v authority %v, want no answer and the SOA in authority", r.Answer, r.Authority)
			}
		}},
		{"empty non-terminal is NODATA", []string{"a.b.example.com", "A"}, func(t *testing.T, r *digResult) {
			if r.Status != "NOERROR" || len(r.Answer) != 0 || len(data(r.Authority, "SOA")) != 1 {
				t.Errorf("status %s answer %v authority %v, want NODATA with SOA", r.Status, r.Answer, r.Authority)
			}
		}},
		{"wildcard", []string{"anything.wild.example.com", "A"}, func(t *testing.T, r *digResult) {
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.80"}) {
				t.Errorf("A = %v, want [192.0.2.80]", got)
			}
		}},
		{"truncated over UDP", []string{"+ignore", "+bufsize=1232", "big.example.com", "TXT"}, func(t *testing.T, r *digResult) {
			if !r.hasFlag("tc") {
				t.Errorf("flags %v, want tc", r.Flags)
			}
		}},
		{"complete over TCP", []string{"+tcp", "big.example.com", "TXT"}, func(t *testing.T, r *digResult) {
			if r.hasFlag("tc") || len(data(r.Answer, "TXT")) != 30 {
				t.Errorf("flags %v, %d TXT records, want 30 and no tc", r.Flags, len(data(r.Answer, "TXT")))
			}
		}},
		{"referral", []string{"host.sub.example.com", "A"}, func(t *testing.T, r *digResult) {
			if r.Status != "NOERROR" || r.hasFlag("aa") || len(r.Answer) != 0 {
				t.Errorf("status %s flags %v answer %v, want a NOERROR referral without aa", r.Status, r.Flags, r.Answer)
			}
			ns := data(r.Authority, "NS")
			slices.Sort(ns)
			if !slices.Equal(ns, []string{"ns1.sub.example.com.", "ns2.sub.example.com."}) {
				t.Errorf("authority NS = %v, want the sub.example.com servers", ns)
			}
			if len(data(r.Additional, "A")) != 2 {
				t.Errorf("additional = %v, want the two glue addresses", r.Additional)
			}
		}},
		{"nsid", []string{"+nsid", "www.example.com", "A"}, func(t *testing.T, r *digResult) {
			if r.NSID != "e2e-test" {
				t.Errorf("NSID = %q, want e2e-test\n%s", r.NSID, r.Raw)
			}
		}},
		{"yaml zone", []string{"mail.example.net", "A"}, func(t *testing.T, r *digResult) {
			got := data(r.Answer, "A")
			if !r.hasFlag("aa") || !slices.Equal(got, []string{"198.51.100.25"}) {
				t.Errorf("flags %v A %v, want aa and mail.example.net's address", r.Flags, got)
			}
		}},
		{"pool without GeoIP: configuration order", []string{"www.example.net", "A"}, func(t *testing.T, r *digResult) {
			got := data(r.Answer, "A")
			slices.Sort(got)
			want := []string{"198.51.100.11", "198.51.100.12", "198.51.100.21", "198.51.100.22"}
			if !r.hasFlag("aa") || !slices.Equal(got, want) {
				t.Errorf("flags %v A %v, want aa and %v", r.Flags, got, want)
			}
		}},
		{"other zone is refused", []string{"www.example.org", "A"}, func(t *testing.T, r *digResult) {
			if r.Status != "REFUSED" {
				t.Errorf("status %s, want REFUSED", r.Status)
			}
		}},
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) { q.check(t, m.mustDig(t, q.query...)) })
	}
	if t.Failed() {
		return
	}

	orig, err := os.ReadFile(zoneFile)
	if err != nil {
		t.Fatal(err)
	}
	hasA := func(want string) func(*digResult) bool {
		return func(r *digResult) bool { return slices.Contains(data(r.Answer, "A"), want) }
	}

	// An edit in place is picked up.
	v2 := string(orig) + "added\tIN\tA\t192.0.2.200\n"
	if err := os.WriteFile(zoneFile, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	m.waitDig(t, "added record after write", hasA("192.0.2.200"), "added.example.com", "A")

	// So is a file replaced by rename, the way editors save.
	v3 := v2 + "renamed\tIN\tA\t192.0.2.201\n"
	tmp := filepath.Join(dir, ".example.com.zone.tmp")
	if err := os.WriteFile(tmp, []byte(v3), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, zoneFile); err != nil {
		t.Fatal(err)
	}
	m.waitDig(t, "added record after rename", hasA("192.0.2.201"), "renamed.example.com", "A")

	// A broken file is reported with file and line, and the last good
	// data keeps being served.
	badLine := strings.Count(v3, "\n") + 1
	from := m.nextLogIndex()
	if err := os.WriteFile(zoneFile, []byte(v3+"broken\tIN\tA\tnot-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	where := fmt.Sprintf("%s:%d", zoneFile, badLine)
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
		e, _ := l.attrs["err"].(string)
		return l.Level == "ERROR" && strings.Contains(e, where)
	})
	if r := m.mustDig(t, "renamed.example.com", "A"); !hasA("192.0.2.201")(r) {
		t.Errorf("after a broken edit, renamed.example.com = %v, want the last good data", r.Answer)
	}
	if r := m.mustDig(t, "www.example.com", "A"); !hasA("192.0.2.10")(r) {
		t.Errorf("after a broken edit, www.example.com = %v, want the last good data", r.Answer)
	}

	// Fixing it is picked up again.
	v4 := v3 + "fixed\tIN\tA\t192.0.2.202\n"
	if err := os.WriteFile(zoneFile, []byte(v4), 0o644); err != nil {
		t.Fatal(err)
	}
	m.waitDig(t, "record after fix", hasA("192.0.2.202"), "fixed.example.com", "A")

	// SIGHUP reloads.
	from = m.nextLogIndex()
	m.signal(t, syscall.SIGHUP)
	hup := m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
		return l.Msg == "Reloading zones" && l.attrs["reason"] == "SIGHUP"
	})
	m.waitLog(t, hup.index, 10*time.Second, func(l logLine) bool { return l.Msg == "Snapshot published" })
	if r := m.mustDig(t, "fixed.example.com", "A"); !hasA("192.0.2.202")(r) {
		t.Errorf("after SIGHUP, fixed.example.com = %v", r.Answer)
	}

	m.stop(t)
}

func TestE2EConfigFile(t *testing.T) {
	requireDig(t)
	config, err := filepath.Abs(filepath.Join("..", "..", "examples", "meridian.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Run elsewhere: zone files in the config are relative to it, not to
	// the working directory. The flag overrides the config's port, the
	// environment its NSID.
	m := startMeridian(t, t.TempDir(), []string{"MERIDIAN_DNS_NSID=from-env"},
		"--config", config, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
	r := m.waitDig(t, "server answers", isNOERROR, "+nsid", "www.example.com", "A")
	if !r.hasFlag("aa") || r.NSID != "from-env" {
		t.Errorf("flags %v NSID %q, want aa and NSID from-env", r.Flags, r.NSID)
	}
	if r := m.mustDig(t, "www.example.net", "AAAA"); len(data(r.Answer, "AAAA")) != 4 {
		t.Errorf("www.example.net AAAA = %v, want four pool records", r.Answer)
	}
	m.stop(t)
}

func TestE2EStartupErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.example.zone")
	zone := "$ORIGIN broken.example.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 300.1.2.3\n"
	if err := os.WriteFile(broken, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badConfig, []byte("dns:\n  nsidd: x\nzones:\n  files: [a.zone]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"broken zone file", []string{"serve", "--listen", "127.0.0.1:0", "--zone-file", broken}, broken + ":6"},
		{"missing zone file", []string{"serve", "--listen", "127.0.0.1:0", "--zone-file", filepath.Join(dir, "none.zone")}, "none.zone"},
		{"unknown config key", []string{"serve", "--config", badConfig}, "nsidd"},
		{"unknown flag", []string{"serve", "--bogus"}, "bogus"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, meridianBinary(t), tt.args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("exit = %v, want a non-zero status\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output does not contain %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestE2EVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, meridianBinary(t), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "meridian ") {
		t.Errorf("meridian version = %q, %v", out, err)
	}
}

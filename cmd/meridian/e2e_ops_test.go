package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/meridiandns/meridian/internal/logbuf"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// notifySocket listens where systemd would for sd_notify messages and
// returns its path and the messages as they come.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// waitNotify waits for a message containing want.
func waitNotify(t *testing.T, ch <-chan string, want string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if strings.Contains(m, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %q from sd_notify", want)
		}
	}
}

// metricValue returns the value of the sample whose line starts with
// series in a Prometheus text exposition, or -1.
func metricValue(body, series string) string {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, series))
		}
	}
	return ""
}

// TestE2EOps runs the server as systemd would (Type=notify, a watchdog)
// with metrics and dnstap on, and checks what an operator's tools see.
func TestE2EOps(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	sock, notes := notifySocket(t)
	tapFile := filepath.Join(dir, "queries.dnstap")
	m := startMeridian(t, dir, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=600000", "MERIDIAN_DNSTAP_FILE=" + tapFile,
		"MERIDIAN_DNS_LAMEDUCK=60s"},
		"--listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0",
		"--zone-file", filepath.Join(dir, "example.com.zone"),
		"--zone-file", filepath.Join(dir, "example.net.yaml"),
	)
	line := m.waitLog(t, 0, 5*time.Second, func(l logLine) bool { return l.Msg == "HTTP listening" })
	base := "http://" + line.attrs["address"].(string)

	ready := waitNotify(t, notes, "READY=1")
	if !strings.Contains(ready, "STATUS=serving version") {
		t.Errorf("READY without status: %q", ready)
	}
	// The watchdog pings only after the server answered itself.
	waitNotify(t, notes, "WATCHDOG=1")

	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 || !strings.Contains(body, "2 zones") {
		t.Errorf("/readyz: %d %q", code, body)
	}

	m.mustDig(t, "www.example.com", "A")
	m.mustDig(t, "www.example.com", "A", "+tcp")
	m.mustDig(t, "nothere.example.com", "A")
	m.mustDig(t, "www.example.org", "A") // REFUSED: not ours

	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for series, want := range map[string]string{
		`meridian_dns_requests_total{family="1",proto="udp",type="A",zone="example.com."}`: "2",
		`meridian_dns_requests_total{family="1",proto="tcp",type="A",zone="example.com."}`: "1",
		`meridian_dns_responses_total{rcode="NXDOMAIN",zone="example.com."}`:               "1",
		`meridian_snapshot_zones`:             "2",
		`meridian_store_up`:                   "1",
		`meridian_store_synced`:               "1",
		`meridian_reloads_total{result="ok"}`: "1",
	} {
		if got := metricValue(body, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	// The watchdog's own queries ("." SOA) are REFUSED outside our zones
	// too, so there is at least one besides dig's.
	if v := metricValue(body, `meridian_dns_responses_total{rcode="REFUSED",zone="dropped"}`); v == "" || v == "0" {
		t.Errorf("REFUSED outside zones not counted: %q", v)
	}
	if !regexp.MustCompile(`meridian_dns_request_duration_seconds_bucket\{type="A",zone="example.com.",le="\+Inf"\} 3`).MatchString(body) {
		t.Error("latency histogram missing or wrong")
	}
	for _, name := range []string{"meridian_build_info", "go_goroutines", "process_cpu_seconds_total", `meridian_dnstap_messages_total{result="sent"}`} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// A broken zone file: the reload fails, the old snapshot stays, and
	// the metrics say the server is no longer in sync.
	zoneFile := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zoneFile, []byte("not a zone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	from := m.nextLogIndex()
	m.signal(t, syscall.SIGHUP)
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool { return strings.HasPrefix(l.Msg, "Reload failed") })
	_, body = httpGet(t, base+"/metrics")
	if metricValue(body, "meridian_store_synced") != "0" || metricValue(body, `meridian_reloads_total{result="error"}`) != "1" {
		t.Errorf("after a failed reload: synced %q errors %q", metricValue(body, "meridian_store_synced"), metricValue(body, `meridian_reloads_total{result="error"}`))
	}
	if code, _ := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz %d after a failed reload: the old snapshot still serves", code)
	}

	// Lame duck: after SIGTERM, /readyz turns away new traffic while
	// queries are still answered; a second SIGTERM (m.stop) ends it long
	// before its 60 s.
	m.signal(t, syscall.SIGTERM)
	waitNotify(t, notes, "STOPPING=1")
	if code, body := httpGet(t, base+"/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz in lame duck: %d %q", code, body)
	}
	if r := m.mustDig(t, "nothere.example.com", "A"); r.Status != "NXDOMAIN" {
		t.Errorf("lame duck answer: %s", r.Status)
	}
	m.stop(t)

	// dnstap: a query and a reply per dig, the names as asked.
	in, err := dnstap.NewFrameStreamInputFromFilename(tapFile)
	if err != nil {
		t.Fatal(err)
	}
	frames := make(chan []byte, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { in.ReadInto(frames); close(frames) }()
	seen := map[string]int{}
	for {
		var f []byte
		var ok bool
		select {
		case f, ok = <-frames:
		case <-ctx.Done():
			t.Fatal("reading dnstap timed out")
		}
		if !ok {
			break
		}
		d := new(dnstap.Dnstap)
		if err := proto.Unmarshal(f, d); err != nil {
			t.Fatal(err)
		}
		msg := d.GetMessage()
		pkt := msg.GetQueryMessage()
		if msg.GetType() == dnstap.Message_AUTH_RESPONSE {
			pkt = msg.GetResponseMessage()
		}
		var dm dns.Msg
		if err := dm.Unpack(pkt); err != nil {
			t.Fatalf("dnstap packet: %v", err)
		}
		seen[msg.GetType().String()+" "+dm.Question[0].Name]++
	}
	for _, k := range []string{"AUTH_QUERY www.example.com.", "AUTH_RESPONSE www.example.com.", "AUTH_RESPONSE nothere.example.com."} {
		if seen[k] == 0 {
			t.Errorf("dnstap lacks %s: %v", k, seen)
		}
	}
	if seen["AUTH_QUERY www.example.com."] != 2 {
		t.Errorf("dnstap has %d queries for www, want 2 (UDP and TCP)", seen["AUTH_QUERY www.example.com."])
	}
}

// TestE2EReadyzWhileLoading checks that /readyz answers 503 before the
// first snapshot: here the database never answers.
func TestE2EReadyzWhileLoading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(meridianBinary(t), "serve", "--log-format", "json", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--database", "postgres://x@"+ln.Addr().String()+"/x?connect_timeout=30")
	logs := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	re := regexp.MustCompile(`"msg":"HTTP listening","address":"([^"]+)"`)
	for addr == "" && time.Now().Before(deadline) {
		if mm := re.FindStringSubmatch(logs.String()); mm != nil {
			addr = mm[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		t.Fatalf("no HTTP listener:\n%s", logs.String())
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "loading") {
		t.Errorf("/readyz while loading: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz while loading: %d", code)
	}
}

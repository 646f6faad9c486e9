package main

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestE2ERRL floods the server from 127.0.0.1 over UDP, past its response
// rate limit, then asks with dig from the same network: without a cookie
// dig gets a truncated reply (slip), retries over TCP, which is never
// limited, and gets its answer; with one it gets BADCOOKIE and a server
// cookie, which gets its retry through over UDP. The metrics count what
// was withheld.
func TestE2ERRL(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	m := startMeridian(t, dir, []string{"MERIDIAN_DNS_RRL_RESPONSES_PER_SECOND=1", "MERIDIAN_DNS_RRL_SLIP=1"},
		"--listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0",
		"--zone-file", filepath.Join(dir, "example.com.zone"),
	)
	line := m.waitLog(t, 0, 5*time.Second, func(l logLine) bool { return l.Msg == "HTTP listening" })
	base := "http://" + line.attrs["address"].(string)
	m.waitDig(t, "the server answers", func(r *digResult) bool { return r.Status == "NOERROR" }, "www.example.com", "A")

	// 200 queries at once: beyond the burst of 1, every reply is slipped.
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", "127.0.0.1:"+m.port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const flood = 200
	for range flood {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	var full, truncated int
	buf := make([]byte, 4096)
	for c.SetReadDeadline(time.Now().Add(time.Second)); full+truncated < flood; {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		var r dns.Msg
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Truncated {
			truncated++
		} else {
			full++
		}
	}
	// The burst, plus what the rate refilled while the flood was read.
	if full > 6 || truncated < flood-10 {
		t.Errorf("flood of %d: %d full replies, %d truncated; want at most a few full, the rest truncated", flood, full, truncated)
	}

	// dig from the limited network, without a cookie: truncated over
	// UDP, answered over TCP. Reading the flood took long enough for the
	// budget to refill a little: spend it first. A machine slow enough to
	// take a second between the two refills the budget; a few tries make
	// the test immune to that.
	spentDig := func(want string, args ...string) *digResult {
		var r *digResult
		for try := 0; try < 3; try++ {
			for range 20 {
				c.Write(pkt)
			}
			r = m.mustDig(t, args...)
			if strings.Contains(r.Raw, want) {
				break
			}
		}
		return r
	}
	r := spentDig("Truncated, retrying in TCP mode", "www.example.com", "A", "+nocookie")
	if !strings.Contains(r.Raw, "Truncated, retrying in TCP mode") {
		t.Errorf("dig without a cookie was not told to retry over TCP:\n%s", r.Raw)
	}
	if r.Status != "NOERROR" || len(data(r.Answer, "A")) == 0 {
		t.Errorf("dig's answer after the TCP retry: %s %v\n%s", r.Status, r.Answer, r.Raw)
	}
	// dig sends a client cookie by default: the slip is then BADCOOKIE
	// with a server cookie, and dig's retry with it, over UDP, is not
	// limited (RFC 7873 section 5.2.3).
	rc := spentDig("BADCOOKIE, retrying", "www.example.com", "A")
	if !strings.Contains(rc.Raw, "BADCOOKIE, retrying") || strings.Contains(rc.Raw, "TCP mode") {
		t.Errorf("dig with a cookie was not sent BADCOOKIE to retry over UDP:\n%s", rc.Raw)
	}
	if rc.Status != "NOERROR" || len(data(rc.Answer, "A")) == 0 || !strings.Contains(rc.Raw, "(good)") {
		t.Errorf("dig's answer after the retry with its cookie: %s %v\n%s", rc.Status, rc.Answer, rc.Raw)
	}

	_, body := httpGet(t, base+"/metrics")
	slipped, _ := strconv.Atoi(metricValue(body, `meridian_dns_rrl_limited_total{action="slip"}`))
	if slipped < truncated {
		t.Errorf("meridian_dns_rrl_limited_total{action=\"slip\"} = %d, want at least the %d truncated replies seen", slipped, truncated)
	}
	t.Logf("flood of %d: %d full, %d slipped; dig retried over TCP and got %v", flood, full, truncated, data(r.Answer, "A"))
}

package health

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// Modes of the test HTTP server.
const (
	healthy int32 = iota
	failing
	wrongBody
	slow
	redirect
	bigBody
)

// flipServer is an HTTP handler whose behaviour a test switches.
type flipServer struct {
	mode  atomic.Int32
	host  atomic.Value // Host header of the last request
	conns atomic.Int32 // connections opened
}

func (f *flipServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.host.Store(r.Host)
	switch f.mode.Load() {
	case healthy:
		w.Write([]byte("status: UP\n"))
	case failing:
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("status: UP but not really\n"))
	case wrongBody:
		w.Write([]byte("status: DOWN\n"))
	case slow:
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	case redirect:
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	case bigBody:
		w.Write([]byte(strings.Repeat("x", maxBody) + "UP"))
	}
}

func startFlip(t *testing.T, tlsOn bool) (*flipServer, *httptest.Server) {
	t.Helper()
	f := &flipServer{}
	ts := httptest.NewUnstartedServer(f)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	if tlsOn {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close)
	return f, ts
}

func portOf(t *testing.T, addr net.Addr) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T, network string) uint16 {
	t.Helper()
	var a net.Addr
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = c.LocalAddr()
		c.Close()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a = l.Addr()
		l.Close()
	}
	return portOf(t, a)
}

type probeCase struct {
	name   string
	mode   int32
	check  Check
	ok     bool
	reason string // prefix of the wanted reason
}

func runProbeCases(t *testing.T, f *flipServer, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if f != nil {
				f.mode.Store(tc.mode)
			}
			begin := time.Now()
			r := Probe(t.Context(), Target{Key: "k", Addr: loopback, Check: tc.check})
			if r.OK != tc.ok || !strings.HasPrefix(r.Reason, tc.reason) || (tc.ok && r.Reason != "") {
				t.Fatalf("got OK=%v reason %q, want OK=%v reason %q...", r.OK, r.Reason, tc.ok, tc.reason)
			}
			if r.Duration <= 0 || r.At.Before(begin) || r.Duration > time.Since(begin) {
				t.Errorf("Duration %v At %v not within the call (began %v)", r.Duration, r.At, begin)
			}
		})
	}
}

func TestProbeHTTP(t *testing.T) {
	f, ts := startFlip(t, false)
	port := portOf(t, ts.Listener.Addr())
	check := func(mod func(*Check)) Check {
		c := Check{Type: "http", Port: port, Timeout: 300 * time.Millisecond, Interval: time.Second}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runProbeCases(t, f, []probeCase{
		{"healthy", healthy, check(nil), true, ""},
		{"healthy body", healthy, check(func(c *Check) { c.ExpectBody = "UP" }), true, ""},
		{"failing status", failing, check(func(c *Check) { c.ExpectBody = "UP" }), false, "status 503 (want 200)"},
		{"failing status accepted", failing, check(func(c *Check) { c.ExpectStatus = []int{200, 503} }), true, ""},
		{"two statuses wanted", failing, check(func(c *Check) { c.ExpectStatus = []int{200, 204} }), false, "status 503 (want 200, 204)"},
		{"wrong body", wrongBody, check(func(c *Check) { c.ExpectBody = "UP" }), false, `body lacks "UP"`},
		{"body beyond 64 KiB", bigBody, check(func(c *Check) { c.ExpectBody = "UP" }), false, `body lacks "UP"`},
		{"redirect not followed", redirect, check(nil), false, "status 302 (want 200)"},
		{"slow", slow, check(nil), false, "timeout after 300ms"},
		{"refused", healthy, check(func(c *Check) { c.Port = closedPort(t, "tcp") }), false, "connect: connection refused"},
		{"https to plain http", healthy, check(func(c *Check) { c.Type = "https" }), false, "tls: first record does not look like a TLS handshake"},
	})

	t.Run("host header and fresh connections", func(t *testing.T) {
		f.mode.Store(healthy)
		before := f.conns.Load()
		c := check(func(c *Check) { c.Host = "www.example.test" })
		for range 3 {
			if r := Probe(t.Context(), Target{Addr: loopback, Check: c}); !r.OK {
				t.Fatal(r.Reason)
			}
		}
		if got := f.host.Load(); got != "www.example.test" {
			t.Errorf("Host header %q, want www.example.test", got)
		}
		if n := f.conns.Load() - before; n != 3 {
			t.Errorf("3 probes opened %d connections, want 3", n)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		f.mode.Store(slow)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		r := Probe(ctx, Target{Addr: loopback, Check: check(nil)})
		if r.OK || r.Reason != "canceled" || r.Duration > 250*time.Millisecond {
			t.Fatalf("got %+v, want a quick \"canceled\"", r)
		}
	})
}

// rawServer answers every connection on a loopback port with reply.
func rawServer(t *testing.T, reply func(net.Conn)) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096)) // the request
				reply(c)
			}()
		}
	}()
	return portOf(t, l.Addr())
}

func TestProbeHTTPBrokenServers(t *testing.T) {
	check := func(reply func(net.Conn)) Check {
		return Check{Type: "http", Port: rawServer(t, reply), Timeout: 300 * time.Millisecond, Interval: time.Second}
	}
	runProbeCases(t, nil, []probeCase{
		{"closes without answer", 0, check(func(net.Conn) {}), false, "read response: connection closed early"},
		{"not http", 0, check(func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") }),
			false, `read response: malformed HTTP response "SSH-2.0-OpenSSH_9.6"`},
		{"endless header", 0, check(func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 256<<10))
		}), false, "read response: response too large"},
		{"silent", 0, check(func(net.Conn) { time.Sleep(time.Second) }), false, "timeout after 300ms"},
	})
}

func TestProbeHTTPS(t *testing.T) {
	f, ts := startFlip(t, true)
	port := portOf(t, ts.Listener.Addr())
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(mod func(*Check)) Check {
		c := Check{Type: "https", Port: port, Timeout: 500 * time.Millisecond, Interval: time.Second, ExpectBody: "UP"}
		mod(&c)
		return c
	}
	// httptest's certificate names example.com, 127.0.0.1 and ::1.
	runProbeCases(t, f, []probeCase{
		{"no verification", healthy, check(func(c *Check) {}), true, ""},
		{"verified by ca file", healthy, check(func(c *Check) { c.TLSVerify, c.CAFile = true, ca }), true, ""},
		{"verified name", healthy, check(func(c *Check) { c.TLSVerify, c.CAFile, c.Host = true, ca, "example.com" }), true, ""},
		{"wrong name", healthy, check(func(c *Check) { c.TLSVerify, c.CAFile, c.Host = true, ca, "wrong.test" }),
			false, "tls: failed to verify certificate: x509: certificate is valid for"},
		{"system roots", healthy, check(func(c *Check) { c.TLSVerify = true }),
			false, "tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"missing ca file", healthy, check(func(c *Check) { c.TLSVerify, c.CAFile = true, ca+".missing" }), false, "ca file: "},
		{"failing status", failing, check(func(c *Check) { c.TLSVerify, c.CAFile = true, ca }), false, "status 503 (want 200)"},
		{"wrong body", wrongBody, check(func(c *Check) {}), false, `body lacks "UP"`},
		{"slow", slow, check(func(c *Check) {}), false, "timeout after 500ms"},
		{"refused", healthy, check(func(c *Check) { c.Port = closedPort(t, "tcp") }), false, "connect: connection refused"},
	})
}

func TestProbeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	check := func(port uint16) Check {
		return Check{Type: "tcp", Port: port, Timeout: 300 * time.Millisecond, Interval: time.Second}
	}
	runProbeCases(t, nil, []probeCase{
		{"listening", 0, check(portOf(t, l.Addr())), true, ""},
		{"refused", 0, check(closedPort(t, "tcp")), false, "connect: connection refused"},
	})
}

func TestProbeDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := dns.NewServeMux()
	mux.HandleFunc("ok.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		w.WriteMsg(m)
	})
	mux.HandleFunc("fail.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
	})
	mux.HandleFunc("silent.test.", func(dns.ResponseWriter, *dns.Msg) {})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })

	port := portOf(t, pc.LocalAddr())
	check := func(name string, mod func(*Check)) Check {
		c := Check{Type: "dns", Port: port, DNSName: name, Timeout: 300 * time.Millisecond, Interval: time.Second}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runProbeCases(t, nil, []probeCase{
		{"noerror", 0, check("ok.test", nil), true, ""},
		{"servfail", 0, check("fail.test.", nil), false, "rcode SERVFAIL (want NOERROR)"},
		{"servfail expected", 0, check("fail.test.", func(c *Check) { c.ExpectRcode = dns.RcodeServerFailure }), true, ""},
		{"noerror not expected", 0, check("ok.test.", func(c *Check) { c.ExpectRcode = dns.RcodeNameError }), false, "rcode NOERROR (want NXDOMAIN)"},
		{"no answer", 0, check("silent.test.", nil), false, "timeout after 300ms"},
		{"closed port", 0, check("ok.test.", func(c *Check) { c.Port = closedPort(t, "udp") }), false, "read: connection refused"},
	})
}

func TestReasonClipped(t *testing.T) {
	long := failure(strings.Repeat("é", 300))
	got := reason(t.Context(), long, time.Second)
	if len(got) > maxReason+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(got, "é") {
		t.Errorf("clipped reason is %d bytes: %q", len(got), got)
	}
}

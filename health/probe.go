package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Target is one endpoint to probe.
type Target struct {
	// Key identifies the endpoint to the caller, for example
	// "www.example.com./192.0.2.1". The scheduler keys its state on it.
	Key   string
	Addr  netip.Addr
	Check Check
}

// Result is the outcome of one probe.
type Result struct {
	OK bool
	// Reason says why the probe failed, briefly: "connect: connection
	// refused", "status 503 (want 200)". It is "" when OK.
	Reason   string
	Duration time.Duration
	// At is when the probe finished.
	At time.Time
	// Agent is what an agent-check agent said (its line, trimmed), for
	// callers that map its weights; "" for other probes.
	Agent string
}

// Reasons are stored and shown as is; a misbehaving server must not be
// able to make them long.
const maxReason = 200

// maxResponse bounds what an HTTP probe reads: headers, the part of the
// body it looks at, and chunk framing.
const maxResponse = 64<<10 + maxBody + 16<<10

var errResponseTooLarge = errors.New("response too large")

const userAgent = "meridian-health/1"

// Probe probes t once and judges the answer by t.Check. It always connects
// to t.Addr on the check's port, on a fresh connection that it closes
// afterwards, and gives up after the check's timeout or when ctx ends.
func Probe(ctx context.Context, t Target) Result {
	c := t.Check.WithDefaults()
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()

	var err error
	var agentLine string
	switch c.Type {
	case TypeHTTP, TypeHTTPS:
		err = probeHTTP(pctx, t.Addr, c)
	case TypeTCP:
		err = probeTCP(pctx, t.Addr, c)
	case TypeDNS:
		err = probeDNS(pctx, t.Addr, c)
	case TypeAgent:
		agentLine, err = probeAgent(pctx, t.Addr, c)
	default:
		err = fmt.Errorf("unknown check type %q", c.Type)
	}
	end := time.Now()
	r := Result{OK: err == nil, Duration: end.Sub(start), At: end, Agent: strings.TrimSpace(agentLine)}
	if err != nil {
		r.Reason = reason(ctx, err, c.Timeout)
	}
	return r
}

// failure is a verdict on an answer that arrived; its text is the reason
// as is.
type failure string

func (f failure) Error() string { return string(f) }

// stepError names the step of a probe that failed at the network level.
type stepError struct {
	step string // "connect", "tls", "write request", "read response", ...
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(name string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{name, err}
}

// reason turns a probe error into a short reason. ctx is the caller's
// context: a probe cut short by it is "canceled", not a timeout.
func reason(ctx context.Context, err error, timeout time.Duration) string {
	var f failure
	if errors.As(err, &f) {
		return clip(string(f))
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return "canceled"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return "timeout after " + timeout.String()
	}
	var se *stepError
	if !errors.As(err, &se) {
		return clip(err.Error())
	}
	if se.step == "tls" {
		// crypto/tls messages mostly start with "tls: " already.
		msg := se.err.Error()
		if !strings.HasPrefix(msg, "tls: ") {
			msg = "tls: " + msg
		}
		return clip(msg)
	}
	return clip(se.step + ": " + cause(se.err))
}

// cause strips the addresses and system call names that net errors carry,
// which the caller knows already: "dial tcp 192.0.2.1:80: connect:
// connection refused" becomes "connection refused".
func cause(err error) string {
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return sys.Err.Error()
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed early"
	}
	return err.Error()
}

func clip(s string) string {
	if len(s) > maxReason {
		s = strings.ToValidUTF8(s[:maxReason], "") + "..."
	}
	return s
}

// netStep names a failure of a connection made with DialContext: the dial
// itself, or a later read or write.
func netStep(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		switch op.Op {
		case "dial":
			return "connect"
		case "read", "write":
			return op.Op
		}
	}
	return "exchange"
}

func probeTCP(ctx context.Context, addr netip.Addr, c Check) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, c.Port).String())
	if err != nil {
		return step("connect", err)
	}
	return conn.Close()
}

// probeAgent speaks HAProxy's agent-check protocol: connect, read one
// line of words. up and ready pass; down, fail, stopped, drain, maint and
// a lone 0% fail with the agent's words as the reason, since for DNS all of
// them mean "do not send clients here". Weights (75%) and maxconn:N pass.
func probeAgent(ctx context.Context, addr netip.Addr, c Check) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, c.Port).String())
	if err != nil {
		return "", step("connect", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(conn, 512), 512).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", step("read", err)
	}
	return line, judgeAgentLine(line)
}

// judgeAgentLine applies the agent-check vocabulary to one line.
func judgeAgentLine(line string) error {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i] // a comment for humans
	}
	words := strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n' })
	if len(words) == 0 {
		return failure("agent said nothing")
	}
	// A weight or maxconn alone means up, as in HAProxy.
	for _, w := range words {
		switch {
		case w == "up" || w == "ready":
		case w == "down" || w == "fail" || w == "stopped" || w == "drain" || w == "maint":
			return failure("agent says " + strings.Join(words, " "))
		case strings.HasSuffix(w, "%"):
			n, err := strconv.Atoi(strings.TrimSuffix(w, "%"))
			if err != nil || n < 0 {
				return failure(fmt.Sprintf("agent sent a bad weight %q", w))
			}
			if n == 0 && len(words) == 1 {
				return failure("agent says 0% (drain)")
			}
		case strings.HasPrefix(w, "maxconn:"):
			if _, err := strconv.Atoi(strings.TrimPrefix(w, "maxconn:")); err != nil {
				return failure(fmt.Sprintf("agent sent a bad %q", w))
			}
		default:
			return failure(fmt.Sprintf("agent sent an unknown word %q", w))
		}
	}
	return nil
}

func probeDNS(ctx context.Context, addr netip.Addr, c Check) error {
	m := new(dns.Msg)
	m.SetQuestion(c.DNSName, c.DNSType)
	m.RecursionDesired = false
	// Timeout overrides the client's 2 s read and write defaults. miekg
	// honours ctx's deadline but not its cancellation, so a canceled DNS
	// probe still waits out its timeout.
	cl := dns.Client{Net: "udp", Timeout: c.Timeout}
	in, _, err := cl.ExchangeContext(ctx, m, netip.AddrPortFrom(addr, c.Port).String())
	if err != nil {
		return step(netStep(err), err)
	}
	if in.Rcode != c.ExpectRcode {
		return failure(fmt.Sprintf("rcode %s (want %s)", rcodeString(in.Rcode), rcodeString(c.ExpectRcode)))
	}
	return nil
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}

// probeHTTP speaks HTTP/1.1 itself over one connection rather than using
// http.Client: that way nothing is pooled or reused, redirects are plain
// statuses, and every byte read is bounded.
func probeHTTP(ctx context.Context, addr netip.Addr, c Check) error {
	hostport := netip.AddrPortFrom(addr, c.Port).String()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return step("connect", err)
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	// Cancellation (target removed, shutdown) interrupts blocked I/O.
	defer context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })()

	conn := raw

	scheme := "http"
	if c.Type == TypeHTTPS {
		scheme = "https"
		cfg, err := tlsConfig(c, addr)
		if err != nil {
			return failure(err.Error())
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return step("tls", err)
		}
		conn = tc
	}

	req, err := http.NewRequestWithContext(ctx, c.Method, scheme+"://"+hostport+c.Path, nil)
	if err != nil {
		return failure("bad request: " + err.Error())
	}
	if c.Host != "" {
		req.Host = c.Host
	}
	req.Close = true
	req.Header.Set("User-Agent", userAgent)
	if err := req.Write(conn); err != nil {
		return step("write request", err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(&capReader{r: conn, n: maxResponse}), req)
	if err != nil {
		return step("read response", err)
	}
	defer resp.Body.Close()
	if !slices.Contains(c.ExpectStatus, resp.StatusCode) {
		return failure(fmt.Sprintf("status %d (want %s)", resp.StatusCode, joinInts(c.ExpectStatus)))
	}
	if c.ExpectBody == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if bytes.Contains(body, []byte(c.ExpectBody)) {
		return nil
	}
	if err != nil && !errors.Is(err, errResponseTooLarge) {
		return step("read body", err)
	}
	return failure(fmt.Sprintf("body lacks %q", c.ExpectBody))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// capReader fails reads beyond n bytes, so that a server cannot make a
// probe read without end within its timeout.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// tlsConfig builds a fresh config per probe: no session cache, so every
// probe makes a full handshake.
func tlsConfig(c Check, addr netip.Addr) (*tls.Config, error) {
	name := c.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	if name == "" {
		// Verifies the certificate against the address (an IP SAN);
		// crypto/tls sends no SNI for an address.
		name = addr.String()
	}
	cfg := &tls.Config{ServerName: name, InsecureSkipVerify: !c.TLSVerify}
	if c.TLSVerify && c.CAFile != "" {
		pool, err := cas.load(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// caCache keeps parsed CA files so that thousands of probes a second do
// not parse PEM; a file is read again when its size or time changes, so a
// rotated CA is picked up without a restart.
type caCache struct {
	mu sync.Mutex
	m  map[string]caEntry
}

type caEntry struct {
	mod  time.Time
	size int64
	pool *x509.CertPool
}

var cas = caCache{m: make(map[string]caEntry)}

func (cc *caCache) load(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	cc.mu.Lock()
	e, ok := cc.m[path]
	cc.mu.Unlock()
	if ok && e.mod.Equal(fi.ModTime()) && e.size == fi.Size() {
		return e.pool, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s: no PEM certificates", path)
	}
	cc.mu.Lock()
	cc.m[path] = caEntry{mod: fi.ModTime(), size: fi.Size(), pool: pool}
	cc.mu.Unlock()
	return pool, nil
}

package pgtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards loopback TCP connections to a database server and can
// cut them off, to simulate an outage of any server, including one that
// cannot be stopped.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	ctx    context.Context // cancelled on cleanup, aborting dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent atomic.Int64 // bytes from clients to the server

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewProxy starts a proxy to targetHostPort on a free loopback port. It
// is closed, with all its connections, when t ends.
func NewProxy(t testing.TB, targetHostPort string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{t: t, target: targetHostPort, ln: ln, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Sent returns how many bytes clients have sent to the server so far.
// Tests use it to show that something sent nothing at all.
func (p *Proxy) Sent() int64 { return p.sent.Load() }

// Addr returns the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns dbURL with its host and port replaced by the proxy's.
func (p *Proxy) URL(dbURL string) string {
	p.t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		p.t.Fatalf("pgtest: proxy URL: %v", err)
	}
	u.Host = p.Addr()
	q := u.Query()
	// These would override the host in the URL.
	q.Del("host")
	q.Del("hostaddr")
	q.Del("port")
	u.RawQuery = q.Encode()
	return u.String()
}

// Cut closes every connection through the proxy and makes it close new
// ones as soon as they are accepted, until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.closeConnsLocked()
}

// Restore lets new connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Such as running out of file descriptors: back off a little.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward copies between client and a new connection to the target until
// either side closes or Cut closes both.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	d := net.Dialer{Timeout: 5 * time.Second}
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		return // the client sees its connection closed, as in an outage
	}
	if !p.track(server) { // cut while dialing
		server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(countingWriter{server, &p.sent}, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
	// Closing both ends stops the other copy.
	client.Close()
	server.Close()
	<-done
}

// track registers c so that Cut can close it, unless the proxy is cut.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// close stops the proxy and waits, bounded, for its goroutines.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.mu.Unlock()
	p.cancel()
	p.ln.Close()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("pgtest: proxy to %s: connections still open 10s after closing", p.target)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// Server is an authoritative DNS server answering from an immutable
// zones.Snapshot. Publish may be called at any time from any goroutine;
// queries in flight finish on the snapshot they started with.
type Server struct {
	cfg    Config
	logger *slog.Logger
	st     atomic.Pointer[state]
	mu     sync.Mutex // serialises Publish and SetGeo; the query path never takes it

	udp []*net.UDPConn // per address, UDPWorkers sockets sharing the port (SO_REUSEPORT)
	tcp []*net.TCPListener

	panics     atomic.Uint64
	tcpOpen    atomic.Int64
	tcpRefused [2]atomic.Uint64 // by refusal: refusedMax, refusedPerClient
	tcpClients tcpClients
	stats      *statsTable               // under mu
	tap        Tap                       // set before Serve; nil: off
	xfr        Transferer                // set before Serve; nil: transfers refused
	notifier   Notifier                  // set before Serve; nil: NOTIFY is NOTIMP
	updater    Updater                   // set before Serve; nil: UPDATE is NOTIMP
	rrl        *limiter                  // nil: off
	cookies    atomic.Pointer[cookieJar] // nil: off
	cookieSeen [numCookieStates]atomic.Uint64
	// sigs keeps the signatures made on the query path; signatures and
	// signFailures count them.
	sigs         *signing.Cache
	clock        wallClock // the time of the cache's entries
	signatures   atomic.Uint64
	signFailures atomic.Uint64
}

// Tap receives each packet answered and its reply (nil when none was
// sent), with the client's and the server's addresses: dnstap logging.
// It runs on the query path, so it must not block, and it must copy what
// it keeps.
type Tap func(query, reply []byte, client, server netip.AddrPort, tcp bool)

// SetTap makes t receive every query from now on; call it before Serve.
// Without a tap the query path pays one nil check.
func (s *Server) SetTap(t Tap) { s.tap = t }

// startProcs is GOMAXPROCS as the process started, before Serve raised
// it (spareP): the default number of UDP workers, so that every server
// made in one process gets the same default instead of one more each.
var startProcs = runtime.GOMAXPROCS(0)

// New returns a Server for cfg. It does not open sockets; see Listen.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UDPWorkers == 0 {
		cfg.UDPWorkers = startProcs
	}
	if cfg.SignatureCache == 0 {
		cfg.SignatureCache = DefaultSignatureCache
	}
	s := &Server{cfg: cfg, logger: logger, stats: newStatsTable(), rrl: newLimiter(cfg.RRL), sigs: signing.NewCache(cfg.SignatureCache), clock: newWallClock()}
	s.cookies.Store(newCookieJar(cfg.Cookies))
	return s, nil
}

// Publish makes snap the snapshot every following query is answered from.
// It refuses a snapshot older than the one served, so that versions only
// move forward, and reports whether snap was taken.
func (s *Server) Publish(snap *zones.Snapshot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.Load()
	if old != nil && old.snap != nil && snap.Version < old.snap.Version {
		s.logger.Warn("Refusing older snapshot", "serving", old.snap.Version, "offered", snap.Version)
		return false
	}
	var db *geo.DB
	if old != nil {
		db = old.db
	}
	st := buildState(snap, db, old)
	st.published = time.Now()
	s.stats.attach(st, old)
	s.st.Store(st)
	return true
}

// SetGeo makes db the GeoIP database that locates clients; nil turns
// location off. Orderings for the served pools are computed before the
// switch, off the query path.
func (s *Server) SetGeo(db *geo.DB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.Load()
	var snap *zones.Snapshot
	var published time.Time
	if old != nil {
		snap, published = old.snap, old.published
	}
	st := buildState(snap, db, old)
	st.published = published
	s.stats.attach(st, old)
	s.st.Store(st)
}

// Snapshot returns the snapshot currently served, or nil before the first
// Publish.
func (s *Server) Snapshot() *zones.Snapshot {
	if st := s.st.Load(); st != nil {
		return st.snap
	}
	return nil
}

// Panics returns how many queries hit a bug and were answered SERVFAIL.
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Listen binds the UDP and TCP sockets of every configured address. When
// an address has port 0, UDP and TCP share the port the kernel picks.
func (s *Server) Listen() error {
	for _, addr := range s.cfg.Listen {
		if err := s.listen(addr); err != nil {
			s.close()
			return err
		}
	}
	return nil
}

func (s *Server) listen(addr string) error {
	// With port 0 the kernel picks a port free for UDP, which another
	// process may hold for TCP: then pick again, a few times.
	for try := 0; ; try++ {
		udp, tcp := len(s.udp), len(s.tcp)
		err := s.listenOnce(addr)
		if err == nil || try == 10 || !errors.Is(err, syscall.EADDRINUSE) || !portZero(addr) {
			return err
		}
		for _, c := range s.udp[udp:] {
			c.Close()
		}
		for _, l := range s.tcp[tcp:] {
			l.Close()
		}
		s.udp, s.tcp = s.udp[:udp], s.tcp[:tcp]
	}
}

func portZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

func (s *Server) listenOnce(addr string) error {
	lc := net.ListenConfig{Control: socketControl}
	ctx := context.Background()
	first, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("dnsserver: listen udp %s: %w", addr, err)
	}
	s.udp = append(s.udp, first.(*net.UDPConn))
	bound := first.LocalAddr().String()
	for i := 1; i < s.cfg.UDPWorkers; i++ {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			return fmt.Errorf("dnsserver: listen udp %s: %w", bound, err)
		}
		s.udp = append(s.udp, pc.(*net.UDPConn))
	}
	ln, err := net.Listen("tcp", bound)
	if err != nil {
		return fmt.Errorf("dnsserver: listen tcp %s: %w", bound, err)
	}
	s.tcp = append(s.tcp, ln.(*net.TCPListener))
	return nil
}

// Addrs returns the bound UDP addresses, one per configured address (the
// TCP listeners share the ports).
func (s *Server) Addrs() []net.Addr {
	var out []net.Addr
	for _, l := range s.tcp {
		a := l.Addr().(*net.TCPAddr)
		out = append(out, &net.UDPAddr{IP: a.IP, Port: a.Port, Zone: a.Zone})
	}
	return out
}

// Serve answers queries until ctx is cancelled, then closes the sockets,
// lets the queries in flight finish and returns. Listen must have been
// called.
func (s *Server) Serve(ctx context.Context) error {
	if len(s.udp) == 0 {
		return errors.New("dnsserver: Serve before Listen")
	}
	loops := make([]*udpLoop, 0, len(s.udp))
	defer func() {
		for _, l := range loops {
			l.bc.release()
		}
	}()
	for _, c := range s.udp {
		l, err := newUDPLoop(c)
		if err != nil {
			s.close()
			return fmt.Errorf("dnsserver: UDP socket %s: %w", c.LocalAddr(), err)
		}
		loops = append(loops, l)
	}
	spareP(len(loops), s.logger)
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Go(func() { s.serveUDP(l) })
	}
	tcpCtx, stopTCP := context.WithCancel(context.Background())
	defer stopTCP()
	for _, l := range s.tcp {
		wg.Go(func() { s.serveTCP(tcpCtx, l) })
	}
	<-ctx.Done()
	for _, l := range loops {
		l.bc.stop()
	}
	s.close()
	stopTCP()
	wg.Wait()
	return nil
}

func (s *Server) close() {
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
}

// handle answers one packet from client, read at start (nanotime), and
// counts it.
func (s *Server) handle(q *query, out, pkt []byte, tcp bool, client netip.AddrPort, start int64) []byte {
	q.zs, q.qtype, q.rcode, q.do, q.ecs.present, q.start = nil, 0, 0, false, false, start
	q.cookies = s.cookies.Load()
	src := client.Addr()
	reply := s.safeRespond(q, out, pkt, tcp, src)
	s.record(q, reply, tcp, src, start)
	if s.tap != nil {
		s.tap(pkt, reply, client, q.local, tcp)
	}
	return reply
}

// safeRespond is respond, except that a bug in the answering code does not
// take the server down: it becomes SERVFAIL and a count (the packet is
// then fuzzed into a test).
func (s *Server) safeRespond(q *query, out, pkt []byte, tcp bool, src netip.Addr) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			reply = nil
			if q.parseHeader(pkt) {
				reply = s.headerReply(q, out, dns.RcodeServerFailure)
			}
		}
	}()
	return s.respond(q, out, pkt, tcp, src)
}

package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg/sendmmsg call moves. Under
// load the batches fill and the syscall cost per query falls; at low load
// a call returns with whatever is waiting.
const batchSize = 64

// maxQuerySize bounds the UDP queries we read; a larger datagram is
// truncated by the kernel and then fails to parse.
const maxQuerySize = 4096

// socketControl sets a socket's options before it binds. SO_REUSEPORT
// lets several sockets, one per worker, share a UDP port; the kernel
// spreads datagrams across them so workers never contend for one
// socket's lock. A UDP socket sends its IPv4 replies with DF
// (dontFragment). A UDP socket on a wildcard address also asks for each
// datagram's destination (enablePktinfo), so that its reply can leave
// from it; an error here fails Listen, not a serving goroutine later.
func socketControl(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	if !strings.HasPrefix(network, "udp") {
		return nil
	}
	if err := dontFragment(c); err != nil {
		return err
	}
	if wildcard(address) {
		return enablePktinfo(c, network == "udp6")
	}
	return nil
}

// wildcard reports whether address ("host:port") binds every address.
func wildcard(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return host == "" || err == nil && ip.IsUnspecified()
}

// batchConn moves batches of datagrams on one UDP socket: recvmmsg and
// sendmmsg where the platform has them (udp_linux.go). read and write are
// called by the socket's one loop; stop by any goroutine.
type batchConn interface {
	// read fills the buffers of b, the batch the conn was made for, from
	// index 0 and returns how many datagrams it read, with their sizes and
	// sources in b. It waits for one; net.ErrClosed after stop.
	read(b *batch) (int, error)
	// write sends b.replies[lo:hi], reply j to the source of datagram
	// b.to[j], and returns how many the kernel took.
	write(b *batch, lo, hi int) (int, error)
	// stop makes read and write return net.ErrClosed, waking a read that
	// waits.
	stop()
	// release closes the socket once its loop has returned.
	release()
}

// batch holds the buffers of one UDP loop; nothing in it is shared, so
// the loop takes no locks and allocates nothing in steady state.
type batch struct {
	in      [][]byte // datagrams read
	size    []int    // their sizes
	src     []netip.AddrPort
	dst     []netip.Addr // the address each was sent to, when the socket is on a wildcard address
	out     [][]byte     // reply buffers, one per datagram read
	replies [][]byte     // replies to send
	to      []int        // index of the datagram each reply answers
}

func newBatch() *batch {
	b := &batch{
		in:      make([][]byte, batchSize),
		size:    make([]int, batchSize),
		src:     make([]netip.AddrPort, batchSize),
		dst:     make([]netip.Addr, batchSize),
		out:     make([][]byte, batchSize),
		replies: make([][]byte, batchSize),
		to:      make([]int, batchSize),
	}
	for i := range b.in {
		b.in[i] = make([]byte, maxQuerySize)
		b.out[i] = make([]byte, 0, advertisedUDPSize)
	}
	return b
}

// udpLoop is one UDP socket's loop: its conn, its buffers and the address
// it is bound to.
type udpLoop struct {
	bc    batchConn
	b     *batch
	local netip.AddrPort
}

// newUDPLoop takes over c for the fast path; on Linux the conn is closed
// and the loop owns the socket (udp_linux.go).
func newUDPLoop(c *net.UDPConn) (*udpLoop, error) {
	l := &udpLoop{b: newBatch()}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
		l.local = la.AddrPort()
	}
	bc, err := newBatchConn(c, l.b)
	if err != nil {
		return nil, err
	}
	l.bc = bc
	return l, nil
}

// serveUDP is the UDP fast path: read a batch, answer each datagram into
// its own buffer, write the batch back. It returns when the loop stops.
func (s *Server) serveUDP(l *udpLoop) {
	b, bc, local := l.b, l.bc, l.local
	var q query
	q.rng = uint64(time.Now().UnixNano())
	q.local = local
	q.geo = new(geoCache)
	for {
		n, err := bc.read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors on a previous send
		}
		start := nanotime()
		k := 0
		for i := 0; i < n; i++ {
			if b.dst[i].IsValid() {
				q.local = netip.AddrPortFrom(b.dst[i], local.Port())
			}
			reply := s.handle(&q, b.out[i][:0], b.in[i][:b.size[i]], false, b.src[i], start)
			if reply == nil {
				continue
			}
			b.replies[k], b.to[k] = reply, i
			k++
		}
		for sent := 0; sent < k; {
			m, err := bc.write(b, sent, k)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				m = 1 // drop the datagram the kernel refused and go on
			}
			sent += m
		}
	}
}

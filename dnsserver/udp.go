package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg/sendmmsg call moves. Under
// load the batches fill and the syscall cost per query falls; at low load
// a call returns with whatever is waiting.
const batchSize = 64

// maxQuerySize bounds the UDP queries we read; a larger datagram is
// truncated by the kernel and then fails to parse.
const maxQuerySize = 4096

// reusePort lets several sockets, one per worker, share a UDP port; the
// kernel spreads datagrams across them so workers never contend for one
// socket's lock.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// udpWorker owns the buffers of one UDP socket's loop; nothing in it is
// shared, so the loop takes no locks and, in steady state, allocates only
// what the batch read itself allocates.
type udpWorker struct {
	q    query
	rms  []ipv4.Message
	wms  []ipv4.Message
	outs [][]byte
}

func newUDPWorker() *udpWorker {
	w := &udpWorker{
		rms:  make([]ipv4.Message, batchSize),
		wms:  make([]ipv4.Message, batchSize),
		outs: make([][]byte, batchSize),
	}
	for i := range w.rms {
		w.rms[i].Buffers = [][]byte{make([]byte, maxQuerySize)}
		w.wms[i].Buffers = [][]byte{nil}
		w.outs[i] = make([]byte, 0, advertisedUDPSize)
	}
	return w
}

// serveUDP is the UDP fast path: read a batch, answer each datagram into
// its own buffer, write the batch back. It returns when the socket closes.
func (s *Server) serveUDP(c *net.UDPConn) {
	// ipv4.PacketConn's batch calls use recvmmsg/sendmmsg for either
	// address family: the messages carry raw socket addresses.
	pc := ipv4.NewPacketConn(c)
	w := newUDPWorker()
	w.q.rng = uint64(time.Now().UnixNano())
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
		w.q.local = la.AddrPort()
	}
	for {
		n, err := pc.ReadBatch(w.rms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors on a previous send
		}
		start := nanotime()
		k := 0
		for i := 0; i < n; i++ {
			m := &w.rms[i]
			var src netip.AddrPort
			if ua, ok := m.Addr.(*net.UDPAddr); ok {
				ap := ua.AddrPort()
				src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			}
			reply := s.handle(&w.q, w.outs[i][:0], m.Buffers[0][:m.N], false, src, start)
			if reply == nil {
				continue
			}
			w.wms[k].Buffers[0] = reply
			w.wms[k].Addr = m.Addr
			k++
		}
		for sent := 0; sent < k; {
			m, err := pc.WriteBatch(w.wms[sent:k], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				sent++ // drop the datagram the kernel refused and go on
				continue
			}
			sent += m
		}
	}
}

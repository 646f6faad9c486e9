package dnsserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Why a TCP connection was closed as soon as it was accepted.
const (
	refusedMax       = iota // TCPMaxConns reached
	refusedPerClient        // TCPMaxConnsPerClient reached for its address
)

// tcpClients counts the open TCP connections of each client address, for
// TCPMaxConnsPerClient. Accepting is off the UDP hot path and rare next to
// queries, so a mutex is fine here.
type tcpClients struct {
	mu   sync.Mutex
	open map[netip.Addr]int
}

// add counts a connection from a unless a already has max; max 0 admits
// everyone without counting.
func (c *tcpClients) add(a netip.Addr, max int) bool {
	if max == 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[a] >= max {
		return false
	}
	if c.open == nil {
		c.open = make(map[netip.Addr]int)
	}
	c.open[a]++
	return true
}

func (c *tcpClients) done(a netip.Addr, max int) {
	if max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[a]--; c.open[a] <= 0 {
		delete(c.open, a)
	}
}

// serveTCP accepts connections until the listener closes or ctx ends.
// Connections beyond TCPMaxConns, or beyond TCPMaxConnsPerClient from one
// address, are closed at once (RFC 7766 section 6.2.2 lets servers limit
// them), and counted.
func (s *Server) serveTCP(ctx context.Context, l *net.TCPListener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		client := addrPort(c.RemoteAddr())
		perClient := s.cfg.TCPMaxConnsPerClient
		refused := -1
		if s.tcpOpen.Add(1) > int64(s.cfg.TCPMaxConns) {
			refused = refusedMax
		} else if !s.tcpClients.add(client.Addr(), perClient) {
			refused = refusedPerClient
		}
		if refused >= 0 {
			s.tcpOpen.Add(-1)
			s.tcpRefused[refused].Add(1)
			c.Close()
			continue
		}
		wg.Go(func() {
			defer s.tcpOpen.Add(-1)
			defer s.tcpClients.done(client.Addr(), perClient)
			s.serveConn(ctx, c, client)
		})
	}
}

// serveConn answers the queries of one connection in order. Clients may
// pipeline: send several queries without waiting (RFC 7766 section 6.2.1.1).
// The connection closes after TCPIdleTimeout without a query, after
// TCPMaxQueries queries, on a malformed frame, or at shutdown.
func (s *Server) serveConn(ctx context.Context, c *net.TCPConn, src netip.AddrPort) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()

	r := bufio.NewReaderSize(c, 4096)
	var q query
	q.rng = uint64(time.Now().UnixNano())
	q.local = addrPort(c.LocalAddr())
	in := make([]byte, maxTCPSize)
	out := make([]byte, 2, 2+maxTCPSize)
	for n := 0; s.cfg.TCPMaxQueries == 0 || n < s.cfg.TCPMaxQueries; n++ {
		if ctx.Err() != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		var lenBuf [2]byte
		if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(r, in[:l]); err != nil {
			return
		}
		if s.xfr != nil && isTransfer(in[:l]) {
			if s.serveTransfer(ctx, c, in[:l], src) != nil {
				return
			}
			continue
		}
		reply := s.handle(&q, out[2:2], in[:l], true, src, nanotime())
		if reply == nil {
			return // not a query: nothing sensible to say on this stream
		}
		frame := out[:2+len(reply)]
		binary.BigEndian.PutUint16(frame, uint16(len(reply)))
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// addrPort is a TCP connection's address and port, IPv4 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// serveTransfer hands a transfer query to the Transferer, writing each
// message it makes as a frame with the idle timeout as the deadline of
// each write, so that a client that stops reading is let go. An error
// ends the connection.
func (s *Server) serveTransfer(ctx context.Context, c *net.TCPConn, pkt []byte, src netip.AddrPort) error {
	buf := make([]byte, 0, 2+maxTCPSize)
	return s.xfr.ServeTCP(ctx, pkt, src, func(msg []byte) error {
		if len(msg) > maxTCPSize {
			return errors.New("dnsserver: transfer message too large")
		}
		buf = binary.BigEndian.AppendUint16(buf[:0], uint16(len(msg)))
		buf = append(buf, msg...)
		c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout))
		_, err := c.Write(buf)
		return err
	})
}

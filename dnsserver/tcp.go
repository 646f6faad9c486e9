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

// serveTCP accepts connections until the listener closes or ctx ends.
// Connections beyond TCPMaxConns are closed at once (RFC 7766 section 6.2.2
// lets servers limit them).
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
		if s.tcpOpen.Add(1) > int64(s.cfg.TCPMaxConns) {
			s.tcpOpen.Add(-1)
			c.Close()
			continue
		}
		wg.Go(func() {
			defer s.tcpOpen.Add(-1)
			s.serveConn(ctx, c)
		})
	}
}

// serveConn answers the queries of one connection in order. Clients may
// pipeline: send several queries without waiting (RFC 7766 section 6.2.1.1).
// The connection closes after TCPIdleTimeout without a query, after
// TCPMaxQueries queries, on a malformed frame, or at shutdown.
func (s *Server) serveConn(ctx context.Context, c *net.TCPConn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()

	r := bufio.NewReaderSize(c, 4096)
	var q query
	q.rng = uint64(time.Now().UnixNano())
	var src netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		q.local = la.AddrPort()
	}
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

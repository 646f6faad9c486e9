//go:build !linux

package dnsserver

import (
	"log/slog"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
)

// xnetConn moves batches with golang.org/x/net, which uses
// recvmmsg/sendmmsg where it can and one datagram per call elsewhere.
type xnetConn struct {
	c   *net.UDPConn
	pc  *ipv4.PacketConn
	rms []ipv4.Message
	wms []ipv4.Message
}

func newBatchConn(c *net.UDPConn, b *batch) (batchConn, error) {
	x := &xnetConn{c: c, pc: ipv4.NewPacketConn(c), rms: make([]ipv4.Message, batchSize), wms: make([]ipv4.Message, batchSize)}
	for i := range x.wms {
		x.rms[i].Buffers = b.in[i : i+1]
		x.wms[i].Buffers = [][]byte{nil}
	}
	return x, nil
}

// dontFragment does nothing here: replies are sent as the platform's
// default has it.
func dontFragment(syscall.RawConn) error { return nil }

// enablePktinfo does nothing here: replies leave from the address the
// kernel routes by.
func enablePktinfo(syscall.RawConn, bool) error { return nil }

func (x *xnetConn) read(b *batch) (int, error) {
	n, err := x.pc.ReadBatch(x.rms, 0)
	for i := 0; i < n; i++ {
		b.size[i] = x.rms[i].N
		b.src[i] = netip.AddrPort{}
		if ua, ok := x.rms[i].Addr.(*net.UDPAddr); ok {
			ap := ua.AddrPort()
			b.src[i] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	return n, err
}

func (x *xnetConn) write(b *batch, lo, hi int) (int, error) {
	for j := lo; j < hi; j++ {
		x.wms[j-lo].Buffers[0] = b.replies[j]
		x.wms[j-lo].Addr = x.rms[b.to[j]].Addr
	}
	return x.pc.WriteBatch(x.wms[:hi-lo], 0)
}

// stop closes the conn: a read waiting in the netpoller returns
// net.ErrClosed.
func (x *xnetConn) stop() { x.c.Close() }

func (x *xnetConn) release() {}

// spareP does nothing here: these loops wait in the netpoller, which gives
// the P up.
func spareP(int, *slog.Logger) {}

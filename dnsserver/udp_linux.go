package dnsserver

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// mmsgConn calls recvmmsg and sendmmsg itself, on the non-blocking
// socket, with RawSyscall. Neither call can block here (EAGAIN sends the
// loop to the netpoller), so the runtime need not be told of the syscall;
// told, it hands the goroutine's P to another thread whenever a call runs
// long, and sendmmsg on loopback does (it delivers to the receiver in our
// context). Those hand-offs cost context switches on every batch.
// The raw source address of each datagram is kept and reused for its
// reply, so nothing is converted or allocated on the way.
//
// On a wildcard address (0.0.0.0, ::) the socket also asks for each
// datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO) and sends the
// reply from it: otherwise the kernel picks the source by route, and a
// client that asked 192.0.2.53 drops a reply from 198.51.100.7 (a host
// with several addresses, or anycast addresses on lo).
type mmsgConn struct {
	rc      syscall.RawConn
	pktinfo bool
	rhs     []mmsghdr // recvmmsg headers, one per datagram of the batch
	whs     []mmsghdr // sendmmsg headers
	riov    []unix.Iovec
	wiov    []unix.Iovec
	name    []unix.RawSockaddrInet6 // source of datagram i; large enough for IPv4 too
	rctl    [][]byte                // control messages received with datagram i (pktinfo only)
	wctl    [][]byte                // and sent with reply j

	// The callbacks of rc.Read and rc.Write, made once: a closure made
	// per call would escape and cost an allocation every batch. They
	// leave their results in n and errno; k is how many to send.
	recvFn, sendFn func(fd uintptr) bool
	n, k           int
	errno          syscall.Errno
	// filled is how many headers the last recvmmsg filled in: the
	// kernel changed their name and control lengths, which read resets.
	filled int
}

// ctlSize holds an IPv4 and an IPv6 packet info message.
var ctlSize = unix.CmsgSpace(unix.SizeofInet4Pktinfo) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// newBatchConn makes the recvmmsg headers of b's buffers once; read then
// only resets what the kernel changed.
func newBatchConn(c *net.UDPConn, b *batch) (batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dnsserver: raw UDP socket: %w", err)
	}
	mc := &mmsgConn{
		rc:   rc,
		rhs:  make([]mmsghdr, batchSize),
		whs:  make([]mmsghdr, batchSize),
		riov: make([]unix.Iovec, batchSize),
		wiov: make([]unix.Iovec, batchSize),
		name: make([]unix.RawSockaddrInet6, batchSize),
	}
	mc.recvFn, mc.sendFn = mc.recv, mc.send
	// socketControl asked a wildcard socket for packet info.
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.IsUnspecified() {
		mc.pktinfo = true
		mc.rctl = make([][]byte, batchSize)
		mc.wctl = make([][]byte, batchSize)
		for i := range mc.rctl {
			mc.rctl[i] = make([]byte, ctlSize)
			mc.wctl[i] = make([]byte, ctlSize)
		}
	}
	for i := range mc.rhs {
		mc.riov[i].Base = &b.in[i][0]
		mc.riov[i].SetLen(len(b.in[i]))
		h := &mc.rhs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&mc.name[i])), Iov: &mc.riov[i]}
		h.SetIovlen(1)
		if mc.pktinfo {
			h.Control = &mc.rctl[i][0]
		}
	}
	mc.filled = batchSize
	return mc, nil
}

// enablePktinfo asks for the destination of every datagram: IPv4 ones,
// also those reaching an IPv6 socket (dual stack), and, on an IPv6
// socket, IPv6 ones.
func enablePktinfo(rc syscall.RawConn, v6 bool) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if v6 {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); serr != nil {
				return
			}
			if only, _ := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); only == 1 {
				return
			}
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err != nil {
		return fmt.Errorf("dnsserver: packet info: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("dnsserver: packet info: %w", serr)
	}
	return nil
}

func (c *mmsgConn) read(b *batch) (int, error) {
	for i := range c.filled {
		h := &c.rhs[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		if c.pktinfo {
			h.SetControllen(len(c.rctl[i]))
		}
	}
	c.filled = 0
	if err := c.rc.Read(c.recvFn); err != nil {
		return 0, err
	}
	if c.errno != 0 {
		return 0, fmt.Errorf("dnsserver: recvmmsg: %w", c.errno)
	}
	n := c.n
	c.filled = n
	for i := 0; i < n; i++ {
		b.size[i] = min(int(c.rhs[i].len), len(b.in[i]))
		b.src[i] = sockaddrAddrPort(&c.name[i])
		b.dst[i] = netip.Addr{}
		if c.pktinfo {
			b.dst[i] = pktinfoDst(c.rctl[i][:c.rhs[i].hdr.Controllen])
		}
	}
	return n, nil
}

func (c *mmsgConn) write(b *batch, lo, hi int) (int, error) {
	k := hi - lo
	for j := 0; j < k; j++ {
		r := b.replies[lo+j]
		c.wiov[j].Base = unsafe.SliceData(r)
		c.wiov[j].SetLen(len(r))
		h := &c.whs[j].hdr
		src := &c.rhs[b.to[lo+j]].hdr
		*h = unix.Msghdr{Name: src.Name, Namelen: src.Namelen, Iov: &c.wiov[j]}
		h.SetIovlen(1)
		if dst := b.dst[b.to[lo+j]]; c.pktinfo && dst.IsValid() {
			l := putPktinfo(c.wctl[j], dst)
			h.Control = &c.wctl[j][0]
			h.SetControllen(l)
		}
	}
	c.k = k
	if err := c.rc.Write(c.sendFn); err != nil {
		return 0, err
	}
	if c.errno != 0 {
		return 0, fmt.Errorf("dnsserver: sendmmsg: %w", c.errno)
	}
	return c.n, nil
}

// recv and send are the callbacks of rc.Read and rc.Write: false (not
// done) on EAGAIN sends the goroutine to the netpoller until the socket is
// ready.
func (c *mmsgConn) recv(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhs[0])), uintptr(len(c.rhs)), unix.MSG_DONTWAIT, 0, 0)
	c.n, c.errno = int(r), e
	return e != unix.EAGAIN && e != unix.EWOULDBLOCK
}

func (c *mmsgConn) send(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.whs[0])), uintptr(c.k), unix.MSG_DONTWAIT, 0, 0)
	c.n, c.errno = int(r), e
	return e != unix.EAGAIN && e != unix.EWOULDBLOCK
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 as the kernel
// filled it in; IPv4-mapped addresses are unmapped.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// pktinfoDst finds the destination address in the control messages of a
// datagram: IP_PKTINFO's ipi_addr (the header's destination) or
// IPV6_PKTINFO's address.
func pktinfoDst(ctl []byte) netip.Addr {
	hdr := unix.CmsgLen(0)
	for len(ctl) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < hdr || l > len(ctl) {
			break
		}
		data := ctl[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			info := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(info.Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(info.Addr).Unmap()
		}
		ctl = ctl[min(len(ctl), unix.CmsgSpace(l-hdr)):]
	}
	return netip.Addr{}
}

// putPktinfo writes into buf the control message that makes a reply leave
// from src, and returns its length. An IPv4 source takes IP_PKTINFO's
// ipi_spec_dst, which works on IPv4 and dual-stack sockets alike.
func putPktinfo(buf []byte, src netip.Addr) int {
	clear(buf)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
	data := unsafe.Pointer(&buf[unix.CmsgLen(0)])
	if src.Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		(*unix.Inet4Pktinfo)(data).Spec_dst = src.As4()
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	(*unix.Inet6Pktinfo)(data).Addr = src.As16()
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

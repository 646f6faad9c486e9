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
type mmsgConn struct {
	rc   syscall.RawConn
	rhs  []mmsghdr // recvmmsg headers, one per datagram of the batch
	whs  []mmsghdr // sendmmsg headers
	riov []unix.Iovec
	wiov []unix.Iovec
	name []unix.RawSockaddrInet6 // source of datagram i; large enough for IPv4 too
}

func newBatchConn(c *net.UDPConn) (batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("dnsserver: raw UDP socket: %w", err)
	}
	return &mmsgConn{
		rc:   rc,
		rhs:  make([]mmsghdr, batchSize),
		whs:  make([]mmsghdr, batchSize),
		riov: make([]unix.Iovec, batchSize),
		wiov: make([]unix.Iovec, batchSize),
		name: make([]unix.RawSockaddrInet6, batchSize),
	}, nil
}

func (c *mmsgConn) read(b *batch) (int, error) {
	for i := range c.rhs {
		c.riov[i].Base = &b.in[i][0]
		c.riov[i].SetLen(len(b.in[i]))
		h := &c.rhs[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&c.name[i])), Namelen: unix.SizeofSockaddrInet6, Iov: &c.riov[i]}
		h.SetIovlen(1)
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhs[0])), uintptr(len(c.rhs)), unix.MSG_DONTWAIT, 0, 0)
		n, errno = int(r), e
		return e != unix.EAGAIN && e != unix.EWOULDBLOCK
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("dnsserver: recvmmsg: %w", errno)
	}
	for i := 0; i < n; i++ {
		b.size[i] = min(int(c.rhs[i].len), len(b.in[i]))
		b.src[i] = sockaddrAddrPort(&c.name[i])
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
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.whs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		n, errno = int(r), e
		return e != unix.EAGAIN && e != unix.EWOULDBLOCK
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("dnsserver: sendmmsg: %w", errno)
	}
	return n, nil
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

package dnsserver

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// mmsgConn calls recvmmsg and sendmmsg itself on a socket of its own,
// outside the runtime's netpoller, the way a C server's UDP thread does
// (gdnsd's, for one): a busy loop makes two syscalls a batch and sleeps in
// recvmmsg, woken by the kernel when a datagram arrives.
//
//   - The socket is a copy (dup) of the net.UDPConn's, which is closed:
//     that takes the socket out of the runtime's epoll set, where it cost
//     an epoll callback for every datagram received and every reply the
//     kernel freed, and the netpoller two epoll_pwait calls and a
//     scheduler round a batch, plus a recvmmsg that returned EAGAIN
//     before parking.
//   - The socket blocks, with a receive timeout (udpIdleAfter). recvmmsg
//     waits for the first datagram of a batch (MSG_WAITFORONE) and takes
//     what else is queued. It runs through RawSyscall, which the scheduler
//     never hears of: told of a syscall, sysmon hands the goroutine's P to
//     another thread whenever the call runs long, and a sendmmsg on
//     loopback does (it delivers to the receiver in our context), which
//     cost context switches every batch (issue 7). So the loop keeps its P
//     while recvmmsg waits, for at most udpIdleAfter; then it waits in
//     ppoll through an ordinary syscall, which gives the P up, until the
//     socket is readable. Everything else runs on a P of its own (spareP).
//     A signal (the runtime preempting the loop, or stopping the world
//     for the GC) ends the wait with EINTR, as it always does on a socket
//     with a receive timeout (signal(7)), and the loop yields the P.
//   - sendmmsg does not block (MSG_DONTWAIT); a full send buffer is waited
//     out in ppoll.
//
// The raw source address of each datagram is kept and reused for its
// reply, so nothing is converted or allocated on the way.
//
// On a wildcard address (0.0.0.0, ::) the socket also asks for each
// datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO) and sends the
// reply from it: otherwise the kernel picks the source by route, and a
// client that asked 192.0.2.53 drops a reply from 198.51.100.7 (a host
// with several addresses, or anycast addresses on lo).
type mmsgConn struct {
	fd      int
	stopped atomic.Bool
	pktinfo bool
	rhs     []mmsghdr // recvmmsg headers, one per datagram of the batch
	whs     []mmsghdr // sendmmsg headers
	riov    []unix.Iovec
	wiov    []unix.Iovec
	name    []unix.RawSockaddrInet6 // source of datagram i; large enough for IPv4 too
	rctl    [][]byte                // control messages received with datagram i (pktinfo only)
	wctl    [][]byte                // and sent with reply j
	pfd     []unix.PollFd           // the socket, for ppoll
	// filled is how many headers the last recvmmsg filled in: the
	// kernel changed their name and control lengths, which read resets.
	filled int
}

// udpIdleAfter is how long recvmmsg waits, holding the loop's P, before
// the loop waits in ppoll instead and lets the P go. Under load the next
// datagram comes much sooner; when traffic stops, the other goroutines
// of the P wait at most this long.
const udpIdleAfter = time.Millisecond

// spareP makes sure that the UDP loops, which keep their Ps while they
// wait for datagrams (mmsgConn), leave one P to everything else: TCP,
// HTTP, the reloader. Without one, while UDP is busy, a goroutine that the
// network makes ready waits for sysmon's poll, every 10 ms: TCP queries
// took 10 ms at 50k UDP queries/s on one P. A P more than there are cores
// costs nothing while it has no work; the kernel shares the cores between
// its thread and the loops' as between a C server's threads. (A busy loop
// that yielded its P every millisecond instead kept TCP at the same 10 ms,
// since a yield does not poll the network, and with the spare P it cost
// 1.2x the CPU per answer: the loop's goroutine moved between threads.)
func spareP(loops int, logger *slog.Logger) {
	if n := runtime.GOMAXPROCS(0); n <= loops {
		runtime.GOMAXPROCS(loops + 1)
		logger.Info("GOMAXPROCS raised to leave a P beside the UDP loops", "from", n, "to", loops+1)
	}
}

// ctlSize holds an IPv4 and an IPv6 packet info message.
var ctlSize = unix.CmsgSpace(unix.SizeofInet4Pktinfo) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// newBatchConn takes c's socket out of the netpoller (detach) and makes
// the recvmmsg headers of b's buffers once; read then only resets what
// the kernel changed.
func newBatchConn(c *net.UDPConn, b *batch) (batchConn, error) {
	// socketControl asked a wildcard socket for packet info.
	la, _ := c.LocalAddr().(*net.UDPAddr)
	fd, err := detach(c)
	if err != nil {
		return nil, err
	}
	mc := &mmsgConn{
		fd:   fd,
		rhs:  make([]mmsghdr, batchSize),
		whs:  make([]mmsghdr, batchSize),
		riov: make([]unix.Iovec, batchSize),
		wiov: make([]unix.Iovec, batchSize),
		name: make([]unix.RawSockaddrInet6, batchSize),
		pfd:  []unix.PollFd{{Fd: int32(fd)}},
	}
	if la != nil && la.IP.IsUnspecified() {
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

// detach returns a blocking copy of c's socket with a receive timeout of
// udpIdleAfter, and closes c: that takes the socket out of the runtime's
// epoll set, and the copy keeps it open and bound.
func detach(c *net.UDPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("raw socket: %w", err)
	}
	fd, serr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, serr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("raw socket: %w", err)
	}
	if serr != nil {
		return -1, fmt.Errorf("dup: %w", serr)
	}
	c.Close()
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("blocking mode: %w", err)
	}
	tv := unix.NsecToTimeval(int64(udpIdleAfter))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("receive timeout: %w", err)
	}
	return fd, nil
}

// stop marks the conn stopped and shuts the socket's receiving side down,
// which wakes a recvmmsg or ppoll waiting on it (on a UDP socket the
// kernel does so although it answers ENOTCONN). The fd stays open until
// release, so that its number cannot be reused under the loop.
func (c *mmsgConn) stop() {
	c.stopped.Store(true)
	unix.Shutdown(c.fd, unix.SHUT_RD)
}

func (c *mmsgConn) release() { unix.Close(c.fd) }

// wait blocks in ppoll, an ordinary syscall that gives the P up, until
// the socket has events (POLLIN or POLLOUT), is shut down, or a signal
// comes.
func (c *mmsgConn) wait(events int16) {
	c.pfd[0].Events, c.pfd[0].Revents = events, 0
	unix.Ppoll(c.pfd, nil, nil)
}

// dontFragment has the kernel send the socket's IPv4 replies with DF and
// ignore the path MTU that ICMP reports (IP_PMTUDISC_PROBE: the
// interface's MTU bounds a datagram). The default, IP_PMTUDISC_WANT, sets
// DF too while a reply fits the path MTU, but fragments one after an ICMP
// "fragmentation needed", which anyone can forge, lowered it: RFC 9715
// section 3.1 recommends DF on DNS responses, and UDP replies here never
// exceed 1232 octets. Since the default may fragment, it also draws an IP
// ID for every datagram of an unconnected socket from a shared generator
// (__ip_select_ident, 1.5-2% of the server's CPU in a profile at 50k
// queries/s); a datagram that may not be fragmented gets ID 0 (RFC 6864
// section 4.1 allows any ID on such atomic datagrams).
func dontFragment(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	})
	if err != nil {
		return fmt.Errorf("dnsserver: don't fragment: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("dnsserver: don't fragment: %w", serr)
	}
	return nil
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
	var n int
	for {
		if c.stopped.Load() {
			return 0, net.ErrClosed
		}
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.rhs[0])), uintptr(len(c.rhs)), unix.MSG_WAITFORONE, 0, 0)
		if c.stopped.Load() {
			// The shutdown of stop may have ended the call with an empty
			// datagram.
			return 0, net.ErrClosed
		}
		if e == 0 {
			n = int(r)
			break
		}
		switch e {
		case unix.EAGAIN: // nothing for udpIdleAfter
			c.wait(unix.POLLIN)
		case unix.EINTR: // most likely the runtime asking for the P
			runtime.Gosched()
		default:
			return 0, fmt.Errorf("dnsserver: recvmmsg: %w", e)
		}
	}
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
	for {
		if c.stopped.Load() {
			return 0, net.ErrClosed
		}
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&c.whs[0])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EAGAIN: // the send buffer is full
			c.wait(unix.POLLOUT)
		case unix.EINTR:
		default:
			return 0, fmt.Errorf("dnsserver: sendmmsg: %w", e)
		}
	}
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

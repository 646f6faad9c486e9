package dnsserver

import (
	"context"
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// Transferer answers zone transfers (AXFR, RFC 5936; IXFR, RFC 1995):
// the server hands it the transfer queries it reads and writes what it
// returns. Package transfer implements it; without one the server
// refuses every transfer. Its methods are called from many connections
// at once.
type Transferer interface {
	// ServeTCP answers one AXFR or IXFR query read from a TCP connection
	// from client, writing each message of the reply with write (which
	// frames it), and returns once the reply is complete or a write
	// failed.
	ServeTCP(ctx context.Context, query []byte, client netip.AddrPort, write func(msg []byte) error) error
	// ServeUDP returns the reply to an IXFR query received over UDP, or
	// nil for none. It must stay small: a single SOA (RFC 1995 section 2)
	// or an error.
	ServeUDP(query []byte, client netip.AddrPort) []byte
}

// SetTransferer makes t answer zone transfers from now on; call it
// before Serve. With none, AXFR and IXFR are REFUSED.
func (s *Server) SetTransferer(t Transferer) { s.xfr = t }

// isTransfer reports whether pkt is a query (QR clear, opcode QUERY) for
// one name of type AXFR or IXFR, without allocating: the TCP loop hands
// those to the Transferer instead of answering them itself.
func isTransfer(pkt []byte) bool {
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 || (pkt[2]>>3)&0xF != dns.OpcodeQuery ||
		binary.BigEndian.Uint16(pkt[4:]) != 1 {
		return false
	}
	off := headerLen
	for off < len(pkt) {
		l := int(pkt[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return false // no compression in a question that comes first
		}
		off += l + 1
	}
	if off+4 > len(pkt) {
		return false
	}
	t := binary.BigEndian.Uint16(pkt[off:])
	return t == dns.TypeAXFR || t == dns.TypeIXFR
}

// udpTransfer answers an IXFR over UDP through the Transferer, into out,
// when the reply fits limit; nil otherwise, and the caller refuses.
func (s *Server) udpTransfer(q *query, out, pkt []byte, src netip.Addr, limit int) []byte {
	r := s.xfr.ServeUDP(pkt, netip.AddrPortFrom(src, 0))
	if len(r) < headerLen || len(r) > limit {
		return nil
	}
	q.rcode = int(r[3] & 0xF)
	return append(out[:0], r...)
}

// Notifier answers NOTIFY messages (RFC 1996) for the zones this server
// is a secondary of. Package secondary implements it; without one a
// NOTIFY gets NOTIMP, as every opcode but QUERY does. Its method is
// called from many goroutines at once.
type Notifier interface {
	// ServeNotify returns the reply to the NOTIFY query received from
	// client, or nil when the query does not parse (the server then
	// answers FORMERR). It must not block.
	ServeNotify(query []byte, client netip.AddrPort) []byte
}

// SetNotifier makes n answer NOTIFY messages from now on; call it
// before Serve.
func (s *Server) SetNotifier(n Notifier) { s.notifier = n }

// notifyReply answers a NOTIFY through the Notifier, into out; FORMERR
// when it gives no reply or one larger than limit.
func (s *Server) notifyReply(q *query, out, pkt []byte, src netip.Addr, limit int) []byte {
	r := s.notifier.ServeNotify(pkt, netip.AddrPortFrom(src, 0))
	if len(r) < headerLen || len(r) > limit {
		return s.reply(q, out, nil, dns.RcodeFormatError, limit)
	}
	q.rcode = int(r[3] & 0xF)
	return append(out[:0], r...)
}

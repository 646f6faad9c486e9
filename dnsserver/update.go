package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Updater answers dynamic updates (RFC 2136). Package update implements
// it; without one an UPDATE gets NOTIMP, as every opcode but QUERY and
// NOTIFY does. Its method is called from many goroutines at once.
type Updater interface {
	// ServeUpdate applies the UPDATE query received from client, or
	// nothing of it, and returns the reply; nil when the query does not
	// parse (the server then answers FORMERR). It writes the change
	// before it returns, so it may take a few milliseconds: the UDP loop
	// that read the query waits for it.
	ServeUpdate(query []byte, client netip.AddrPort) []byte
}

// SetUpdater makes u answer UPDATE messages from now on; call it before
// Serve.
func (s *Server) SetUpdater(u Updater) { s.updater = u }

// updateReply answers an UPDATE through the Updater, into out; FORMERR
// when it gives no reply or one larger than limit.
func (s *Server) updateReply(q *query, out, pkt []byte, src netip.Addr, limit int) []byte {
	r := s.updater.ServeUpdate(pkt, netip.AddrPortFrom(src, 0))
	if len(r) < headerLen || len(r) > limit {
		return s.reply(q, out, nil, dns.RcodeFormatError, limit)
	}
	q.rcode = int(r[3] & 0xF)
	return append(out[:0], r...)
}

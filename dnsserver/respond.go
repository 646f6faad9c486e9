package dnsserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

const (
	// advertisedUDPSize is the EDNS buffer size we announce and the largest
	// UDP reply we send, whatever the client offers: 1232 octets avoids IP
	// fragmentation on any path (DNS Flag Day 2020).
	advertisedUDPSize = 1232
	// minUDPSize is the limit for clients without EDNS (RFC 1035 section 2.3.4).
	minUDPSize = 512
	// maxTCPSize is the largest message TCP can carry (RFC 1035 section 4.2.2).
	maxTCPSize = 65535
)

// respond writes the reply to pkt into out and returns it, or returns nil
// when the packet deserves no reply. out must have room for maxTCPSize
// octets on TCP and advertisedUDPSize on UDP. It never allocates.
//
// respond is a flat list of guards, each answering one RFC case, ending in
// the lookup of the snapshot loaded once for this query. Rate limiting
// decides right after parsing, before any reply is built, so that a flood
// costs a parse per packet, not a lookup and a reply.
func (s *Server) respond(q *query, out, pkt []byte, tcp bool, src netip.Addr) []byte {
	if !q.parseHeader(pkt) {
		return nil
	}
	err := q.parseBody(pkt)
	limit := q.limit(tcp)
	if q.cookie.state != cookieNone {
		q.cookies.check(&q.cookie, src)
		s.cookieSeen[q.cookie.state].Add(1)
	}
	if s.rrl != nil && !tcp && q.cookie.state != cookieValid {
		// A valid server cookie shows the client receives replies at its
		// address, so it is no spoofed victim (RFC 7873 section 5.2.5).
		switch s.rrl.check(src) {
		case rrlDrop:
			return nil
		case rrlSlip:
			return s.slipReply(q, out, limit)
		}
	}
	if op := q.opcode(); op != dns.OpcodeQuery {
		if op == dns.OpcodeNotify && s.notifier != nil {
			return s.notifyReply(q, out, pkt, src, limit)
		}
		if op == dns.OpcodeUpdate && s.updater != nil {
			return s.updateReply(q, out, pkt, src, limit)
		}
		return s.reply(q, out, nil, dns.RcodeNotImplemented, limit) // NOTIFY, UPDATE and the rest
	}
	switch err {
	case nil:
	case errNoQuestion:
		if q.cookie.state == cookieClientOnly || q.cookie.state == cookieValid {
			// A query for a server cookie (RFC 7873 section 5.4).
			return s.reply(q, out, nil, dns.RcodeSuccess, limit)
		}
		if q.cookie.state == cookieInvalid {
			return s.reply(q, out, nil, dns.RcodeBadCookie, limit)
		}
		return s.reply(q, out, nil, dns.RcodeFormatError, limit)
	default:
		return s.reply(q, out, nil, dns.RcodeFormatError, limit)
	}
	if q.edns && q.version > 0 {
		// RFC 6891 section 6.1.3: BADVERS, and our highest version (0) in the OPT.
		return s.reply(q, out, nil, dns.RcodeBadVers, limit)
	}
	if q.cookie.state == cookieInvalid && !tcp {
		// A server cookie we did not make, or too old: the client retries
		// with the fresh one in this reply (RFC 7873 sections 5.2.3, 5.2.4).
		// Over TCP the address is proven and the query is answered.
		return s.reply(q, out, nil, dns.RcodeBadCookie, limit)
	}
	if q.qclass != dns.ClassINET {
		return s.reply(q, out, nil, dns.RcodeRefused, limit)
	}
	switch q.qtype {
	case dns.TypeIXFR:
		// Over UDP an IXFR gets the current SOA, which sends a client
		// that is behind to TCP (RFC 1995 section 2); over TCP the
		// connection loop hands transfers to the Transferer before they
		// get here.
		if s.xfr != nil && !tcp {
			if r := s.udpTransfer(q, out, pkt, src, limit); r != nil {
				return r
			}
		}
		return s.reply(q, out, nil, dns.RcodeRefused, limit)
	case dns.TypeAXFR:
		// AXFR over UDP is not defined (RFC 5936 section 4.2): REFUSED,
		// as RFC 1035 section 4.1.1 gives zone transfers as its example.
		return s.reply(q, out, nil, dns.RcodeRefused, limit)
	case dns.TypeNXNAME:
		return s.reply(q, out, nil, dns.RcodeFormatError, limit) // a meta-type, never asked for (RFC 9824 section 3.5)
	}
	st := s.st.Load()
	if st == nil || st.snap == nil {
		return s.reply(q, out, nil, dns.RcodeServerFailure, limit)
	}
	a := st.snap.Lookup(q.lname, q.qtype)
	if a == nil {
		return s.reply(q, out, nil, dns.RcodeRefused, limit) // not one of our zones
	}
	q.zs = st.zoneStatsFor(a)
	if a.Pool != nil {
		return s.poolReply(st, q, out, a, limit, src)
	}
	if q.do && a.DO != nil {
		return s.signedReply(q, out, a.DO, limit)
	}
	return s.reply(q, out, a, a.Rcode, limit)
}

// limit is the largest reply q may get: 512 octets over UDP without EDNS
// (RFC 1035 section 2.3.4), the client's EDNS buffer size up to ours, and
// a whole message over TCP.
func (q *query) limit(tcp bool) int {
	if tcp {
		return maxTCPSize
	}
	if q.edns && q.udpSize > minUDPSize {
		return min(int(q.udpSize), advertisedUDPSize)
	}
	return minUDPSize
}

// headerReply answers with a header alone, the question and opcode
// echoed: the reply of last resort, when answering failed.
func (s *Server) headerReply(q *query, out []byte, rcode int) []byte {
	q.rcode = rcode
	out = out[:headerLen]
	binary.BigEndian.PutUint16(out, q.id)
	binary.BigEndian.PutUint16(out[2:], flagQR|q.flags&(0xF<<11|flagRD|flagCD)|uint16(rcode&0xF))
	clear(out[4:headerLen])
	return out
}

// reply writes header, question (when it could be read), the answer's
// sections (if any) and an OPT record when the query had a sound one (RFC
// 6891 section 6.1.1: also with FORMERR and NOTIMP), shedding the
// additional section or setting TC when the whole does not fit in limit.
func (s *Server) reply(q *query, out []byte, a *zones.Answer, rcode int, limit int) []byte {
	q.rcode = rcode
	flags := flagQR | q.flags&(0xF<<11|flagRD|flagCD) | uint16(rcode&0xF)
	var wire []byte
	var count [3]uint16
	if a != nil {
		if a.Authoritative {
			flags |= flagAA
		}
		wire, count = a.Wire, a.Count
	}
	size := headerLen + len(q.question) + s.optLen(q)
	if size+len(wire) > limit {
		if a != nil && !a.ExtraRequired && size+a.NoExtraLen <= limit {
			wire, count[2] = wire[:a.NoExtraLen], 0 // additional data is optional (RFC 2181 section 9)
		} else {
			wire, count = nil, [3]uint16{}
			flags |= flagTC // RFC 1035 section 4.1.1; the client retries over TCP (RFC 7766)
		}
	}
	out = out[:headerLen]
	binary.BigEndian.PutUint16(out, q.id)
	binary.BigEndian.PutUint16(out[2:], flags)
	var qd uint16
	if q.question != nil {
		qd = 1
	}
	binary.BigEndian.PutUint16(out[4:], qd)
	binary.BigEndian.PutUint16(out[6:], count[0])
	binary.BigEndian.PutUint16(out[8:], count[1])
	arcount := count[2]
	if q.edns {
		arcount++
	}
	binary.BigEndian.PutUint16(out[10:], arcount)
	out = append(out, q.question...)
	out = append(out, wire...)
	if q.edns {
		out = s.appendOPT(out, q, rcode)
	}
	return out
}

// optLen is the size of the OPT record appendOPT writes for q.
func (s *Server) optLen(q *query) int {
	if !q.edns {
		return 0
	}
	n := 11
	if q.nsid && s.cfg.NSID != "" {
		n += 4 + len(s.cfg.NSID)
	}
	if q.ecs.present {
		n += 4 + 4 + (int(q.ecs.source)+7)/8
	}
	if q.cookie.answered() {
		n += 4 + clientCookieLen + serverCookieLen
	}
	return n
}

// appendOPT appends our OPT record (RFC 6891 section 6.1.2): our buffer
// size, the upper bits of the extended rcode, version 0, the DO bit echoed
// (RFC 3225 section 3), NSID when asked for and configured (RFC 5001) and
// the client subnet echoed with the scope the answer holds for: 0 for
// answers that do not depend on the client (RFC 7871 section 7.2.1), and
// the client's cookie with our server cookie (RFC 7873 section 5.2).
func (s *Server) appendOPT(out []byte, q *query, rcode int) []byte {
	out = append(out, 0, 0, 41, byte(advertisedUDPSize>>8), byte(advertisedUDPSize&0xFF))
	var doBit byte
	if q.do {
		doBit = 0x80
	}
	if q.co {
		doBit |= 0x40 // CO understood (RFC 9824 section 4)
	}
	out = append(out, byte(rcode>>4), 0, doBit, 0)
	lenAt := len(out)
	out = append(out, 0, 0)
	if q.nsid && s.cfg.NSID != "" {
		out = append(out, 0, optNSID, byte(len(s.cfg.NSID)>>8), byte(len(s.cfg.NSID)))
		out = append(out, s.cfg.NSID...)
	}
	if e := &q.ecs; e.present {
		n := (int(e.source) + 7) / 8
		out = append(out, 0, optECS, 0, byte(4+n), byte(e.family>>8), byte(e.family), e.source, q.scope)
		out = append(out, e.addr[:n]...)
	}
	if c := &q.cookie; c.answered() {
		out = append(out, 0, optCookie, 0, clientCookieLen+serverCookieLen)
		out = append(out, c.client[:]...)
		out = append(out, c.out[:]...)
	}
	binary.BigEndian.PutUint16(out[lenAt:], uint16(len(out)-lenAt-2))
	return out
}

// poolReply answers from a pool: the endpoints chosen for the client,
// after the CNAME chain that led to the pool, if any.
func (s *Server) poolReply(st *state, q *query, out []byte, a *zones.Answer, limit int, src netip.Addr) []byte {
	var ch choice
	c := q.client(src)
	st.choose(a.Pool, a.PoolFamily, c, &q.rng, &q.order, q.geo, nil, &ch)
	st.recordPool(a.Pool, &ch)
	signed := q.do && a.DO != nil
	if ch.n == 0 {
		nodata := ch.pool.NoData
		if len(a.Wire) != 0 {
			nodata = a // the chain alone
		}
		if signed && nodata.DO != nil {
			return s.signedReply(q, out, nodata.DO, limit)
		}
		return s.reply(q, out, nodata, dns.RcodeSuccess, limit)
	}
	chain, chainCount := a.Wire, a.Count[0]
	var sigs []byte
	if signed {
		if len(a.DO.Parts) > 0 {
			chain, chainCount = a.DO.Parts[0].Wire, a.DO.Parts[0].Count
		}
		if sigs = s.poolSigs(q, a, &ch, a.DO.Keys); sigs == nil {
			return s.reply(q, out, truncated, dns.RcodeSuccess, limit)
		}
	}
	if q.ecs.present {
		q.scope = uint8(min(ch.scope, c.bits))
	}
	ownerLen := 2
	if a.PoolOwner != nil {
		ownerLen = len(a.PoolOwner)
	}
	rdlen := 4
	if a.PoolFamily == 1 {
		rdlen = 16
	}
	nsigs := 0
	if sigs != nil {
		nsigs = sigCount(sigs)
	}
	size := headerLen + len(q.question) + len(chain) + ch.n*(ownerLen+10+rdlen) + s.optLen(q)
	if sigs != nil {
		size += sigsLen(sigs) - nsigs*2 + nsigs*ownerLen
	}
	if size > limit {
		return s.reply(q, out, truncated, dns.RcodeSuccess, limit)
	}
	q.rcode = dns.RcodeSuccess
	out = out[:headerLen]
	binary.BigEndian.PutUint16(out, q.id)
	binary.BigEndian.PutUint16(out[2:], flagQR|flagAA|q.flags&(flagRD|flagCD))
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], chainCount+uint16(ch.n+nsigs))
	binary.BigEndian.PutUint16(out[8:], 0)
	var ar uint16
	if q.edns {
		ar = 1
	}
	binary.BigEndian.PutUint16(out[10:], ar)
	out = append(out, q.question...)
	out = append(out, chain...)
	ttl := ch.pool.TTL
	typ := poolTypes[a.PoolFamily]
	for _, e := range ch.eps[:ch.n] {
		if a.PoolOwner != nil {
			out = append(out, a.PoolOwner...)
		} else {
			out = append(out, 0xC0, headerLen) // the question name
		}
		out = append(out, byte(typ>>8), byte(typ), 0, 1,
			byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, byte(rdlen))
		if rdlen == 4 {
			b := e.Addr.As4()
			out = append(out, b[:]...)
		} else {
			b := e.Addr.As16()
			out = append(out, b[:]...)
		}
	}
	if sigs != nil {
		out, _ = appendSigs(out, sigs, a.PoolOwner)
	}
	if q.edns {
		out = s.appendOPT(out, q, dns.RcodeSuccess)
	}
	return out
}

// truncated stands for an answer too large for any limit: replying with it
// yields an empty, authoritative reply with TC set.
var truncated = &zones.Answer{Authoritative: true, ExtraRequired: true, Wire: make([]byte, maxTCPSize)}

// poolTypes are the record types of pool answers, by family index.
var poolTypes = [2]uint16{dns.TypeA, dns.TypeAAAA}

package dnsserver

import (
	"encoding/binary"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// Answers of signed zones to queries with the DO bit (RFC 4035 section
// 3.1). The parts signed at build time are copied; the RRsets of the
// query name (a compact NSEC, a wildcard expanded) and of a pool's choice
// are signed here, once per distinct content, and kept in the server's
// signature cache, so that a warm cache costs a lookup per answer.

// DefaultSignatureCache is the number of signatures kept when the
// configuration does not say: at about 250 bytes an entry, 32 MiB.
const DefaultSignatureCache = 1 << 17

// signedReply answers from the Signed form of an answer.
func (s *Server) signedReply(q *query, out []byte, sa *zones.Signed, limit int) []byte {
	rcode := sa.Rcode
	if sa.NX && q.co {
		rcode = dns.RcodeNameError // the client asked for it (RFC 9824 section 4)
	}
	q.rcode = rcode
	var flags uint16
	if sa.Authoritative {
		flags = flagAA // not on a referral
	}
	out = s.replyHead(q, out, flags, rcode)
	room := limit - s.optLen(q)
	var count [3]uint16
	for i, p := range sa.Parts {
		start := len(out)
		var n uint16
		ok := true
		if p.Online == nil {
			if ok = len(out)+len(p.Wire) <= room; ok {
				out, n = append(out, p.Wire...), p.Count
			}
		} else {
			out, n, ok = s.appendOnline(q, out, p, sa.Keys, room)
		}
		if !ok {
			out = out[:start]
			if i >= sa.NoExtra && !sa.ExtraRequired {
				break // additional data is optional (RFC 2181 section 9)
			}
			return s.reply(q, out[:0], truncated, dns.RcodeSuccess, limit)
		}
		count[p.Section] += n
	}
	return s.replyTail(q, out, count, rcode)
}

// replyHead writes the header (counts left for replyTail) and the
// question.
func (s *Server) replyHead(q *query, out []byte, flags uint16, rcode int) []byte {
	out = out[:headerLen]
	binary.BigEndian.PutUint16(out, q.id)
	binary.BigEndian.PutUint16(out[2:], flagQR|flags|q.flags&(flagRD|flagCD)|uint16(rcode&0xF))
	binary.BigEndian.PutUint16(out[4:], 1)
	return append(out, q.question...)
}

// replyTail writes the section counts and the OPT record.
func (s *Server) replyTail(q *query, out []byte, count [3]uint16, rcode int) []byte {
	binary.BigEndian.PutUint16(out[6:], count[0])
	binary.BigEndian.PutUint16(out[8:], count[1])
	if q.edns {
		count[2]++
	}
	binary.BigEndian.PutUint16(out[10:], count[2])
	if q.edns {
		out = s.appendOPT(out, q, rcode)
	}
	return out
}

// appendOnline writes an RRset of the query name and its signatures,
// signing it on a cache miss; ok is false when it would pass room.
func (s *Server) appendOnline(q *query, out []byte, p zones.Part, keys *signing.Keyset, room int) (_ []byte, n uint16, ok bool) {
	o := p.Online
	key := binary.BigEndian.AppendUint64(q.kbuf[:0], o.ID)
	key = append(key, q.lname...)
	sigs, ok := s.sigs.Get(key, s.clock.unix(q.start))
	if !ok {
		owner := q.presentationName()
		var rrs []dns.RR
		if o.NSEC {
			rrs = []dns.RR{signing.CompactNSEC(owner, o.TTL, o.Types, o.NX)}
		} else {
			rrs = make([]dns.RR, len(o.RRs))
			for i, rr := range o.RRs {
				rrs[i] = dns.Copy(rr)
				rrs[i].Header().Name = owner
			}
		}
		sigs = s.signAndKeep(key, rrs, keys)
	}
	if sigs == nil {
		return out, 0, false
	}
	size := len(p.Wire) + sigsLen(sigs)
	if o.NSEC {
		size += 2 + 10 + 2 + len(q.lname) + len(o.Bitmap)
	}
	if len(out)+size > room {
		return out, 0, false
	}
	if o.NSEC {
		// The NSEC at the query name; its next name is \000.qname, written
		// whole: names in NSEC data are never compressed (RFC 4034
		// section 4.1.1, RFC 3597 section 4).
		rdlen := 2 + len(q.lname) + len(o.Bitmap)
		out = append(out, 0xC0, headerLen, 0, byte(dns.TypeNSEC), 0, 1,
			byte(o.TTL>>24), byte(o.TTL>>16), byte(o.TTL>>8), byte(o.TTL), byte(rdlen>>8), byte(rdlen), 1, 0)
		out = append(out, q.lname...)
		out = append(out, o.Bitmap...)
		n = 1
	} else {
		out = append(out, p.Wire...)
		n = p.Count
	}
	out, k := appendSigs(out, sigs, nil)
	return out, n + k, true
}

// signAndKeep signs rrs and keeps the RRSIGs under key in the signature
// cache. The value holds each RRSIG without its owner: a 16-bit length,
// then type to RDATA. nil means signing failed, which the caller answers
// as it would an answer too large: truncated, so that the client retries
// over TCP and finds it failing there too.
func (s *Server) signAndKeep(key []byte, rrs []dns.RR, keys *signing.Keyset) []byte {
	t := time.Now()
	inc, exp := keys.Policy.Window(t)
	sigs, err := keys.Sign(rrs, inc, exp)
	if err != nil || len(sigs) == 0 {
		s.signFailures.Add(1)
		return nil
	}
	var v []byte
	buf := make([]byte, 1024)
	for _, sig := range sigs {
		end, err := dns.PackRR(sig, buf, 0, nil, false)
		if err != nil {
			s.signFailures.Add(1)
			return nil
		}
		_, start, err := dns.UnpackDomainName(buf, 0)
		if err != nil {
			s.signFailures.Add(1)
			return nil
		}
		v = binary.BigEndian.AppendUint16(v, uint16(end-start))
		v = append(v, buf[start:end]...)
	}
	s.signatures.Add(1)
	s.sigs.Put(key, v, uint32(keys.Policy.RefreshAt(t).Unix()), uint32(t.Unix()))
	return v
}

// sigsLen is the size of the records appendSigs writes for owners that
// are a compression pointer.
func sigsLen(v []byte) int {
	n := 0
	for len(v) >= 2 {
		l := int(binary.BigEndian.Uint16(v))
		n += 2 + l
		v = v[2+l:]
	}
	return n
}

// sigCount is the number of RRSIGs in a cached value.
func sigCount(v []byte) int {
	n := 0
	for len(v) >= 2 {
		v = v[2+int(binary.BigEndian.Uint16(v)):]
		n++
	}
	return n
}

// appendSigs writes the RRSIGs of a cached value, each with owner: the
// query name (nil) or a wire name.
func appendSigs(out, v, owner []byte) ([]byte, uint16) {
	var n uint16
	for len(v) >= 2 {
		l := int(binary.BigEndian.Uint16(v))
		if owner == nil {
			out = append(out, 0xC0, headerLen)
		} else {
			out = append(out, owner...)
		}
		out = append(out, v[2:2+l]...)
		v = v[2+l:]
		n++
	}
	return out, n
}

// presentationName returns the query name, lower case, as text; only a
// cache miss needs it.
func (q *query) presentationName() string {
	name, _, err := dns.UnpackDomainName(q.lname, 0)
	if err != nil {
		return "."
	}
	return name
}

// poolSigs returns the RRSIGs of the pool records chosen, keyed by what
// they sign: owner, type, TTL and the sorted addresses, so that every
// order of one subset shares a signature.
func (s *Server) poolSigs(q *query, a *zones.Answer, ch *choice, keys *signing.Keyset) []byte {
	owner := q.lname
	if a.PoolOwner != nil {
		owner = a.PoolOwner
	}
	typ := poolTypes[a.PoolFamily]
	key := binary.BigEndian.AppendUint64(q.kbuf[:0], keys.ID)
	key = append(key, owner...)
	key = binary.BigEndian.AppendUint16(key, typ)
	key = binary.BigEndian.AppendUint32(key, ch.pool.TTL)
	addrs := q.sorted[:ch.n]
	for i, e := range ch.eps[:ch.n] {
		addrs[i] = e.Addr
		for j := i; j > 0 && addrs[j].Less(addrs[j-1]); j-- {
			addrs[j], addrs[j-1] = addrs[j-1], addrs[j]
		}
	}
	for _, ad := range addrs {
		b := ad.As16()
		key = append(key, b[:]...)
	}
	if v, ok := s.sigs.Get(key, s.clock.unix(q.start)); ok {
		return v
	}
	name, _, _ := dns.UnpackDomainName(owner, 0)
	rrs := make([]dns.RR, len(addrs))
	for i, ad := range addrs {
		h := dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: ch.pool.TTL}
		if typ == dns.TypeA {
			rrs[i] = &dns.A{Hdr: h, A: ad.AsSlice()}
		} else {
			rrs[i] = &dns.AAAA{Hdr: h, AAAA: ad.AsSlice()}
		}
	}
	return s.signAndKeep(key, rrs, keys)
}

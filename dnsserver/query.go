package dnsserver

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Header flag bits (RFC 1035 section 4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4

	headerLen = 12
)

// EDNS0 option codes we act on.
const (
	optNSID = 3 // RFC 5001
	optECS  = 8 // RFC 7871
)

// errFormat marks a query the server answers with FORMERR; errNoQuestion
// one that is well formed but has no question, which only a query for a
// server cookie may be (RFC 7873 section 5.4).
var (
	errFormat     = errors.New("malformed query")
	errNoQuestion = errors.New("no question")
)

// query is a parsed request. It holds slices into the packet and a
// lower-cased copy of the name; one lives in each worker and is reused,
// so parsing allocates nothing.
type query struct {
	id       uint16
	flags    uint16
	qdcount  uint16
	question []byte // name, type and class as sent: copied into the reply (0x20 case preserved)
	lname    []byte // lower-case wire name, in lbuf
	qtype    uint16
	qclass   uint16

	edns    bool
	udpSize uint16
	version uint8
	do      bool
	co      bool // Compact Answers OK (RFC 9824 section 4)
	nsid    bool
	ecs     ecs
	scope   uint8 // ECS SCOPE PREFIX-LENGTH of the reply
	cookie  cookie
	// cookies holds the secrets of this query, nil when cookies are off.
	cookies *cookieJar

	// What the statistics need of the reply: the zone's counters (nil
	// outside our zones) and the rcode sent.
	zs    *zoneStats
	rcode int
	// local is the address the query came in on, for dnstap.
	local netip.AddrPort

	start int64    // when the query arrived, monotonic (nanotime)
	rng   uint64   // the worker's random state, for weighted choices
	order orderBuf // scratch for pool selection
	// geo remembers the loop's recent GeoIP lookups; nil (TCP, explain)
	// looks every address up.
	geo    *geoCache
	lbuf   [255]byte
	kbuf   [8 + 255 + 6 + 16*maxPoolAnswers]byte // a signature cache key
	sorted [maxPoolAnswers]netip.Addr            // a pool choice, sorted for its signature
}

// client returns who to choose pool answers for: the ECS subnet when
// present (RFC 7871 section 7.1.1), else the source address.
func (q *query) client(src netip.Addr) client {
	if !q.ecs.present {
		return client{addr: src, bits: src.BitLen()}
	}
	if q.ecs.source == 0 {
		return client{} // SOURCE PREFIX-LENGTH 0: do not use the client address
	}
	if q.ecs.family == 1 {
		return client{addr: netip.AddrFrom4([4]byte(q.ecs.addr[:4])), bits: int(q.ecs.source)}
	}
	return client{addr: netip.AddrFrom16(q.ecs.addr), bits: int(q.ecs.source)}
}

// ecs is a client subnet option from a query (RFC 7871 section 6).
type ecs struct {
	present bool
	family  uint16
	source  uint8 // SOURCE PREFIX-LENGTH
	addr    [16]byte
}

func (q *query) opcode() int { return int(q.flags>>11) & 0xF }

// parseHeader reads the fixed header. Packets too short to carry one, and
// responses, are not answered at all: replying to a response invites
// loops and reflection.
func (q *query) parseHeader(pkt []byte) bool {
	if len(pkt) < headerLen {
		return false
	}
	q.id = binary.BigEndian.Uint16(pkt)
	q.flags = binary.BigEndian.Uint16(pkt[2:])
	q.qdcount = binary.BigEndian.Uint16(pkt[4:])
	return q.flags&flagQR == 0
}

// parseBody reads the question and the additional section after the header
// has been accepted. Any structural error yields errFormat. The OPT record
// is read even when the question section is wrong, so that the FORMERR
// reply can carry one (RFC 6891 section 6.1.1); q.edns is left false when
// the OPT record itself is the malformation.
func (q *query) parseBody(pkt []byte) error {
	q.edns, q.nsid, q.do, q.co, q.ecs.present, q.scope = false, false, false, false, false, 0
	q.cookie.state = cookieNone
	q.question, q.lname = nil, nil
	off := headerLen
	var err error
	for i := 0; i < int(q.qdcount); i++ {
		if q.qdcount == 1 {
			off, err = q.parseQuestion(pkt, off)
		} else if off, err = skipName(pkt, off); err == nil {
			if off += 4; off > len(pkt) {
				err = errFormat
			}
		}
		if err != nil {
			return err
		}
	}
	an := int(binary.BigEndian.Uint16(pkt[6:]))
	ns := int(binary.BigEndian.Uint16(pkt[8:]))
	ar := int(binary.BigEndian.Uint16(pkt[10:]))
	for i := 0; i < an+ns; i++ {
		if off, _, err = skipRR(pkt, off); err != nil {
			return err
		}
	}
	var optErr error
	for i := 0; i < ar; i++ {
		start := off
		var typ uint16
		if off, typ, err = skipRR(pkt, off); err != nil {
			q.edns = false // cannot tell what else is wrong
			return err
		}
		if typ == 41 {
			if q.edns {
				// Two OPT records (RFC 6891 section 6.1.1): neither is ours to echo.
				q.edns = false
				return errFormat
			}
			if err := q.parseOPT(pkt[start:off]); err != nil && optErr == nil {
				optErr = err
			}
		}
	}
	switch {
	case optErr != nil:
		return optErr
	case q.qdcount == 0:
		return errNoQuestion
	case q.qdcount != 1:
		return errFormat
	}
	return nil
}

// parseQuestion reads the question at off. Compression is not allowed
// here: the only earlier bytes are the header.
func (q *query) parseQuestion(pkt []byte, off int) (int, error) {
	start, n := off, 0
	for {
		if off >= len(pkt) {
			return 0, errFormat
		}
		l := int(pkt[off])
		if l == 0 {
			q.lbuf[n] = 0
			n++
			off++
			break
		}
		if l > 63 || off+1+l > len(pkt) || n+1+l+1 > len(q.lbuf) {
			return 0, errFormat // pointer, reserved label type, overrun or name over 255 octets
		}
		q.lbuf[n] = byte(l)
		for i := 1; i <= l; i++ {
			c := pkt[off+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A' // RFC 4343: names compare case-insensitively in ASCII only
			}
			q.lbuf[n+i] = c
		}
		n += l + 1
		off += l + 1
	}
	if off+4 > len(pkt) {
		return 0, errFormat
	}
	q.lname = q.lbuf[:n]
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	q.qclass = binary.BigEndian.Uint16(pkt[off+2:])
	off += 4
	q.question = pkt[start:off]
	return off, nil
}

// skipRR steps over one resource record, returning the offset after it and
// its type.
func skipRR(pkt []byte, off int) (int, uint16, error) {
	off, err := skipName(pkt, off)
	if err != nil {
		return 0, 0, err
	}
	if off+10 > len(pkt) {
		return 0, 0, errFormat
	}
	typ := binary.BigEndian.Uint16(pkt[off:])
	rdlen := int(binary.BigEndian.Uint16(pkt[off+8:]))
	off += 10 + rdlen
	if off > len(pkt) {
		return 0, 0, errFormat
	}
	return off, typ, nil
}

// skipName steps over a possibly compressed name.
func skipName(pkt []byte, off int) (int, error) {
	for {
		if off >= len(pkt) {
			return 0, errFormat
		}
		l := int(pkt[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(pkt) {
				return 0, errFormat
			}
			return off + 2, nil // a pointer ends the name
		case l > 63:
			return 0, errFormat
		}
		off += l + 1
	}
}

// parseOPT reads an OPT pseudo-record (RFC 6891 section 6.1.2). An OPT
// with a non-root owner or options that overrun it is a format error that
// leaves q.edns false (section 6.1.1); a malformed client subnet or cookie
// is one that keeps it, as the OPT itself is sound.
func (q *query) parseOPT(rr []byte) error {
	if len(rr) < 11 || rr[0] != 0 {
		return errFormat
	}
	opts := rr[11:]
	for o := opts; len(o) > 0; {
		if len(o) < 4 || 4+int(binary.BigEndian.Uint16(o[2:])) > len(o) {
			return errFormat
		}
		o = o[4+int(binary.BigEndian.Uint16(o[2:])):]
	}
	q.edns = true
	q.udpSize = binary.BigEndian.Uint16(rr[3:])
	q.version = rr[6]
	q.do = rr[7]&0x80 != 0
	q.co = rr[7]&0x40 != 0
	var bad error
	for len(opts) > 0 {
		code := binary.BigEndian.Uint16(opts)
		l := int(binary.BigEndian.Uint16(opts[2:]))
		data := opts[4 : 4+l]
		switch code {
		case optNSID:
			q.nsid = true
		case optECS:
			if err := q.ecs.parse(data); err != nil {
				bad = err
			}
		case optCookie:
			if q.cookies == nil {
				break // cookies off: an unknown option (RFC 7873 section 5.1)
			}
			if q.cookie.state != cookieNone {
				q.cookie.state = cookieMalformed // two cookies
			} else {
				q.cookie.parse(data)
			}
			if q.cookie.state == cookieMalformed {
				bad = errFormat // RFC 7873 section 5.2.2
			}
		}
		// Unknown options are ignored (RFC 6891 section 6.1.2).
		opts = opts[4+l:]
	}
	if bad != nil {
		// The FORMERR answers none of the query's requests: no NSID
		// (RFC 5001 leaves it to a query that is answered).
		q.nsid = false
	}
	return bad
}

// parse validates a client subnet option. A source prefix longer than the
// address, an address longer than the prefix needs, bits set beyond the
// prefix or a non-zero scope in a query are format errors (RFC 7871
// section 6 and 7.1.1).
func (e *ecs) parse(data []byte) error {
	if len(data) < 4 {
		return errFormat
	}
	e.family = binary.BigEndian.Uint16(data)
	e.source = data[2]
	scope := data[3]
	addr := data[4:]
	var max int
	switch e.family {
	case 1:
		max = 32
	case 2:
		max = 128
	default:
		return errFormat
	}
	if int(e.source) > max || scope != 0 || len(addr) != (int(e.source)+7)/8 {
		return errFormat
	}
	if rem := e.source % 8; rem != 0 && addr[len(addr)-1]&(0xFF>>rem) != 0 {
		return errFormat
	}
	e.addr = [16]byte{}
	copy(e.addr[:], addr)
	e.present = true
	return nil
}

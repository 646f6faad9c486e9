package dnsserver

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/dchest/siphash"
)

// DNS cookies (RFC 7873) with interoperable server cookies (RFC 9018): a
// client sends a random client cookie; we answer with a server cookie, a
// SipHash-2-4 of the client cookie, a timestamp and the client's address
// under a server secret. A client that echoes a valid server cookie has
// shown that it receives replies at its address: it is not spoofed, so
// its UDP queries are not rate limited. Every server of a fleet that
// shares the secret accepts every other's cookies, whatever their vendor.

// CookieConfig configures DNS cookies.
type CookieConfig struct {
	// Disabled turns cookies off: the option is ignored as an unknown one
	// (RFC 7873 section 5.1).
	Disabled bool
	// Secret makes new server cookies and verifies received ones. The
	// zero value means a random secret made at start, which suits a
	// single server; a fleet behind one address (anycast) shares one.
	Secret [16]byte
	// Accept lists further secrets whose cookies are still (or already)
	// valid, for a rollover across a fleet (RFC 9018 section 4.3): add the
	// new secret here everywhere, then make it the Secret everywhere with
	// the old one here, then drop the old one.
	Accept [][16]byte
}

// ParseCookieSecret reads a secret written as 32 hexadecimal digits.
func ParseCookieSecret(s string) ([16]byte, error) {
	var k [16]byte
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil || len(b) != 16 {
		return k, errors.New("a cookie secret is 32 hexadecimal digits (128 bits)")
	}
	copy(k[:], b)
	return k, nil
}

// Cookie option sizes (RFC 7873 section 4; RFC 9018 section 4.2).
const (
	optCookie        = 10
	clientCookieLen  = 8
	serverCookieLen  = 16 // version 1: version, reserved, timestamp, hash
	minServerCookie  = 8
	maxServerCookie  = 32
	cookieVersion    = 1
	cookieMaxAge     = 3600 // a server cookie is valid this long (RFC 9018 section 4.3)
	cookieMaxAhead   = 300  // and may come from a clock this far ahead
	cookieRefreshAge = 1800 // a valid one older than this is replaced
)

// cookieState says what a query's COOKIE option proved.
type cookieState uint8

const (
	cookieNone       cookieState = iota // no option (or cookies off)
	cookieClientOnly                    // a client cookie alone (RFC 7873 section 5.2.3)
	cookieInvalid                       // with a server cookie we did not make, or an old one (5.2.4)
	cookieValid                         // with a valid server cookie of ours (5.2.5)
	cookieMalformed                     // a length no cookie can have: FORMERR (5.2.2)
	numCookieStates
)

var cookieStateNames = [numCookieStates]string{"none", "client_only", "invalid", "valid", "malformed"}

// cookie is the COOKIE option of a query and the server cookie of its
// reply.
type cookie struct {
	state  cookieState
	client [clientCookieLen]byte
	server [maxServerCookie]byte // as received
	slen   uint8
	// out is the server cookie to send: the received one when it is valid
	// and recent, else a new one.
	out [serverCookieLen]byte
}

// answered reports whether the reply carries a COOKIE option: whenever the
// query had a well-formed one.
func (c *cookie) answered() bool {
	return c.state == cookieClientOnly || c.state == cookieInvalid || c.state == cookieValid
}

// parse reads the option data (RFC 7873 section 4): an 8-octet client
// cookie, optionally followed by an 8 to 32 octet server cookie.
func (c *cookie) parse(data []byte) {
	n := len(data)
	if n != clientCookieLen && (n < clientCookieLen+minServerCookie || n > clientCookieLen+maxServerCookie) {
		c.state = cookieMalformed
		return
	}
	copy(c.client[:], data)
	c.slen = uint8(copy(c.server[:], data[clientCookieLen:]))
	c.state = cookieClientOnly
}

// cookieJar holds the secrets, as SipHash keys. It is immutable: a change
// of secrets swaps in a new jar (SetCookies).
type cookieJar struct {
	keys [][2]uint64   // keys[0] makes new cookies
	now  func() uint32 // Unix time; a field for tests
}

func newCookieJar(cfg CookieConfig) *cookieJar {
	if cfg.Disabled {
		return nil
	}
	secret := cfg.Secret
	if secret == ([16]byte{}) {
		rand.Read(secret[:])
	}
	j := &cookieJar{now: func() uint32 { return uint32(time.Now().Unix()) }}
	for _, k := range append([][16]byte{secret}, cfg.Accept...) {
		j.keys = append(j.keys, [2]uint64{binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])})
	}
	return j
}

// check decides whether c, with a client cookie, carries a valid server
// cookie for client and fills in the server cookie of the reply.
func (j *cookieJar) check(c *cookie, client netip.Addr) {
	if c.state != cookieClientOnly {
		return
	}
	now := j.now()
	if c.slen > 0 {
		c.state = cookieInvalid
		if c.slen == serverCookieLen && c.server[0] == cookieVersion {
			ts := binary.BigEndian.Uint32(c.server[4:8])
			// Serial arithmetic (RFC 1982): the clock wraps in 2106.
			age := int32(now - ts)
			key := -1
			if age <= cookieMaxAge && age >= -cookieMaxAhead {
				for i, k := range j.keys {
					if j.hash(k, c, c.server[:8], client) == binary.LittleEndian.Uint64(c.server[8:16]) {
						c.state, key = cookieValid, i
						break
					}
				}
			}
			if key == 0 && age <= cookieRefreshAge {
				// Recent and made with the current secret: echo it. One
				// made with an accepted older secret is replaced.
				copy(c.out[:], c.server[:serverCookieLen])
				return
			}
		}
	}
	var head [8]byte
	head[0] = cookieVersion
	binary.BigEndian.PutUint32(head[4:], now)
	copy(c.out[:8], head[:])
	binary.LittleEndian.PutUint64(c.out[8:], j.hash(j.keys[0], c, head[:], client))
}

// hash is the version 1 server cookie hash (RFC 9018 section 4.4):
// SipHash-2-4 over client cookie | version | reserved | timestamp |
// client address, keyed with the secret, its output in little-endian
// order as SipHash defines it.
func (j *cookieJar) hash(k [2]uint64, c *cookie, head []byte, client netip.Addr) uint64 {
	var buf [clientCookieLen + 8 + 16]byte
	n := copy(buf[:], c.client[:])
	n += copy(buf[n:], head)
	client = client.Unmap()
	if client.Is4() {
		a := client.As4()
		n += copy(buf[n:], a[:])
	} else {
		a := client.As16()
		n += copy(buf[n:], a[:])
	}
	return siphash.Hash(k[0], k[1], buf[:n])
}

// SetCookies replaces the cookie settings, at any time: a new secret
// takes effect with the next query, so that a fleet can roll its secret
// over without a restart (RFC 9018 section 4.3).
func (s *Server) SetCookies(cfg CookieConfig) {
	s.cookies.Store(newCookieJar(cfg))
}

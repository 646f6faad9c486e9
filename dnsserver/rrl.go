package dnsserver

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Response rate limiting (RRL) for UDP, after the scheme BIND and Knot
// use: a spoofed flood aims our replies at a victim, so replies to any one
// client network are limited to a rate, and the rest are dropped, except
// that every Slip-th one goes out truncated (TC, no records) so that a
// real client behind that network retries over TCP, which cannot be
// spoofed. TCP is never limited.

// RRLConfig configures response rate limiting. The zero value turns it
// off.
type RRLConfig struct {
	// ResponsesPerSecond is the rate of UDP replies each client network
	// gets, with bursts of one second's worth; 0 turns RRL off.
	ResponsesPerSecond int
	// Slip sends every Slip-th limited reply truncated instead of dropping
	// it; 0 drops them all, 1 truncates them all. BIND's default is 2.
	Slip int
	// IPv4Prefix and IPv6Prefix group clients into networks: one spoofer
	// can vary the low bits of the victim's address, not the network.
	IPv4Prefix, IPv6Prefix int
	// TableSize is the number of networks tracked at once (rounded up to a
	// power of two); more share entries, which only makes the limit
	// stricter for them.
	TableSize int
	// Exempt lists networks never limited (monitoring, known resolvers).
	Exempt []netip.Prefix
}

// DefaultRRL returns the settings production configurations start from:
// 20 replies per second per /24 or /56, every second limited reply
// truncated.
func DefaultRRL() RRLConfig {
	return RRLConfig{ResponsesPerSecond: 20, Slip: 2, IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1 << 16}
}

func (c RRLConfig) validate() error {
	if c.ResponsesPerSecond < 0 || c.ResponsesPerSecond > rrlUnit {
		return errors.New("dnsserver: rrl responses per second must be between 0 and 65536")
	}
	if c.ResponsesPerSecond == 0 {
		return nil
	}
	if c.Slip < 0 || c.Slip > 10 {
		return errors.New("dnsserver: rrl slip must be between 0 and 10")
	}
	if c.IPv4Prefix < 8 || c.IPv4Prefix > 32 || c.IPv6Prefix < 16 || c.IPv6Prefix > 128 {
		return errors.New("dnsserver: rrl prefixes must be 8-32 (IPv4) and 16-128 (IPv6)")
	}
	if c.TableSize < 1 || c.TableSize > 1<<24 {
		return errors.New("dnsserver: rrl table size must be between 1 and 16777216")
	}
	return nil
}

// rrlUnit is the time unit of the limiter: 1/65536 s, so that a time fits
// 32 bits for the 18 hours any entry needs to stay meaningful.
const rrlUnit = 1 << 16

// rrlVerdict is what to do with a reply.
type rrlVerdict uint8

const (
	rrlSend rrlVerdict = iota
	rrlDrop
	rrlSlip
)

// limiter is a lock-free table of generic cell rate algorithm states,
// one per client network: each entry packs a 32-bit tag of the network and
// the 32-bit theoretical arrival time of its next reply, updated with one
// compare-and-swap. Networks whose hashes collide share an entry or evict
// each other, which errs towards limiting less, never towards blocking a
// network that sent nothing.
type limiter struct {
	cfg      RRLConfig
	entries  []atomic.Uint64
	mask     uint64
	seed     uint64 // keeps attackers from choosing colliding networks
	interval uint32 // time units between replies
	burst    uint32 // how far ahead of now the arrival time may run
	start    int64  // nanotime at creation
	dropped  atomic.Uint64
	slipped  atomic.Uint64
	slipN    atomic.Uint64
	exempt   []netip.Prefix
}

func newLimiter(cfg RRLConfig) *limiter {
	if cfg.ResponsesPerSecond == 0 {
		return nil
	}
	size := 1
	for size < cfg.TableSize {
		size <<= 1
	}
	var seed [8]byte
	rand.Read(seed[:])
	interval := uint32(rrlUnit / cfg.ResponsesPerSecond)
	return &limiter{
		cfg:      cfg,
		entries:  make([]atomic.Uint64, size),
		mask:     uint64(size - 1),
		seed:     binary.LittleEndian.Uint64(seed[:]) | 1,
		interval: interval,
		burst:    rrlUnit, // one second's worth of replies
		start:    nanotime(),
		exempt:   cfg.Exempt,
	}
}

// network returns a hash of the client's network.
func (l *limiter) network(a netip.Addr) uint64 {
	var x uint64
	if a.Is4() {
		b := a.As4()
		x = uint64(binary.BigEndian.Uint32(b[:])) & (^uint64(0) << (32 - l.cfg.IPv4Prefix)) & 0xFFFFFFFF
		x |= 4 << 56
	} else {
		b := a.As16()
		hi := binary.BigEndian.Uint64(b[:8])
		lo := binary.BigEndian.Uint64(b[8:])
		p := l.cfg.IPv6Prefix
		if p < 64 {
			hi &= ^uint64(0) << (64 - p)
			lo = 0
		} else if p < 128 {
			lo &= ^uint64(0) << (128 - p)
		}
		x = hi ^ (lo * 0x9E3779B97F4A7C15) ^ 6<<56
	}
	x ^= l.seed
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return x
}

// slipReply is the reply sent instead of a limited one: for a client that
// sent a cookie, BADCOOKIE with a fresh server cookie, for it to retry
// over UDP with a cookie that is not limited (RFC 7873 section 5.2.3);
// for others an empty reply with TC set, for them to retry over TCP (RFC
// 7766 section 6.1.3). nil when the query's question could not be read.
func (s *Server) slipReply(q *query, out []byte, limit int) []byte {
	if q.question == nil {
		return nil
	}
	if q.cookie.answered() {
		return s.reply(q, out, nil, dns.RcodeBadCookie, limit)
	}
	return s.reply(q, out, truncated, dns.RcodeSuccess, minUDPSize)
}

// check accounts one reply to client and says what to do with it.
func (l *limiter) check(client netip.Addr) rrlVerdict {
	if !client.IsValid() {
		return rrlSend
	}
	for _, p := range l.exempt {
		if p.Contains(client) {
			return rrlSend
		}
	}
	h := l.network(client)
	e := &l.entries[h&l.mask]
	tag := uint32(h >> 32)
	now := uint32((nanotime() - l.start) * rrlUnit / 1e9)
	for {
		old := e.Load()
		tat := uint32(old)
		ahead := int32(tat - now) // serial arithmetic: times wrap every 18 h
		if uint32(old>>32) != tag || ahead < 0 || uint32(ahead) > l.burst+l.interval {
			// Another network's entry, an idle one, or one too old to
			// compare: start afresh.
			tat, ahead = now, 0
		}
		if uint32(ahead)+l.interval > l.burst {
			break // over the rate: the reply is limited
		}
		if e.CompareAndSwap(old, uint64(tag)<<32|uint64(tat+l.interval)) {
			return rrlSend
		}
	}
	if s := l.cfg.Slip; s > 0 && l.slipN.Add(1)%uint64(s) == 0 {
		l.slipped.Add(1)
		return rrlSlip
	}
	l.dropped.Add(1)
	return rrlDrop
}

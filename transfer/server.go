package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// messageSize is how many octets of records, uncompressed, go into one
// transfer message: well below the 65535 a TCP message may hold (RFC
// 1035 section 4.2.2), with room for the question and a TSIG record.
const messageSize = 32 * 1024

// fudge is the TSIG time fudge of our signatures, in seconds (RFC 8945
// section 10 recommends 300).
const fudge = 300

// Server answers zone transfers and sends NOTIFY for the zones it is
// given with Publish. Its methods are safe for concurrent use.
type Server struct {
	acl         *acl
	notifier    *notifier
	logger      *slog.Logger
	journalSize int
	counts      *counters

	pubMu sync.Mutex // serialises Publish
	mu    sync.Mutex // guards snap and zones, held briefly
	snap  *zones.Snapshot
	zones map[string]*zoneState // by origin: zones that may be transferred or are notified
}

// zoneState is what Publish keeps of one zone.
type zoneState struct {
	serial uint32
	j      journal
}

// New returns a Server for cfg, which must be valid (Config.Validate).
// NOTIFY is sent only while Run runs.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.JournalSize == 0 {
		cfg.JournalSize = DefaultJournalSize
	}
	a := newACL(&cfg)
	c := &counters{}
	return &Server{acl: a, notifier: newNotifier(&cfg, a.keys, c, logger), logger: logger,
		journalSize: cfg.JournalSize, counts: c, zones: map[string]*zoneState{}}, nil
}

// Run sends NOTIFY messages until ctx is done, then stops those still
// being retried. It starts by notifying the secondaries of every zone
// published before it ran: the zones may have changed while the server
// was down.
func (s *Server) Run(ctx context.Context) error {
	s.notifier.start(ctx)
	s.mu.Lock()
	snap := s.snap
	s.mu.Unlock()
	if snap != nil {
		for _, origin := range snap.Zones() {
			if s.notifier.covers(origin) {
				s.notifier.changed(origin, snap.SOA(origin))
			}
		}
	}
	<-ctx.Done()
	s.notifier.stop()
	return nil
}

// Publish makes snap the snapshot transfers are served from. For each
// zone whose serial changed since the last snapshot it records the
// differences in the zone's journal (for IXFR) and notifies the zone's
// secondaries; it notifies them of every zone of the first snapshot too,
// as the server may have changed while it was down. It runs off the
// query path, after the DNS server took snap; its cost is a comparison
// of the old and new records of each changed zone; a snapshot that
// zones.Patch made from the one before says which zones changed, and
// the others are not looked at.
func (s *Server) Publish(snap *zones.Snapshot) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	prev, old := s.snap, s.zones
	s.mu.Unlock()
	next := make(map[string]*zoneState, len(old))
	origins := snap.Zones()
	if ch := snap.Change(); prev != nil && ch.From != 0 && ch.From == prev.Version {
		// Only the zones the snapshot changed can have a new serial.
		next = maps.Clone(old)
		origins = nil
		seen := map[string]bool{}
		for _, refs := range [][]*zones.ZoneRef{ch.Removed, ch.Added} {
			for _, r := range refs {
				if !seen[r.Origin] {
					seen[r.Origin] = true
					origins = append(origins, r.Origin)
				}
			}
		}
	}
	type change struct {
		origin string
		soa    *dns.SOA
	}
	var changed []change
	for _, origin := range origins {
		soa := snap.SOA(origin)
		if soa == nil { // removed
			delete(next, origin)
			continue
		}
		covered, notified := s.acl.covers(origin), s.notifier.covers(origin)
		if !covered && !notified {
			continue
		}
		zs := old[origin]
		switch {
		case zs == nil:
			zs = &zoneState{serial: soa.Serial}
			if covered {
				snap.TransferRecords(origin) // made now rather than by the first transfer
			}
		case zs.serial == soa.Serial:
			next[origin] = zs
			continue
		default:
			// The journal is copied, not changed in place: transfers
			// running read the old one without a lock.
			zs = &zoneState{serial: soa.Serial, j: zs.j}
			zs.j.deltas = append([]*delta(nil), zs.j.deltas...)
			if covered && prev != nil {
				s.record(zs, prev, snap, origin)
			}
		}
		next[origin] = zs
		changed = append(changed, change{origin, soa})
	}
	s.mu.Lock()
	s.snap, s.zones = snap, next
	s.mu.Unlock()
	for _, c := range changed {
		s.notifier.changed(c.origin, c.soa)
	}
}

// record adds to zs's journal the difference between origin in prev and
// in snap.
func (s *Server) record(zs *zoneState, prev, snap *zones.Snapshot, origin string) {
	start := time.Now()
	was := prev.TransferRecords(origin)
	if was == nil {
		zs.j = journal{}
		return
	}
	cur := snap.TransferRecords(origin)
	del, add := diff(was[1:], cur[1:])
	d := &delta{from: was[0].(*dns.SOA), to: cur[0].(*dns.SOA), del: del, add: add}
	zs.j.add(d, s.journalSize, max(len(cur), 1024))
	s.counts.journals.Add(1)
	s.logger.Info("Zone change journaled for IXFR", "zone", origin, "from", d.from.Serial, "to", d.to.Serial,
		"deleted", len(del), "added", len(add), "journal", len(zs.j.deltas), "took", time.Since(start).Round(time.Microsecond).String())
}

// current returns the snapshot served and the state of origin in it.
func (s *Server) current(origin string) (*zones.Snapshot, *zoneState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, s.zones[origin]
}

// request is a transfer query, parsed and checked.
type request struct {
	msg    *dns.Msg
	origin string
	key    *key   // the key that signed it, verified; nil when unsigned
	mac    string // its TSIG MAC, which our first reply's covers
}

// errFormat is a query no transfer can come of.
var errFormat = errors.New("transfer: malformed query")

// ServeTCP answers an AXFR or IXFR query received over TCP from client,
// writing each message of the reply with write, and returns when the
// reply is complete or write failed (the client went away: nothing is
// left behind). It implements dnsserver.Transferer.
func (s *Server) ServeTCP(ctx context.Context, query []byte, client netip.AddrPort, write func([]byte) error) error {
	kind := kindAXFR
	if len(query) > 0 && transferType(query) == dns.TypeIXFR {
		kind = kindIXFR
	}
	r, reply, res := s.check(query, client.Addr())
	if r == nil {
		s.counts.requests[kind][res].Add(1)
		if reply == nil {
			return errFormat
		}
		return write(reply)
	}
	if r.msg.Question[0].Qtype == dns.TypeIXFR {
		kind = kindIXFR
	} else {
		kind = kindAXFR
	}
	start := time.Now()
	snap, zs := s.current(r.origin)
	if zs == nil || snap.SOA(r.origin) == nil {
		s.counts.requests[kind][resultRefused].Add(1)
		return write(r.mustPack(r.reply(dns.RcodeRefused))) // gone since check
	}
	soa := snap.SOA(r.origin)
	var rrs []dns.RR
	how := "AXFR"
	if kind == kindIXFR {
		from := r.msg.Ns[0].(*dns.SOA).Serial
		switch ch := zs.j.chain(from, soa.Serial); {
		case !zones.SerialLess(from, soa.Serial):
			// Up to date, or ahead: the current SOA alone (RFC 1995
			// section 2).
			how, rrs = "IXFR up to date", []dns.RR{soa}
		case ch != nil:
			how, rrs = "IXFR", ixfrRecords(soa, ch)
		default:
			// Not in the journal: the whole zone, in IXFR's reply as in
			// AXFR's (RFC 1995 section 4).
			how = "IXFR, whole zone"
		}
	}
	parts := [][]dns.RR{rrs}
	if rrs == nil {
		// The zone's list is shared: the closing SOA goes apart.
		rrs = snap.TransferRecords(r.origin)
		parts = [][]dns.RR{rrs, {soa}}
	}
	msgs, err := s.stream(ctx, r, write, parts...)
	if err != nil {
		s.counts.requests[kind][resultCut].Add(1)
		s.logger.Warn("Zone transfer cut", "zone", r.origin, "client", client.String(), "type", how, "messages", msgs, "err", err)
		return err
	}
	s.counts.requests[kind][resultOK].Add(1)
	s.logger.Info("Zone transfer", "zone", r.origin, "client", client.String(), "type", how, "serial", soa.Serial,
		"records", records(parts), "messages", msgs, "key", keyLabel(r.key), "took", time.Since(start).Round(time.Microsecond).String())
	return nil
}

// ServeUDP answers an IXFR query received over UDP: with the current SOA
// alone, which tells a client that is behind to ask again over TCP and
// one that is not that it is up to date (RFC 1995 section 2). A refused
// or unauthenticated query gets its error. It implements
// dnsserver.Transferer.
func (s *Server) ServeUDP(query []byte, client netip.AddrPort) []byte {
	r, reply, res := s.check(query, client.Addr())
	if r == nil {
		s.counts.requests[kindIXFRUDP][res].Add(1)
		return reply
	}
	snap, _ := s.current(r.origin)
	soa := snap.SOA(r.origin)
	if soa == nil {
		s.counts.requests[kindIXFRUDP][resultRefused].Add(1)
		return r.mustPack(r.reply(dns.RcodeRefused)) // gone since check
	}
	s.counts.requests[kindIXFRUDP][resultOK].Add(1)
	m := r.reply(dns.RcodeSuccess)
	m.Answer = []dns.RR{dns.Copy(soa)} // packing writes to it
	out, _, err := r.pack(m, r.mac, false)
	if err != nil {
		return nil
	}
	return out
}

// check parses a transfer query and decides whether to serve it. It
// returns the request, or the reply that ends it and its result (for
// the counters): FORMERR for a query that does not parse or an IXFR
// without the client's SOA, NOTAUTH with the TSIG error (BADKEY, BADSIG,
// BADTIME) for a signature that does not verify (RFC 8945 section 5.2),
// REFUSED for a zone we do not serve or a client the rules do not allow.
func (s *Server) check(query []byte, addr netip.Addr) (*request, []byte, int) {
	m := new(dns.Msg)
	if err := m.Unpack(query); err != nil || len(m.Question) != 1 {
		return nil, formErr(query), resultFormErr
	}
	q := m.Question[0]
	r := &request{msg: m, origin: zones.CanonicalName(q.Name)}
	if t := m.IsTsig(); t != nil {
		r.mac = t.MAC
		k, terr := s.verify(query, t)
		if terr != dns.RcodeSuccess {
			s.logger.Info("Zone transfer refused: TSIG", "zone", r.origin, "client", addr.String(), "key", t.Hdr.Name, "error", dns.RcodeToString[int(terr)])
			return nil, tsigError(m, t, terr, k), resultNotAuth
		}
		r.key = k
	}
	if q.Qtype == dns.TypeIXFR {
		if len(m.Ns) == 0 {
			return nil, r.mustPack(r.reply(dns.RcodeFormatError)), resultFormErr
		}
		if _, ok := m.Ns[0].(*dns.SOA); !ok {
			return nil, r.mustPack(r.reply(dns.RcodeFormatError)), resultFormErr
		}
	}
	snap, zs := s.current(r.origin)
	if q.Qclass != dns.ClassINET || snap == nil || zs == nil || snap.SOA(r.origin) == nil ||
		!s.acl.allowed(r.origin, addr, keyLabel(r.key)) {
		s.logger.Info("Zone transfer refused", "zone", r.origin, "client", addr.String(), "key", keyLabel(r.key))
		return nil, r.mustPack(r.reply(dns.RcodeRefused)), resultRefused
	}
	return r, nil, resultOK
}

// verify checks the TSIG t of a query against our keys: BADKEY for a key
// we do not have, or have with another algorithm; BADSIG for a MAC that
// does not verify; BADTIME for a signature outside its fudge (RFC 8945
// section 5.2).
func (s *Server) verify(query []byte, t *dns.TSIG) (*key, uint16) {
	k := s.acl.keys[keyName(t.Hdr.Name)]
	if k == nil || dns.CanonicalName(t.Algorithm) != k.alg {
		return nil, dns.RcodeBadKey
	}
	// A copy: TsigVerify writes the TSIG's original ID into the header
	// of the message it is given (found by FuzzTransfer).
	switch err := dns.TsigVerify(slices.Clone(query), k.secret, "", false); {
	case err == nil:
		return k, dns.RcodeSuccess
	case errors.Is(err, dns.ErrTime):
		return k, dns.RcodeBadTime
	default:
		return nil, dns.RcodeBadSig
	}
}

// tsigError is the NOTAUTH reply to a query whose TSIG failed with terr:
// unsigned for BADKEY and BADSIG, signed with k for BADTIME (RFC 8945
// section 5.3.2).
func tsigError(m *dns.Msg, t *dns.TSIG, terr uint16, k *key) []byte {
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeNotAuth)
	ts := &dns.TSIG{
		Hdr: dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		// Fqdn: an algorithm given as the root unpacks as "", which
		// would pack shorter than the RDLENGTH counted for it (found by
		// FuzzTransfer).
		Algorithm: dns.Fqdn(t.Algorithm), TimeSigned: t.TimeSigned, Fudge: t.Fudge, OrigId: m.Id, Error: terr,
	}
	r.Extra = []dns.RR{ts}
	if terr == dns.RcodeBadTime && k != nil {
		ts.TimeSigned = uint64(time.Now().Unix())
		if out, _, err := dns.TsigGenerate(r, k.secret, t.MAC, false); err == nil {
			return out
		}
		return nil
	}
	out, err := r.Pack()
	if err != nil {
		return nil
	}
	return out
}

// formErr is FORMERR in reply to a query that does not parse: its header
// with QR set and nothing else (RFC 1035 section 4.1.1).
func formErr(query []byte) []byte {
	if len(query) < 12 {
		return nil
	}
	out := make([]byte, 12)
	copy(out, query[:4])
	flags := binary.BigEndian.Uint16(out[2:])
	binary.BigEndian.PutUint16(out[2:], flags&(0xF<<11|1<<8)|1<<15|dns.RcodeFormatError)
	return out
}

// reply returns the header of a reply to r with rcode.
func (r *request) reply(rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r.msg, rcode)
	m.Authoritative = rcode == dns.RcodeSuccess
	m.RecursionDesired = false
	return m
}

// pack packs m, signed when r was: the first message of a reply with
// the query's MAC, each later one with the MAC of the message before it
// and the timers only (RFC 8945 section 5.3.1). It returns the message
// and its MAC.
func (r *request) pack(m *dns.Msg, prevMAC string, timersOnly bool) ([]byte, string, error) {
	m.Compress = true
	if r.key == nil {
		out, err := m.Pack()
		return out, "", err
	}
	m.SetTsig(r.key.name, r.key.alg, fudge, time.Now().Unix())
	return dns.TsigGenerate(m, r.key.secret, prevMAC, timersOnly)
}

// mustPack packs a small reply; a failure leaves the client without one.
func (r *request) mustPack(m *dns.Msg) []byte {
	out, _, err := r.pack(m, r.mac, false)
	if err != nil {
		return nil
	}
	return out
}

// stream writes the records of parts, in order, as a sequence of
// messages of at most messageSize octets of records, the question in the
// first (RFC 5936 section 2.2), and returns how many it wrote.
func (s *Server) stream(ctx context.Context, r *request, write func([]byte) error, parts ...[]dns.RR) (int, error) {
	mac, n := r.mac, 0
	flush := func(chunk []dns.RR) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := r.reply(dns.RcodeSuccess)
		if n > 0 {
			m.Question = nil
		}
		m.Answer = chunk
		out, next, err := r.pack(m, mac, n > 0)
		if err != nil {
			return fmt.Errorf("pack message %d: %w", n+1, err)
		}
		if err := write(out); err != nil {
			return err
		}
		mac = next
		n++
		return nil
	}
	var chunk []dns.RR
	size := 0
	for _, rrs := range parts {
		for _, rr := range rrs {
			l := dns.Len(rr)
			if size+l > messageSize && len(chunk) > 0 {
				if err := flush(chunk); err != nil {
					return n, err
				}
				clear(chunk)
				chunk, size = chunk[:0], 0
			}
			// A copy: packing sets the record's Rdlength, and the
			// records are shared with the snapshot and other transfers.
			chunk = append(chunk, dns.Copy(rr))
			size += l
		}
	}
	if err := flush(chunk); err != nil {
		return n, err
	}
	return n, nil
}

// keyLabel names k for ACLs and logs: "" when there is none.
func keyLabel(k *key) string {
	if k == nil {
		return ""
	}
	return k.name
}

// records counts the records of parts.
func records(parts [][]dns.RR) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// transferType returns the type of a query's question, 0 when it cannot
// be read: for the counters, before the query is parsed.
func transferType(query []byte) uint16 {
	off := 12
	for off < len(query) && query[off] != 0 {
		if query[off]&0xC0 != 0 {
			return 0
		}
		off += int(query[off]) + 1
	}
	if off+3 > len(query) {
		return 0
	}
	return uint16(query[off+1])<<8 | uint16(query[off+2])
}

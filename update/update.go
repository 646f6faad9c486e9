// Package update applies dynamic updates (RFC 2136) signed with TSIG
// (RFC 8945) to the zones of a Backend, under a per-key policy: which
// names and types of which zones a key may change. It implements
// dnsserver.Updater; the server hands it every UPDATE message it reads.
package update

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// ErrNoZone is returned by a Backend that holds no zone of the name
// asked for.
var ErrNoZone = errors.New("update: no such zone")

// Backend holds the zones updates change.
type Backend interface {
	// Update reads the zone origin as it is now, calls change with it
	// and stores the records change returns in place of the zone's
	// records, all of them or none; when change returns an error or the
	// records it returns fail validation, nothing is stored. It returns
	// ErrNoZone for a zone it does not hold. Calls for one zone must not
	// interleave; the Updater serializes its own.
	Update(ctx context.Context, origin string, change func(z *zones.Zone) ([]dns.RR, error)) error
}

// fudge is the TSIG fudge of signed replies (RFC 8945 section 10: 300 s).
const fudge = 300

// timeout bounds the time one UPDATE spends in the Backend.
const timeout = 10 * time.Second

// Updater answers UPDATE messages. It is safe for concurrent use.
type Updater struct {
	backend Backend
	secrets map[string]string // canonical key name -> base64 secret, for dns.TsigVerify
	algs    map[string]string // canonical key name -> canonical algorithm name
	rules   map[string][]rule // canonical key name -> its rules
	logger  *slog.Logger
	counts  counters
	mu      sync.Mutex // one UPDATE at a time: prerequisites and changes are checked and made together
}

// New returns an Updater applying to b the updates c allows. A nil
// logger discards logs.
func New(c Config, b Backend, logger *slog.Logger) (*Updater, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u := &Updater{backend: b, secrets: map[string]string{}, algs: map[string]string{}, rules: map[string][]rule{}, logger: logger}
	for _, k := range c.Keys {
		n := canonical(k.Name)
		u.secrets[n] = k.Secret
		u.algs[n] = canonical(k.DNSAlgorithm())
	}
	for _, r := range c.Rules {
		n := canonical(r.Key)
		u.rules[n] = append(u.rules[n], compile(r))
	}
	return u, nil
}

// ServeUpdate implements dnsserver.Updater. An UPDATE without a TSIG is
// REFUSED, one whose TSIG fails gets NOTAUTH (RFC 8945 section 5.2);
// then the zone section must name one of the backend's zones (NOTAUTH
// otherwise, RFC 2136 section 3.1), the prerequisites must hold (section
// 3.2), the changes must be well formed and inside the zone (FORMERR,
// NOTZONE, section 3.4.1) and the key's policy must allow every one
// (REFUSED, section 3.3). Only then are they applied, together, with the
// SOA serial one higher.
func (u *Updater) ServeUpdate(query []byte, client netip.AddrPort) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(query); err != nil || req.Opcode != dns.OpcodeUpdate {
		return nil
	}
	r := new(dns.Msg)
	r.SetRcode(req, dns.RcodeSuccess)
	r.Opcode = dns.OpcodeUpdate
	r.Ns, r.Answer, r.Extra = nil, nil, nil
	from := client.Addr().Unmap().String()
	ts := req.IsTsig()
	if ts == nil {
		u.logger.Info("UPDATE refused: not signed", "client", from)
		u.counts.requests[resultRefused].Add(1)
		return pack(r.SetRcode(req, dns.RcodeRefused))
	}
	key := canonical(ts.Hdr.Name)
	if terr := u.verify(query, ts, key); terr != dns.RcodeSuccess {
		u.logger.Warn("UPDATE refused: TSIG", "client", from, "key", key, "error", dns.RcodeToString[int(terr)])
		u.counts.requests[resultNotAuth].Add(1)
		return tsigError(req, ts, terr, u.secrets[key])
	}
	rcode, changed := u.serve(req, key, from)
	u.counts.requests[resultOf(rcode, changed)].Add(1)
	r.SetRcode(req, rcode)
	r.Ns, r.Answer, r.Extra = nil, nil, nil
	r.SetTsig(ts.Hdr.Name, ts.Algorithm, fudge, time.Now().Unix())
	out, _, err := dns.TsigGenerate(r, u.secrets[key], ts.MAC, false)
	if err != nil {
		return nil
	}
	return out
}

// serve checks and applies a verified UPDATE and returns its rcode and
// whether the zone changed.
func (u *Updater) serve(req *dns.Msg, key, from string) (int, bool) {
	if len(req.Question) != 1 || req.Question[0].Qtype != dns.TypeSOA {
		return dns.RcodeFormatError, false // RFC 2136 section 3.1.1: one zone, type SOA
	}
	origin := canonical(req.Question[0].Name)
	if req.Question[0].Qclass != dns.ClassINET {
		return dns.RcodeNotAuth, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), keyNameKey{}, key), timeout)
	defer cancel()
	var serial, old uint32
	var changed bool
	err := u.backend.Update(ctx, origin, func(z *zones.Zone) ([]dns.RR, error) {
		rrs := make([]dns.RR, len(z.Records))
		for i, r := range z.Records {
			rrs[i] = r.RR
		}
		if err := checkPrereqs(origin, rrs, req.Answer); err != nil {
			return nil, err
		}
		// The prescan before the policy, so that a name outside the zone
		// gets NOTZONE and a malformed change FORMERR, not REFUSED.
		if err := prescan(z, req.Ns); err != nil {
			return nil, err
		}
		for _, x := range req.Ns {
			h := x.Header()
			if !u.allowed(key, origin, canonical(h.Name), h.Rrtype) {
				return nil, fail(dns.RcodeRefused, "key "+key+" may not change "+h.Name+" "+dns.TypeToString[h.Rrtype])
			}
		}
		if i := indexType(rrs, origin, dns.TypeSOA); i >= 0 {
			old = rrs[i].(*dns.SOA).Serial
		}
		out, ch := applyUpdates(origin, rrs, req.Ns)
		if !ch {
			return nil, errUnchanged
		}
		changed = true
		serial = bumpSerial(origin, out, old)
		return out, nil
	})
	var re *rcodeError
	switch {
	case err == nil || errors.Is(err, errUnchanged):
	case errors.Is(err, ErrNoZone):
		u.logger.Info("UPDATE refused: not our zone", "zone", origin, "client", from, "key", key)
		return dns.RcodeNotAuth, false
	case errors.As(err, &re):
		u.logger.Info("UPDATE refused", "zone", origin, "client", from, "key", key, "rcode", dns.RcodeToString[re.rcode], "reason", re.reason)
		return re.rcode, false
	default:
		u.logger.Error("UPDATE failed", "zone", origin, "client", from, "key", key, "err", err)
		if errors.Is(err, ErrRefused) {
			return dns.RcodeRefused, false
		}
		return dns.RcodeServerFailure, false
	}
	if changed {
		u.logger.Info("UPDATE applied", "zone", origin, "client", from, "key", key, "changes", len(req.Ns), "old_serial", old, "serial", serial)
	} else {
		u.logger.Info("UPDATE changed nothing", "zone", origin, "client", from, "key", key)
	}
	return dns.RcodeSuccess, changed
}

// keyNameKey is the context key of the TSIG key name an update is signed
// with.
type keyNameKey struct{}

// KeyName returns the name of the TSIG key that signed the update whose
// Backend.Update ctx is, for the backend's audit log; "" outside one.
func KeyName(ctx context.Context) string {
	name, _ := ctx.Value(keyNameKey{}).(string)
	return name
}

// errUnchanged stops a Backend.Update whose changes change nothing.
var errUnchanged = errors.New("update: nothing changed")

// ErrRefused wraps a Backend error that is the operator's choice rather
// than a fault (a zone updates may not change): the client gets REFUSED.
var ErrRefused = errors.New("update: refused")

// allowed reports whether one of key's rules allows changing the RRset
// of type t at name in zone.
func (u *Updater) allowed(key, zone, name string, t uint16) bool {
	for _, r := range u.rules[key] {
		if r.allows(zone, name, t) {
			return true
		}
	}
	return false
}

// verify checks the TSIG t of query: BADKEY for a key we do not have,
// or have with another algorithm; BADSIG for a MAC that does not
// verify; BADTIME for a signature outside its fudge (RFC 8945 section
// 5.2).
func (u *Updater) verify(query []byte, t *dns.TSIG, key string) uint16 {
	if u.secrets[key] == "" || canonical(t.Algorithm) != u.algs[key] {
		return dns.RcodeBadKey
	}
	// A copy: TsigVerify writes the TSIG's original ID into the header.
	switch err := dns.TsigVerify(slices.Clone(query), u.secrets[key], "", false); {
	case err == nil:
		return dns.RcodeSuccess
	case errors.Is(err, dns.ErrTime):
		return dns.RcodeBadTime
	default:
		return dns.RcodeBadSig
	}
}

// tsigError is the NOTAUTH reply to an UPDATE whose TSIG failed with
// terr: unsigned for BADKEY and BADSIG, signed for BADTIME (RFC 8945
// section 5.3.2).
func tsigError(m *dns.Msg, t *dns.TSIG, terr uint16, secret string) []byte {
	r := new(dns.Msg)
	r.SetRcode(m, dns.RcodeNotAuth)
	r.Opcode = dns.OpcodeUpdate
	r.Ns, r.Answer = nil, nil
	ts := &dns.TSIG{
		Hdr:       dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: dns.Fqdn(t.Algorithm), TimeSigned: t.TimeSigned, Fudge: t.Fudge, OrigId: m.Id, Error: terr,
	}
	r.Extra = []dns.RR{ts}
	if terr == dns.RcodeBadTime && secret != "" {
		ts.TimeSigned = uint64(time.Now().Unix())
		if out, _, err := dns.TsigGenerate(r, secret, t.MAC, false); err == nil {
			return out
		}
		return nil
	}
	return pack(r)
}

func pack(m *dns.Msg) []byte {
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

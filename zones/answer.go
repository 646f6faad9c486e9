package zones

import (
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Answer is a precomputed response to one kind of query: its rcode, the
// AA flag, the records of each section and the same records packed in
// wire format, ready to be appended after the question of a reply.
//
// Wire is valid after any question for the name the answer was found for:
// records owned by the query name are written with a compression pointer
// to offset 12 (where the question name starts), and other names either
// point into the question (answers of exact names, whose question length is
// fixed) or are written in full (wildcard, referral and negative answers,
// which serve names of any length).
type Answer struct {
	Rcode         int
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR

	// Wire holds the answer, authority and additional sections.
	Wire []byte
	// Count holds ANCOUNT, NSCOUNT and ARCOUNT for Wire.
	Count [3]uint16
	// NoExtraLen is the length of Wire without the additional section,
	// used when a reply must shed it to fit the client's buffer.
	NoExtraLen int
	// ExtraRequired marks glue that a referral cannot do without: when it
	// does not fit, the reply is truncated (RFC 9471 section 3).
	ExtraRequired bool

	// Pool, when set, makes the answer dynamic: the server appends the
	// pool's records of PoolFamily (0 IPv4, 1 IPv6) chosen for the client
	// after Wire, which then holds only a CNAME chain leading to the pool.
	Pool       *CompiledPool
	PoolFamily int
	// PoolOwner is the owner name to write for pool records when it is not
	// the query name (after a CNAME chain); nil means the query name.
	PoolOwner []byte

	// Zone is the zone the answer comes from, for per-zone statistics.
	Zone *ZoneRef

	// DO is the answer for queries with the DNSSEC OK bit when the zone
	// is signed; nil in unsigned zones.
	DO *Signed
}

// builder computes the answers of one zone.
type builder struct {
	now   time.Time // for slow starts
	t     *zoneTree
	soa   *dns.SOA        // the SOA of negative answers
	pools []*CompiledPool // in definition order
}

// maxChain bounds in-zone CNAME chasing; longer chains are left to the
// resolver, as are loops.
const maxChain = 8

// answers fills in the answers of a node that is authoritative data.
func (b *builder) answers(n *node) {
	owner := n.name
	exact := !isWildcard(n.name)
	n.answers = map[uint16]*Answer{}
	if cn := n.rrsets[dns.TypeCNAME]; len(cn) > 0 {
		b.cnameAnswers(n, cn, owner, exact)
		return
	}
	for t, rrs := range n.rrsets {
		a := &Answer{Authoritative: true, Answer: rrs, Extra: b.additional(rrs)}
		n.answers[t] = b.packFor(a, owner, exact)
	}
	n.other = b.t.nodata
	n.any = n.other
	if t := lowestType(n.rrsets); t != 0 {
		// RFC 8482 section 4.2: answer ANY with one RRset.
		n.any = n.answers[t]
	}
	if n.pool != nil {
		for f, t := range poolTypes {
			if n.pool.Family[f].Configured {
				n.answers[t] = &Answer{Authoritative: true, Pool: n.pool, PoolFamily: f}
				n.any = n.answers[t]
			}
		}
	}
}

// poolTypes are the query types a pool answers, by family index.
var poolTypes = [2]uint16{dns.TypeA, dns.TypeAAAA}

// cnameAnswers computes the answers of a CNAME node: the CNAME itself for
// CNAME and ANY queries, and the in-zone chain for everything else
// (RFC 1034 section 4.3.2 step 3a; RFC 6604 for the final rcode).
func (b *builder) cnameAnswers(n *node, cn []dns.RR, owner string, exact bool) {
	own := b.packFor(&Answer{Authoritative: true, Answer: cn}, owner, exact)
	n.answers[dns.TypeCNAME] = own
	n.any = own

	chain := append([]dns.RR(nil), cn...)
	seen := map[string]bool{n.name: true}
	target := CanonicalName(cn[0].(*dns.CNAME).Target)
	for hop := 0; ; hop++ {
		if hop == maxChain || seen[target] || !dns.IsSubDomain(b.t.origin, target) {
			// Out of zone, a loop or too long: the resolver goes on from here.
			n.other = b.packFor(&Answer{Authoritative: true, Answer: chain}, owner, exact)
			return
		}
		seen[target] = true
		tn, cut, rcode := b.resolve(target)
		if cut != nil {
			b.chainToReferral(n, chain, cut, target, owner, exact)
			return
		}
		if tn == nil {
			if rcode == dns.RcodeNameError {
				n.other = b.packFor(&Answer{Rcode: rcode, Authoritative: true, Answer: chain, Ns: []dns.RR{b.soa}}, owner, exact)
			} else {
				n.other = b.packFor(&Answer{Authoritative: true, Answer: chain}, owner, exact)
			}
			return
		}
		if tn.pool != nil {
			for f, t := range poolTypes {
				if tn.pool.Family[f].Configured {
					a := b.packFor(&Answer{Authoritative: true, Answer: chain}, owner, exact)
					a.Pool, a.PoolFamily, a.PoolOwner = tn.pool, f, tn.pool.OwnerWire
					n.answers[t] = a
				}
			}
		}
		if next := tn.rrsets[dns.TypeCNAME]; len(next) > 0 {
			chain = append(chain, next...)
			target = CanonicalName(next[0].(*dns.CNAME).Target)
			continue
		}
		for t, rrs := range tn.rrsets {
			full := append(append([]dns.RR(nil), chain...), rrs...)
			a := &Answer{Authoritative: true, Answer: full, Extra: b.additional(rrs)}
			n.answers[t] = b.packFor(a, owner, exact)
		}
		n.other = b.packFor(&Answer{Authoritative: true, Answer: chain, Ns: []dns.RR{b.soa}}, owner, exact)
		return
	}
}

// resolve looks up a CNAME target inside the zone at build time. It
// returns the node holding the target's data (for a wildcard match, a copy
// of the wildcard's records renamed to target); or the delegation point
// when the target is at or below a zone cut; or neither, with NXDOMAIN.
func (b *builder) resolve(target string) (*node, *node, int) {
	if cut := b.topCut(target); cut != nil {
		return nil, cut, dns.RcodeSuccess
	}
	if n := b.t.node(target); n != nil {
		return n, nil, dns.RcodeSuccess
	}
	for name := parentName(target); name != ""; name = parentName(name) {
		enc := b.t.node(name)
		if enc == nil {
			continue
		}
		if enc.wildcard == nil {
			return nil, nil, dns.RcodeNameError
		}
		// RFC 4592 section 3.3.1: synthesize from the source of synthesis.
		syn := &node{name: target, rrsets: map[uint16][]dns.RR{}}
		for t, rrs := range enc.wildcard.rrsets {
			for _, rr := range rrs {
				c := dns.Copy(rr)
				c.Header().Name = target
				syn.rrsets[t] = append(syn.rrsets[t], c)
			}
		}
		return syn, nil, dns.RcodeSuccess
	}
	return nil, nil, dns.RcodeNameError
}

// chainToReferral sets the answers of a CNAME node whose chain leads to
// cut's delegation: after restarting at the target, the lookup reaches a
// zone cut (RFC 1034 section 4.3.2, steps 3a then 3b), so the reply holds
// the chain, which is ours, then the referral: the child's NS RRset in
// authority and its glue in additional, required when in-domain (RFC
// 9471). AA stays set, for the chain, as it goes with the first owner
// name of the answer (RFC 1035 section 4.1.1). DS at the cut itself is
// the parent's data and is answered from this zone (RFC 4035 section
// 3.1.4.1).
func (b *builder) chainToReferral(n *node, chain []dns.RR, cut *node, target, owner string, exact bool) {
	ref := b.referral(cut)
	a := b.packFor(&Answer{Authoritative: true, Answer: chain, Ns: ref.Ns, Extra: ref.Extra, ExtraRequired: ref.ExtraRequired}, owner, exact)
	n.other = a
	if target != cut.name {
		return
	}
	if ds := cut.rrsets[dns.TypeDS]; len(ds) > 0 {
		full := append(append([]dns.RR(nil), chain...), ds...)
		n.answers[dns.TypeDS] = b.packFor(&Answer{Authoritative: true, Answer: full}, owner, exact)
	} else {
		n.answers[dns.TypeDS] = b.packFor(&Answer{Authoritative: true, Answer: chain, Ns: []dns.RR{b.soa}}, owner, exact)
	}
}

// additional returns the in-zone A and AAAA records of the names that
// NS, MX and SRV records point to (RFC 1035 section 3.3.9, RFC 2782).
func (b *builder) additional(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		target := additionalTarget(rr)
		if target == "" || seen[target] {
			continue
		}
		seen[target] = true
		if n := b.t.node(target); n != nil && n.referral == nil {
			out = append(out, n.rrsets[dns.TypeA]...)
			out = append(out, n.rrsets[dns.TypeAAAA]...)
		}
	}
	return out
}

func additionalTarget(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.NS:
		return CanonicalName(rr.Ns)
	case *dns.MX:
		return CanonicalName(rr.Mx)
	case *dns.SRV:
		return CanonicalName(rr.Target)
	}
	return ""
}

// topCut returns the delegation point closest to the apex at or above
// name, or nil when name is authoritative data.
func (b *builder) topCut(name string) *node {
	var top *node
	for n := name; n != "" && n != b.t.origin; n = parentName(n) {
		if nd := b.t.node(n); nd != nil && nd.cut {
			top = nd
		}
	}
	return top
}

// referral builds the answer for names at or below a delegation point:
// not authoritative, the NS RRset in authority and glue in additional
// (RFC 1034 section 4.3.2 step 3b). Glue below the cut is required; an
// address of a name elsewhere in the zone is a courtesy (RFC 9471).
func (b *builder) referral(cut *node) *Answer {
	a := &Answer{Ns: cut.rrsets[dns.TypeNS]}
	for _, rr := range a.Ns {
		target := CanonicalName(rr.(*dns.NS).Ns)
		n := b.t.node(target)
		if n == nil {
			continue
		}
		if dns.IsSubDomain(cut.name, target) {
			a.ExtraRequired = a.ExtraRequired || len(n.rrsets[dns.TypeA])+len(n.rrsets[dns.TypeAAAA]) > 0
		} else if n.referral != nil {
			continue // glue of another delegation
		}
		a.Extra = append(a.Extra, n.rrsets[dns.TypeA]...)
		a.Extra = append(a.Extra, n.rrsets[dns.TypeAAAA]...)
	}
	return b.pack(a, "")
}

// packFor packs a for a node: with compression against the question for
// exact names, position-independent for wildcards.
func (b *builder) packFor(a *Answer, owner string, exact bool) *Answer {
	if exact {
		return packExact(a, owner)
	}
	return b.pack(a, owner)
}

// pack packs a position-independently: records owned by owner point to
// the question name; every other name is written in full.
func (b *builder) pack(a *Answer, owner string) *Answer {
	buf := make([]byte, 0, 512)
	tmp := make([]byte, dns.MaxMsgSize)
	for i, sec := range [][]dns.RR{a.Answer, a.Ns, a.Extra} {
		if i == 2 {
			a.NoExtraLen = len(buf)
		}
		for _, rr := range sec {
			end, err := dns.PackRR(rr, tmp, 0, nil, false)
			if err != nil {
				panic(fmt.Sprintf("zones: pack %s: %v", rr, err)) // validated records always pack
			}
			if owner != "" && CanonicalName(rr.Header().Name) == owner {
				buf = append(buf, 0xC0, 12)
				buf = append(buf, tmp[len(mustKey(owner)):end]...)
			} else {
				buf = append(buf, tmp[:end]...)
			}
		}
		a.Count[i] = uint16(len(sec))
	}
	a.Wire = buf
	return a
}

// packExact packs a with name compression for a question of owner, which
// is where the reply's question will be: same name, same length, any case.
func packExact(a *Answer, owner string) *Answer {
	m := &dns.Msg{Compress: true, Question: []dns.Question{{Name: owner, Qtype: dns.TypeA, Qclass: dns.ClassINET}}}
	m.Answer, m.Ns = a.Answer, a.Ns
	prefix := 12 + len(mustKey(owner)) + 4
	short, err := m.Pack()
	if err != nil {
		panic(fmt.Sprintf("zones: pack answer for %s: %v", owner, err))
	}
	m.Extra = a.Extra
	full, err := m.Pack()
	if err != nil {
		panic(fmt.Sprintf("zones: pack answer for %s: %v", owner, err))
	}
	a.Wire = full[prefix:]
	a.NoExtraLen = len(short) - prefix
	a.Count = [3]uint16{uint16(len(a.Answer)), uint16(len(a.Ns)), uint16(len(a.Extra))}
	return a
}

func lowestType(m map[uint16][]dns.RR) uint16 {
	var low uint16
	for t := range m {
		if low == 0 || t < low {
			low = t
		}
	}
	return low
}

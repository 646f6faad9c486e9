package zones

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
)

// Signed is an answer of a signed zone as given to queries with the DO
// bit (RFC 4035 section 3.1): the records of Answer with their RRSIGs and
// the proof of what does not exist. Most of it is signed at build time;
// what depends on the query name (a name that does not exist, a wildcard
// expanded) or on the client (a pool) is signed on the query path, once
// per distinct content, through the server's signature cache.
type Signed struct {
	// Rcode is the rcode to send: compact denial answers a name that does
	// not exist with NOERROR (RFC 9824 section 3.2), and NX says so, for
	// queries that set the CO bit to get NXDOMAIN back (section 4).
	Rcode int
	NX    bool
	// Authoritative is the AA bit: set on answers of the zone's own data,
	// clear on referrals, whose NS RRset is the child's (RFC 1034
	// section 4.3.2, RFC 4035 section 3.1.4).
	Authoritative bool
	// Parts hold the sections in order; the additional section starts at
	// Parts[NoExtra].
	Parts         []Part
	NoExtra       int
	ExtraRequired bool
	// Keys sign the online parts and pool answers.
	Keys *signing.Keyset
}

// Part is a run of records of one section of a signed answer.
type Part struct {
	Section int    // 0 answer, 1 authority, 2 additional
	Wire    []byte // records, position-independent: the query name is a pointer to offset 12
	Count   uint16
	// Online, when set, is an RRset owned by the query name and signed
	// per query name; Wire then holds its records (none for a compact
	// NSEC, which the server writes).
	Online *Online
}

// Online describes an RRset of the query name that is signed when asked.
type Online struct {
	// ID tells apart the RRsets of a snapshot in the signature cache.
	ID  uint64
	TTL uint32
	// RRs are the records with the owner to be replaced by the query
	// name: a wildcard's (RFC 4592 section 3.3.1); nil for compact NSEC.
	RRs []dns.RR
	// NSEC, when set, is a compact denial NSEC (RFC 9824) to write at the
	// query name: Types are the types there, NX marks a name that does not
	// exist; Bitmap is its type bitmap in wire form.
	NSEC   bool
	Types  []uint16
	NX     bool
	Bitmap []byte
}

// signer signs the answers of one tree at build time.
type signer struct {
	keys                  *signing.Keyset
	inception, expiration uint32
	nextID                *uint64
	done                  map[*Answer]bool
}

// signTree gives every answer of a signed zone its Signed form.
func (b *builder) signTree(keys *signing.Keyset, now time.Time, ids *uint64) error {
	inc, exp := keys.Policy.Window(now)
	sg := &signer{keys: keys, inception: inc, expiration: exp, nextID: ids, done: map[*Answer]bool{}}
	var err error
	try := func(a *Answer, owner string, wildcard bool) {
		if err == nil && a != nil && !sg.done[a] {
			sg.done[a] = true
			a.DO, err = b.signAnswer(sg, a, owner, wildcard)
		}
	}
	// A name that does not exist: the NSEC is made for each query name.
	try(b.t.nxdomain, "", false)
	for _, n := range b.t.nodes {
		if n.answers == nil {
			continue // occluded below a cut: only glue
		}
		wild := isWildcard(n.name)
		// NODATA is the zone's shared answer; its proof names this node.
		if n.other == b.t.nodata {
			c := *b.t.nodata
			if n.any == n.other {
				n.any = &c
			}
			n.other = &c
		}
		for _, a := range n.answers {
			try(a, n.name, wild)
		}
		try(n.other, n.name, wild)
		try(n.any, n.name, wild)
		if n.cut {
			try(n.referral, "", false) // shared by every name below the cut
		}
	}
	for _, p := range b.pools {
		if p.NoData == b.t.nodata {
			c := *b.t.nodata
			p.NoData = &c
			try(p.NoData, p.Name, false)
		}
	}
	return err
}

// signAnswer builds the Signed form of a, an answer found at owner (a
// wildcard owner when wildcard).
func (b *builder) signAnswer(sg *signer, a *Answer, owner string, wildcard bool) (*Signed, error) {
	s := &Signed{Rcode: a.Rcode, Authoritative: a.Authoritative, ExtraRequired: a.ExtraRequired, Keys: sg.keys}
	if a == b.t.nxdomain {
		s.Rcode, s.NX = dns.RcodeSuccess, true
		if err := b.addSOA(sg, s); err != nil {
			return nil, err
		}
		s.Parts = append(s.Parts, b.onlineNSEC(sg, nil, true))
		s.NoExtra = len(s.Parts)
		return s, nil
	}
	// The answer section: each RRset and its signatures; an RRset of a
	// wildcard is signed at the query name, on the query path.
	for _, set := range splitRRsets(a.Answer) {
		name := set[0].Header().Name
		if isWildcard(name) {
			sg.ids()
			s.Parts = append(s.Parts, Part{Section: 0, Wire: packRecords(set, owner), Count: uint16(len(set)),
				Online: &Online{ID: *sg.nextID, TTL: set[0].Header().Ttl, RRs: set}})
			continue
		}
		part, err := b.staticPart(sg, 0, set, owner, true)
		if err != nil {
			return nil, err
		}
		s.Parts = append(s.Parts, part)
	}
	// The authority section: a referral's NS with the DS or the proof
	// that there is none; a negative answer's SOA and NSEC.
	switch {
	case len(a.Ns) > 0 && a.Ns[0].Header().Rrtype == dns.TypeNS:
		cut := CanonicalName(a.Ns[0].Header().Name)
		ns, err := b.staticPart(sg, 1, a.Ns, owner, false)
		if err != nil {
			return nil, err
		}
		s.Parts = append(s.Parts, ns)
		cn := b.t.node(cut)
		if ds := cn.rrsets[dns.TypeDS]; len(ds) > 0 {
			part, err := b.staticPart(sg, 1, ds, owner, true)
			if err != nil {
				return nil, err
			}
			s.Parts = append(s.Parts, part)
		} else {
			// An insecure delegation: the NSEC at the cut shows NS and no
			// DS (RFC 4035 section 3.1.4.1).
			part, err := b.staticNSEC(sg, cut, []uint16{dns.TypeNS}, false, owner)
			if err != nil {
				return nil, err
			}
			s.Parts = append(s.Parts, part)
		}
	case len(a.Ns) > 0:
		if err := b.addSOA(sg, s); err != nil {
			return nil, err
		}
		// Whose data is missing: the end of the CNAME chain, else the
		// name asked.
		at := owner
		if len(a.Answer) > 0 {
			if cn, ok := a.Answer[len(a.Answer)-1].(*dns.CNAME); ok {
				at = CanonicalName(cn.Target)
			}
		}
		nx := a.Rcode == dns.RcodeNameError
		if nx {
			s.Rcode, s.NX = dns.RcodeSuccess, true
		}
		types := b.typesAt(at)
		if at == owner && wildcard {
			s.Parts = append(s.Parts, b.onlineNSEC(sg, types, false))
		} else {
			part, err := b.staticNSEC(sg, at, types, nx, owner)
			if err != nil {
				return nil, err
			}
			s.Parts = append(s.Parts, part)
		}
	}
	if a.Pool != nil {
		// The CNAME chain before a pool's records, in one piece.
		var chain Part
		for _, p := range s.Parts {
			if p.Online != nil {
				return nil, fmt.Errorf("pool %s behind a wildcard CNAME cannot be signed", a.Pool.Name)
			}
			chain.Wire = append(chain.Wire, p.Wire...)
			chain.Count += p.Count
		}
		s.Parts = []Part{chain}
	}
	s.NoExtra = len(s.Parts)
	if len(a.Extra) > 0 {
		// Glue and addresses of targets go unsigned: a resolver asks for
		// them again before it trusts them (RFC 4035 section 3.1.1 lets
		// the signatures be left out when they do not fit).
		s.Parts = append(s.Parts, Part{Section: 2, Wire: packRecords(a.Extra, owner), Count: uint16(len(a.Extra))})
	}
	return s, nil
}

func (sg *signer) ids() { *sg.nextID = onlineIDs.Add(1) }

// onlineIDs numbers online RRsets across every build of the process, so
// that a signature cached for one never serves another's query.
var onlineIDs atomic.Uint64

// staticPart packs rrset, with its signatures when sign is set.
func (b *builder) staticPart(sg *signer, section int, rrset []dns.RR, owner string, sign bool) (Part, error) {
	rrs := rrset
	if sign {
		sigs, err := sg.keys.Sign(rrset, sg.inception, sg.expiration)
		if err != nil {
			return Part{}, err
		}
		rrs = append(slices.Clone(rrset), sigs...)
	}
	return Part{Section: section, Wire: packRecords(rrs, owner), Count: uint16(len(rrs))}, nil
}

// addSOA adds the zone's negative SOA and its signature to the authority
// section (RFC 4035 section 3.1.3).
func (b *builder) addSOA(sg *signer, s *Signed) error {
	part, err := b.staticPart(sg, 1, []dns.RR{b.soa}, "", true)
	if err != nil {
		return err
	}
	s.Parts = append(s.Parts, part)
	return nil
}

// staticNSEC is the signed compact NSEC at name, a name known at build.
func (b *builder) staticNSEC(sg *signer, name string, types []uint16, nx bool, owner string) (Part, error) {
	nsec := signing.CompactNSEC(name, b.soa.Hdr.Ttl, types, nx)
	return b.staticPart(sg, 1, []dns.RR{nsec}, owner, true)
}

// onlineNSEC is the compact NSEC at the query name, made per query name.
func (b *builder) onlineNSEC(sg *signer, types []uint16, nx bool) Part {
	sg.ids()
	nsec := signing.CompactNSEC("x.", b.soa.Hdr.Ttl, types, nx) // for its bitmap
	return Part{Section: 1, Online: &Online{ID: *sg.nextID, TTL: b.soa.Hdr.Ttl, NSEC: true, Types: nsec.TypeBitMap, NX: nx, Bitmap: typeBitmap(nsec)}}
}

// typesAt returns the types at name for an NSEC bitmap: its records, a
// pool's address types, and those of the wildcard that would answer it.
func (b *builder) typesAt(name string) []uint16 {
	if n := b.t.node(name); n != nil && n.cut {
		// A delegation point owns its NS and DS; the rest is the child's
		// (RFC 4035 section 2.3).
		types := []uint16{dns.TypeNS}
		if len(n.rrsets[dns.TypeDS]) > 0 {
			types = append(types, dns.TypeDS)
		}
		return types
	}
	n, _, _ := b.resolve(name)
	if n == nil {
		return nil
	}
	var out []uint16
	for t := range n.rrsets {
		out = append(out, t)
	}
	if n.pool != nil {
		for f, t := range poolTypes {
			if n.pool.Family[f].Configured {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitRRsets splits records into RRsets: runs of one owner and type.
func splitRRsets(rrs []dns.RR) [][]dns.RR {
	var out [][]dns.RR
	for i := 0; i < len(rrs); {
		j := i + 1
		h := rrs[i].Header()
		for j < len(rrs) && rrs[j].Header().Rrtype == h.Rrtype && CanonicalName(rrs[j].Header().Name) == CanonicalName(h.Name) {
			j++
		}
		out = append(out, rrs[i:j])
		i = j
	}
	return out
}

// packRecords packs rrs position-independently: records owned by owner
// point to the question name, every other name is written in full.
func packRecords(rrs []dns.RR, owner string) []byte {
	a := b0.pack(&Answer{Answer: rrs}, owner)
	return a.Wire
}

// b0 packs records for packRecords; pack uses nothing of the builder.
var b0 = &builder{}

// typeBitmap returns the wire form of an NSEC's type bitmap.
func typeBitmap(nsec *dns.NSEC) []byte {
	buf := make([]byte, 1024)
	end, err := dns.PackRR(nsec, buf, 0, nil, false)
	if err != nil {
		panic(fmt.Sprintf("zones: pack NSEC: %v", err))
	}
	_, off, err := dns.UnpackDomainName(buf, 0) // owner
	if err != nil {
		panic(err)
	}
	_, off, err = dns.UnpackDomainName(buf, off+10) // type, class, TTL, length, then the next name
	if err != nil {
		panic(err)
	}
	return slices.Clone(buf[off:end])
}

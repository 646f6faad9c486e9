package zones

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Validate checks z for the errors that would make it unservable and
// returns every one of them as Errors, sorted by line, or nil.
//
// Validate does not modify z. Exact duplicate records are not errors: RFC
// 2181 section 5 has them collapsed into one, which Normalize does (Parse
// calls it before Validate). Records that differ only in TTL are errors.
func Validate(z *Zone) error {
	if z.Origin == "" {
		return Errors{{Source: z.Source, Msg: "zone has no origin"}}
	}
	v := &validator{z: z, origin: CanonicalName(z.Origin), names: map[string]*rrsets{}}
	v.collect()
	v.apex()
	v.cnames()
	v.ttls()
	v.cuts()
	// Pools see only the records that passed collect.
	pz := *z
	pz.Records = v.sound
	v.errs = validatePools(&pz, v.errs)
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	return v.errs.errorOrNil()
}

// Normalize puts z in the form Parse returns: the origin canonical and
// exact duplicates (same owner, class, type, RDATA and TTL) reduced to the
// first of them, which RFC 2181 section 5 asks of a server loading a zone.
// Records differing only in TTL are kept for Validate to report.
// Normalize is idempotent.
func Normalize(z *Zone) {
	z.Origin = CanonicalName(z.Origin)
	seen := map[rrsetKey][]Record{}
	kept := z.Records[:0]
	for _, r := range z.Records {
		if r.RR != nil {
			// miekg's parser leaves the owner of a first record written
			// without one empty when the origin is the root; it is ".".
			if h := r.RR.Header(); h.Name == "" {
				h.Name = "."
			}
			k := keyOf(r.RR)
			if isExactDuplicate(seen[k], r.RR) {
				continue
			}
			seen[k] = append(seen[k], r)
		}
		kept = append(kept, r)
	}
	clear(z.Records[len(kept):])
	z.Records = kept
}

// rrsetKey identifies an RRset: the records of one owner and type (RFC
// 2181 section 5).
type rrsetKey struct {
	name  string // canonical
	rtype uint16
}

func keyOf(rr dns.RR) rrsetKey {
	return rrsetKey{CanonicalName(rr.Header().Name), rr.Header().Rrtype}
}

// isExactDuplicate reports whether set holds rr with the same TTL.
// dns.IsDuplicate compares names case-insensitively, RDATA names included,
// and ignores the TTL.
func isExactDuplicate(set []Record, rr dns.RR) bool {
	for _, o := range set {
		if o.RR.Header().Ttl == rr.Header().Ttl && dns.IsDuplicate(o.RR, rr) {
			return true
		}
	}
	return false
}

// rrsets holds the records of one owner name by type, without exact
// duplicates.
type rrsets struct {
	types  []uint16 // in order of first appearance
	byType map[uint16][]Record
}

type validator struct {
	z      *Zone
	origin string
	names  map[string]*rrsets
	order  []string // names in order of first appearance
	sound  []Record // records that passed the checks of collect
	errs   Errors
}

func (v *validator) errorf(line int, format string, args ...any) {
	v.errs = append(v.errs, &Error{Source: v.z.Source, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// collect checks each record on its own and groups the sound ones by name
// and type for the checks that follow.
func (v *validator) collect() {
	for _, r := range v.z.Records {
		if r.RR == nil {
			v.errorf(r.Line, "record without data")
			continue
		}
		h := r.RR.Header()
		name, t := CanonicalName(h.Name), h.Rrtype
		switch {
		case h.Class != dns.ClassINET:
			v.errorf(r.Line, "%s: class %s is not supported, only IN", name, dns.Class(h.Class))
			continue
		case !dns.IsSubDomain(v.origin, name):
			v.errorf(r.Line, "out-of-zone record %s in zone %s", name, v.origin)
			continue
		case t == dns.TypeOPT || t == dns.TypeNone || (t >= 128 && t <= 255):
			// RFC 6895 section 3.1: OPT and the meta-types and QTYPEs
			// 128-255 only ever appear in messages, never in zone data.
			v.errorf(r.Line, "%s: type %s cannot appear in a zone", name, dns.Type(t))
			continue
		case rdataEmpty(r.RR):
			v.errorf(r.Line, "%s: %s record has no data", name, dns.Type(t))
			continue
		}
		if err := readsBack(r.RR); err != nil {
			// miekg's parser leaves fields zero when the data stops short
			// ("x MX" at the end of a file): such a record would be served
			// cut short.
			v.errorf(r.Line, "%s: bad %s record: incomplete data (%v)", name, dns.Type(t), err)
			continue
		}
		if err := packs(r.RR); err != nil {
			// The parser accepts some RDATA that cannot be sent, such as
			// hex of odd length.
			v.errorf(r.Line, "%s: bad %s record: %v", name, dns.Type(t), err)
			continue
		}
		v.sound = append(v.sound, r)
		s := v.names[name]
		if s == nil {
			s = &rrsets{byType: map[uint16][]Record{}}
			v.names[name] = s
			v.order = append(v.order, name)
		}
		set := s.byType[t]
		if len(set) == 0 {
			s.types = append(s.types, t)
		}
		if !isExactDuplicate(set, r.RR) {
			s.byType[t] = append(set, r)
		}
	}
}

// rdataEmpty reports whether rr has no RDATA, as miekg's parser allows for
// dynamic update records ("www A" and nothing more at the end of a file).
func rdataEmpty(rr dns.RR) bool {
	return strings.TrimSpace(rr.String()) == strings.TrimSpace(rr.Header().String())
}

// readsBack checks that rr's presentation form parses back into rr.
func readsBack(rr dns.RR) error {
	back, err := dns.NewRR(rr.String())
	if err != nil {
		return err
	}
	if back == nil || back.String() != rr.String() {
		return fmt.Errorf("%q reads back as something else", rr.String())
	}
	return nil
}

// at and firstAt point at a line in a message, when the record has one
// (records from a database have none).
func at(line int) string {
	if line == 0 {
		return ""
	}
	return fmt.Sprintf(" at line %d", line)
}

func firstAt(line int) string {
	if line == 0 {
		return ""
	}
	return fmt.Sprintf(" (the first is at line %d)", line)
}

// packs reports whether rr can be written in wire format.
func packs(rr dns.RR) error {
	_, err := packCopy(rr)
	return err
}

// packCopy packs a copy of rr uncompressed: dns.PackRR writes the RDLENGTH
// into the record it packs, and zones are read by other goroutines (a
// store's cache writer, say) while snapshots are built.
func packCopy(rr dns.RR) ([]byte, error) {
	rr = dns.Copy(rr)
	buf := make([]byte, dns.Len(rr)+1)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// apex checks the SOA and NS records. RFC 1035 section 5.2: a zone has
// exactly one SOA, at its top; RFC 1034 section 4.2.1: the apex has the
// NS records naming the zone's servers.
func (v *validator) apex() {
	var first *Record
	for _, name := range v.order {
		for i, r := range v.names[name].byType[dns.TypeSOA] {
			switch {
			case name != v.origin:
				v.errorf(r.Line, "SOA record for %s is not at the zone apex %s", name, v.origin)
			case i > 0:
				v.errorf(r.Line, "second SOA record for zone %s%s", v.origin, firstAt(first.Line))
			default:
				first = &v.names[name].byType[dns.TypeSOA][0]
			}
		}
	}
	if first == nil {
		v.errorf(0, "zone %s has no SOA record", v.origin)
	}
	if apex := v.names[v.origin]; apex == nil || len(apex.byType[dns.TypeNS]) == 0 {
		v.errorf(0, "zone %s has no NS records at the apex (RFC 1034 section 4.2.1)", v.origin)
	}
}

// coexistsWithCNAME lists the types that may share a name with a CNAME:
// its DNSSEC records (RFC 4035 section 2.5, RFC 2181 section 10.1).
var coexistsWithCNAME = map[uint16]bool{dns.TypeCNAME: true, dns.TypeRRSIG: true, dns.TypeNSEC: true}

// cnames checks that a CNAME is alone at its name (RFC 1034 section
// 3.6.2, RFC 2181 section 10.1), which rules it out at the apex, where the
// SOA and NS records must be.
func (v *validator) cnames() {
	for _, name := range v.order {
		s := v.names[name]
		cn := s.byType[dns.TypeCNAME]
		if len(cn) == 0 {
			continue
		}
		if name == v.origin {
			v.errorf(cn[0].Line, "CNAME at the zone apex %s: it would sit beside the SOA and NS records (RFC 1034 section 3.6.2)", name)
			continue
		}
		for _, r := range cn[1:] {
			v.errorf(r.Line, "second CNAME at %s%s: a name has at most one (RFC 2181 section 10.1)", name, firstAt(cn[0].Line))
		}
		for _, t := range s.types {
			if coexistsWithCNAME[t] {
				continue
			}
			other := s.byType[t][0]
			v.errorf(max(other.Line, cn[0].Line), "CNAME and other data at %s: CNAME%s, %s%s (RFC 1034 section 3.6.2)",
				name, at(cn[0].Line), dns.Type(t), at(other.Line))
		}
	}
}

// ttls checks that the records of an RRset share one TTL (RFC 2181
// section 5.2). RRSIGs are exempt: theirs follow the RRsets they cover.
func (v *validator) ttls() {
	for _, name := range v.order {
		s := v.names[name]
		for _, t := range s.types {
			set := s.byType[t]
			if t == dns.TypeRRSIG || t == dns.TypeSOA {
				continue // SOA: a second one is reported by apex
			}
			ttl := set[0].RR.Header().Ttl
			for _, r := range set[1:] {
				if r.RR.Header().Ttl == ttl {
					continue
				}
				if set[0].Line > 0 {
					v.errorf(r.Line, "conflicting TTLs in the %s %s RRset: %d here, %d at line %d (RFC 2181 section 5.2)",
						name, dns.Type(t), r.RR.Header().Ttl, ttl, set[0].Line)
				} else {
					v.errorf(r.Line, "conflicting TTLs in the %s %s RRset: %d and %d (RFC 2181 section 5.2)",
						name, dns.Type(t), r.RR.Header().Ttl, ttl)
				}
			}
		}
	}
}

// atCut lists the types that belong at a delegation point: the NS RRset,
// DS, which the parent holds (RFC 4035 section 2.4), their NSEC and
// RRSIG, and address glue when a name server is named after the cut.
var atCut = map[uint16]bool{
	dns.TypeNS: true, dns.TypeDS: true, dns.TypeNSEC: true, dns.TypeRRSIG: true,
	dns.TypeA: true, dns.TypeAAAA: true,
	dns.TypeCNAME: true, // reported by cnames
}

// cuts checks delegations. Below a zone cut the data is the child's, so
// only A and AAAA glue may appear there (RFC 1034 section 4.2.1); at the
// cut only the types in atCut. An NS RRset at a wildcard makes no sense
// (RFC 4592 section 4.2).
func (v *validator) cuts() {
	cut := map[string]bool{}
	for _, name := range v.order {
		ns := v.names[name].byType[dns.TypeNS]
		if name == v.origin || len(ns) == 0 {
			continue
		}
		if isWildcard(name) {
			v.errorf(ns[0].Line, "NS records at the wildcard %s (RFC 4592 section 4.2)", name)
			continue
		}
		cut[name] = true
	}
	for _, name := range v.order {
		s := v.names[name]
		top := ""
		for p := parentName(name); p != "" && p != v.origin && dns.IsSubDomain(v.origin, p); p = parentName(p) {
			if cut[p] {
				top = p // keep going: the highest cut wins
			}
		}
		for _, t := range s.types {
			r := s.byType[t][0]
			switch {
			case top != "" && t != dns.TypeA && t != dns.TypeAAAA:
				v.errorf(r.Line, "%s %s record is occluded by the delegation at %s (only A and AAAA glue may be below a zone cut)", name, dns.Type(t), top)
			case top == "" && cut[name] && !atCut[t]:
				v.errorf(r.Line, "%s %s record is occluded by the delegation at %s (only NS, DS and glue belong at a zone cut)", name, dns.Type(t), name)
			}
		}
	}
}

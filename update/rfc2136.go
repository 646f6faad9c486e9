package update

import (
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// rcodeError is an UPDATE that fails with an rcode: nothing of it is
// applied.
type rcodeError struct {
	rcode  int
	reason string
}

func (e *rcodeError) Error() string { return dns.RcodeToString[e.rcode] + ": " + e.reason }

func fail(rcode int, reason string) error { return &rcodeError{rcode, reason} }

// inZone reports whether name (canonical) is the zone origin or below it.
func inZone(origin, name string) bool { return dns.IsSubDomain(origin, name) }

// metaType reports the types that name no RRset (RFC 2136 section
// 3.4.1.3: AXFR, IXFR, MAILA, MAILB, and ANY where a real type is due).
func metaType(t uint16) bool {
	switch t {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeANY, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY:
		return true
	}
	return false
}

// dnssecType reports the types Meridian makes when it signs a zone: an
// UPDATE may not touch them.
func dnssecType(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		return true
	}
	return false
}

// checkPrereqs evaluates the prerequisite section against rrs, the
// zone's records (RFC 2136 section 3.2), and returns nil when every
// prerequisite holds.
func checkPrereqs(origin string, rrs []dns.RR, prereqs []dns.RR) error {
	var want []dns.RR // value-dependent prerequisites (section 3.2.3)
	for _, p := range prereqs {
		h := p.Header()
		name := canonical(h.Name)
		if h.Ttl != 0 {
			return fail(dns.RcodeFormatError, "prerequisite with a TTL")
		}
		if !inZone(origin, name) {
			return fail(dns.RcodeNotZone, "prerequisite outside the zone: "+h.Name)
		}
		switch h.Class {
		case dns.ClassANY:
			if h.Rdlength != 0 {
				return fail(dns.RcodeFormatError, "prerequisite of class ANY with data")
			}
			if h.Rrtype == dns.TypeANY {
				if !nameExists(rrs, name) {
					return fail(dns.RcodeNameError, "name not in use: "+name)
				}
			} else if !rrsetExists(rrs, name, h.Rrtype) {
				return fail(dns.RcodeNXRrset, "RRset does not exist: "+name+" "+dns.TypeToString[h.Rrtype])
			}
		case dns.ClassNONE:
			if h.Rdlength != 0 {
				return fail(dns.RcodeFormatError, "prerequisite of class NONE with data")
			}
			if h.Rrtype == dns.TypeANY {
				if nameExists(rrs, name) {
					return fail(dns.RcodeYXDomain, "name in use: "+name)
				}
			} else if rrsetExists(rrs, name, h.Rrtype) {
				return fail(dns.RcodeYXRrset, "RRset exists: "+name+" "+dns.TypeToString[h.Rrtype])
			}
		case dns.ClassINET:
			if metaType(h.Rrtype) {
				return fail(dns.RcodeFormatError, "prerequisite of a meta type")
			}
			want = append(want, p)
		default:
			return fail(dns.RcodeFormatError, "prerequisite of class "+dns.ClassToString[h.Class])
		}
	}
	// Each RRset named in want must be exactly the RRs given, TTLs aside.
	seen := map[[2]string]bool{}
	for _, p := range want {
		name, t := canonical(p.Header().Name), p.Header().Rrtype
		k := [2]string{name, dns.TypeToString[t]}
		if seen[k] {
			continue
		}
		seen[k] = true
		var given, have []dns.RR
		for _, q := range want {
			if canonical(q.Header().Name) == name && q.Header().Rrtype == t {
				given = append(given, q)
			}
		}
		for _, r := range rrs {
			if canonical(r.Header().Name) == name && r.Header().Rrtype == t {
				have = append(have, r)
			}
		}
		if !sameSet(given, have) {
			return fail(dns.RcodeNXRrset, "RRset differs: "+name+" "+dns.TypeToString[t])
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same RRs, TTLs and
// duplicates aside.
func sameSet(a, b []dns.RR) bool {
	return subset(a, b) && subset(b, a)
}

func subset(a, b []dns.RR) bool {
	for _, x := range a {
		if !containsRR(b, x) {
			return false
		}
	}
	return true
}

func containsRR(rrs []dns.RR, x dns.RR) bool {
	for _, r := range rrs {
		if sameRR(r, x) {
			return true
		}
	}
	return false
}

// sameRR reports whether a and b are the same RR, TTL aside; names
// compare without case (RFC 4343).
func sameRR(a, b dns.RR) bool {
	return a.Header().Class == b.Header().Class && dns.IsDuplicate(a, b)
}

func nameExists(rrs []dns.RR, name string) bool {
	for _, r := range rrs {
		if canonical(r.Header().Name) == name {
			return true
		}
	}
	return false
}

func rrsetExists(rrs []dns.RR, name string, t uint16) bool {
	for _, r := range rrs {
		if r.Header().Rrtype == t && canonical(r.Header().Name) == name {
			return true
		}
	}
	return false
}

// prescan checks the update section before anything is applied (RFC
// 2136 section 3.4.1), and that it touches no pool name and no DNSSEC
// record, which Meridian makes itself.
func prescan(z *zones.Zone, upd []dns.RR) error {
	for _, u := range upd {
		h := u.Header()
		name := canonical(h.Name)
		if !inZone(z.Origin, name) {
			return fail(dns.RcodeNotZone, "update outside the zone: "+h.Name)
		}
		switch h.Class {
		case dns.ClassINET:
			if metaType(h.Rrtype) {
				return fail(dns.RcodeFormatError, "adding an RR of a meta type")
			}
		case dns.ClassANY:
			if h.Ttl != 0 || h.Rdlength != 0 || (metaType(h.Rrtype) && h.Rrtype != dns.TypeANY) {
				return fail(dns.RcodeFormatError, "bad RRset deletion")
			}
		case dns.ClassNONE:
			if h.Ttl != 0 || metaType(h.Rrtype) {
				return fail(dns.RcodeFormatError, "bad RR deletion")
			}
		default:
			return fail(dns.RcodeFormatError, "update of class "+dns.ClassToString[h.Class])
		}
		if dnssecType(h.Rrtype) {
			return fail(dns.RcodeRefused, "DNSSEC records are made by the server: "+dns.TypeToString[h.Rrtype])
		}
		for _, p := range z.Pools {
			if canonical(p.Name) == name {
				return fail(dns.RcodeRefused, "a pool answers "+name+": change it with meridianctl")
			}
		}
	}
	return nil
}

// applyUpdates applies the update section to rrs, the zone's records,
// as RFC 2136 section 3.4.2 says, and returns the new records and
// whether anything changed. The SOA serial is not bumped here. Updates
// the RFC says to ignore (deleting the apex SOA or its last NS, an older
// SOA, a CNAME next to other data) are silently skipped.
func applyUpdates(origin string, rrs []dns.RR, upd []dns.RR) ([]dns.RR, bool) {
	out := make([]dns.RR, 0, len(rrs)+len(upd))
	for _, r := range rrs {
		out = append(out, dns.Copy(r))
	}
	changed := false
	for _, u := range upd {
		h := u.Header()
		name := canonical(h.Name)
		apex := name == origin
		switch h.Class {
		case dns.ClassINET:
			u = dns.Copy(u)
			u.Header().Name = name
			if h.Rrtype == dns.TypeSOA {
				if !apex {
					continue
				}
				i := indexType(out, name, dns.TypeSOA)
				if i < 0 || !zones.SerialLess(out[i].(*dns.SOA).Serial, u.(*dns.SOA).Serial) {
					continue // RFC 2136 section 3.4.2.2: only a newer SOA replaces the old
				}
				out[i], changed = u, true
				continue
			}
			hasCNAME := rrsetExists(out, name, dns.TypeCNAME)
			if h.Rrtype == dns.TypeCNAME {
				if hasOther(out, name) {
					continue // a CNAME joins no other data (section 3.4.2.2)
				}
				if i := indexType(out, name, dns.TypeCNAME); i >= 0 {
					if !sameRR(out[i], u) || out[i].Header().Ttl != u.Header().Ttl {
						out[i], changed = u, true
					}
					continue
				}
			} else if hasCNAME {
				continue
			}
			if i := indexRR(out, u); i >= 0 {
				if out[i].Header().Ttl != h.Ttl {
					out[i], changed = u, true
				}
				continue
			}
			out, changed = append(out, u), true
		case dns.ClassANY:
			keep := out[:0]
			for _, r := range out {
				rt := r.Header().Rrtype
				del := canonical(r.Header().Name) == name && (h.Rrtype == dns.TypeANY || rt == h.Rrtype)
				if del && apex && (rt == dns.TypeSOA || rt == dns.TypeNS) {
					del = false // the apex SOA and NS stay (section 3.4.2.3)
				}
				if del {
					changed = true
					continue
				}
				keep = append(keep, r)
			}
			out = keep
		case dns.ClassNONE:
			if h.Rrtype == dns.TypeSOA {
				continue
			}
			v := dns.Copy(u)
			v.Header().Class = dns.ClassINET
			i := indexRR(out, v)
			if i < 0 {
				continue
			}
			if apex && h.Rrtype == dns.TypeNS && countType(out, name, dns.TypeNS) == 1 {
				continue // never the last apex NS (section 3.4.2.4)
			}
			out, changed = append(out[:i], out[i+1:]...), true
		}
	}
	return out, changed
}

func indexType(rrs []dns.RR, name string, t uint16) int {
	for i, r := range rrs {
		if r.Header().Rrtype == t && canonical(r.Header().Name) == name {
			return i
		}
	}
	return -1
}

func indexRR(rrs []dns.RR, x dns.RR) int {
	for i, r := range rrs {
		if sameRR(r, x) {
			return i
		}
	}
	return -1
}

func countType(rrs []dns.RR, name string, t uint16) int {
	n := 0
	for _, r := range rrs {
		if r.Header().Rrtype == t && canonical(r.Header().Name) == name {
			n++
		}
	}
	return n
}

// hasOther reports whether name holds data a CNAME cannot sit next to
// (anything but a CNAME and DNSSEC records).
func hasOther(rrs []dns.RR, name string) bool {
	for _, r := range rrs {
		t := r.Header().Rrtype
		if canonical(r.Header().Name) == name && t != dns.TypeCNAME && !dnssecType(t) {
			return true
		}
	}
	return false
}

// bumpSerial sets the serial of the SOA in rrs one higher (RFC 1982
// arithmetic wraps at 2^32) unless the update already raised it past
// old.
func bumpSerial(origin string, rrs []dns.RR, old uint32) uint32 {
	i := indexType(rrs, origin, dns.TypeSOA)
	if i < 0 {
		return 0
	}
	soa := rrs[i].(*dns.SOA)
	if soa.Serial == old {
		soa.Serial++
	}
	return soa.Serial
}

package zones

import (
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Serial returns the SOA serial served for the zone at origin (a
// presentation name, any case), and whether the snapshot serves it.
func (s *Snapshot) Serial(origin string) (uint32, bool) {
	t := s.treeOf(origin)
	if t == nil {
		return 0, false
	}
	return t.serial, true
}

// TransferRecords returns the records a zone transfer of the zone at
// origin carries (RFC 5936 section 3): its SOA first, with the serial
// served, then every other record of the zone, glue included, names in
// canonical order (RFC 4034 section 6.1) so that two calls give the same
// sequence. Each pool is given as plain A and AAAA records of the
// addresses a client could get (see transferAddrs) at the pool's TTL: a
// secondary cannot choose per client, but it serves correct addresses.
//
// The DNSKEY, CDS and CDNSKEY records made from a signed zone's keys are
// left out, as are signatures (which are made per query): the zone is
// transferred unsigned.
//
// It returns nil when the snapshot does not serve origin. The list is
// made at the first call for a compiled zone, off the query path, and
// shared by the later ones (a zone taken over by Rebuild keeps it): the
// slice and its records must not be modified.
func (s *Snapshot) TransferRecords(origin string) []dns.RR {
	t := s.treeOf(origin)
	if t == nil {
		return nil
	}
	t.xfrOnce.Do(func() { t.xfr = slices.Clip(t.transferRecords()) })
	return t.xfr
}

// transferRecords makes the list TransferRecords returns.
func (t *zoneTree) transferRecords() []dns.RR {
	type keyed struct {
		key string
		nd  *node
	}
	nodes := make([]keyed, 0, len(t.nodes))
	n := 0
	for _, nd := range t.nodes {
		if len(nd.rrsets) > 0 || nd.pool != nil {
			nodes = append(nodes, keyed{canonicalKey(nd.name), nd})
			for _, rrs := range nd.rrsets {
				n += len(rrs)
			}
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].key < nodes[j].key })
	out := make([]dns.RR, 0, n+1)
	apex := t.nodes[mustKey(t.origin)]
	out = append(out, apex.rrsets[dns.TypeSOA][0])
	var types []uint16
	for _, k := range nodes {
		nd := k.nd
		types = types[:0]
		for typ := range nd.rrsets {
			switch typ {
			case dns.TypeSOA, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
				if nd == apex && (typ == dns.TypeSOA || t.keys != nil) {
					continue
				}
			}
			types = append(types, typ)
		}
		sort.Slice(types, func(i, j int) bool { return types[i] < types[j] })
		for _, typ := range types {
			out = append(out, nd.rrsets[typ]...)
		}
		if p := nd.pool; p != nil {
			out = appendPool(out, t.src, p)
		}
	}
	return out
}

// appendPool appends the A and AAAA records pool p is transferred as.
func appendPool(out []dns.RR, z *Zone, p *CompiledPool) []dns.RR {
	src := p.Source
	if src == nil || z == nil {
		return out
	}
	addrs := transferAddrs(z, src)
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: p.Name, Class: dns.ClassINET, Ttl: p.TTL}
		if a.Is4() {
			hdr.Rrtype = dns.TypeA
			out = append(out, &dns.A{Hdr: hdr, A: a.AsSlice()})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return out
}

// treeOf returns the zone tree of origin, or nil.
func (s *Snapshot) treeOf(origin string) *zoneTree {
	k, err := wireKey(CanonicalName(origin))
	if err != nil {
		return nil
	}
	return s.tree(k)
}

// canonicalKey returns a key whose byte order is the canonical order of
// names (RFC 4034 section 6.1): the labels right to left, each followed
// by a zero octet, which sorts a label before every longer one it
// begins. Names here are canonical presentation forms, whose escapes
// (\DDD) sort as their digits rather than the octets they stand for;
// the order need only be stable, which it is.
func canonicalKey(name string) string {
	labels := dns.SplitDomainName(name)
	var b strings.Builder
	b.Grow(len(name) + 1)
	for i := len(labels) - 1; i >= 0; i-- {
		b.WriteString(labels[i])
		b.WriteByte(0)
	}
	return b.String()
}

// SOA returns the SOA record served for the zone at origin, with the
// serial served, or nil when the snapshot does not serve it. The record
// is shared with the snapshot and must not be modified.
func (s *Snapshot) SOA(origin string) *dns.SOA {
	t := s.treeOf(origin)
	if t == nil {
		return nil
	}
	soa, _ := t.nodes[mustKey(t.origin)].rrsets[dns.TypeSOA][0].(*dns.SOA)
	return soa
}

package signing

import (
	"slices"

	"github.com/miekg/dns"
)

// CompactNSEC returns the NSEC record of compact denial of existence (RFC
// 9824) at owner: its next name is owner with a zero-octet label in
// front, the least name after it, so that it covers no other name and
// reveals nothing of the zone. types are those at owner; a name that does
// not exist gets NXNAME alone (section 3.2). RRSIG and NSEC are added,
// as the NSEC and its signature will be there (RFC 4034 section 4.1.2).
func CompactNSEC(owner string, ttl uint32, types []uint16, nonexistent bool) *dns.NSEC {
	bitmap := append(slices.Clone(types), dns.TypeRRSIG, dns.TypeNSEC)
	if nonexistent {
		bitmap = append(bitmap, dns.TypeNXNAME)
	}
	slices.Sort(bitmap)
	bitmap = slices.Compact(bitmap)
	return &dns.NSEC{
		Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
		NextDomain: `\000.` + owner,
		TypeBitMap: bitmap,
	}
}

package zones

import (
	"testing"
)

func TestScratchEOF(t *testing.T) {
	for _, typ := range []string{"A", "AAAA", "MX", "SRV", "NS", "CNAME", "TXT", "CAA", "SOA", "DS", "SSHFP", "TLSA", "NAPTR", "HINFO", "LOC", "URI", "SVCB", "HTTPS", "PTR", "DNAME", "RP", "AFSDB", "KX", "PX", "NID", "L32", "L64", "LP", "EUI48", "CERT", "OPENPGPKEY", "DNSKEY", "NSEC", "NSEC3", "RRSIG", "ZONEMD", "CSYNC", "APL", "IPSECKEY", "HIP", "TKEY", "AMTRELAY", "NULL", "GPOS", "X25", "ISDN", "RT", "NSAPPTR", "SPF", "AVC", "RESINFO", "UINFO", "UID", "GID", "EID", "NIMLOC", "MB", "MG", "MR", "MINFO", "MD", "MF", "DHCID", "TALINK", "SMIMEA", "CDS", "CDNSKEY", "KEY", "SIG", "NSEC3PARAM", "EUI64"} {
		src := "$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nx " + typ
		z, err := Parse([]byte(src), "t.zone")
		if err != nil {
			continue
		}
		r := z.Records[len(z.Records)-1]
		w, werr := wireForm(r.RR)
		t.Logf("%-10s accepted: %q wire %x %v", typ, r.RR.String(), w, werr)
	}
}

package zones

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
)

// Zone is one authoritative zone as loaded from a source: its origin and
// every record in it. A Zone is plain data; Build compiles zones into a
// query-ready Snapshot.
type Zone struct {
	// Origin is the zone apex, fully qualified and lower case.
	Origin string
	// Source names where the zone came from (a file path, "database"),
	// used in error messages.
	Source string
	// Records holds every record of the zone, including the SOA.
	Records []Record
	// Datacenters and Pools define the names answered per client.
	Datacenters []Datacenter
	Pools       []Pool
	// Keys, when set, sign the zone: every answer to a query with the DO
	// bit carries its signatures, and the apex its DNSKEY, CDS and CDNSKEY
	// records, made from the keys.
	Keys *signing.Keyset
	// Invalid, when set by a store, says part of the zone could not be
	// read (a broken record, a key that does not load): the zone holds
	// only what could be, so it must not be served as it is. Rebuild
	// then keeps serving the zone's last good version, as it does for a
	// zone that fails validation.
	Invalid error
}

// Record is a resource record and the place it was defined, so that
// validation errors can point at the line that caused them.
type Record struct {
	RR   dns.RR
	Line int
}

// Error is a validation or parse error tied to a place in a source.
type Error struct {
	Source string // file name or other source
	Line   int    // 1-based line; 0 when the error concerns the whole zone
	Msg    string
}

func (e *Error) Error() string {
	switch {
	case e.Source != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg)
	case e.Source != "":
		return fmt.Sprintf("%s: %s", e.Source, e.Msg)
	default:
		return e.Msg
	}
}

// Errors collects several validation errors so that an operator sees all
// problems of a file at once rather than one per attempt.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// errorOrNil returns es as an error, or nil when it is empty.
func (es Errors) errorOrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// CanonicalName returns name fully qualified, in lower case and in one
// presentation form, the form used for every lookup key in this package:
// names compare case-insensitively in ASCII only (RFC 4343), and an octet
// written raw or escaped (\233, \065) is the same octet. Letters,
// digits, hyphens, underscores and asterisks are written as they are,
// every other octet as \DDD (RFC 1035 section 5.1).
func CanonicalName(name string) string {
	name = dns.Fqdn(name)
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '.' && !plainOctet(c) {
			return lowerASCII(printForm(name))
		}
	}
	return lowerASCII(name)
}

func plainOctet(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '*'
}

// printForm writes name from its wire form, with the escapes of
// CanonicalName; a name that does not pack is returned as it is, for
// validation to report.
func printForm(name string) string {
	var buf [256]byte
	if _, err := dns.PackDomainName(name, buf[:], 0, nil, false); err != nil {
		return name
	}
	var b strings.Builder
	for off := 0; buf[off] != 0; {
		l := int(buf[off])
		for _, c := range buf[off+1 : off+1+l] {
			if plainOctet(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('\\')
				b.WriteByte('0' + c/100)
				b.WriteByte('0' + c/10%10)
				b.WriteByte('0' + c%10)
			}
		}
		b.WriteByte('.')
		off += l + 1
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}

// lowerASCII maps A-Z to a-z and leaves every other byte alone: DNS names
// compare case-insensitively in ASCII only (RFC 4343 section 3); octets
// above 127 are not letters, whatever Unicode would make of them (RFC 4343
// section 2, RFC 1035 section 2.3.3). strings.ToLower would fold them, and
// turn bytes that are not UTF-8 into U+FFFD.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// SOA returns the zone's SOA record, or nil when there is none.
func (z *Zone) SOA() *dns.SOA {
	for _, r := range z.Records {
		if soa, ok := r.RR.(*dns.SOA); ok && CanonicalName(soa.Hdr.Name) == z.Origin {
			return soa
		}
	}
	return nil
}

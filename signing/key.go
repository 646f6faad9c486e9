// Package signing holds a zone's DNSSEC keys and signs its RRsets, for
// answers signed as they are given (online signing). It knows keys and
// signatures, not zones or servers: zones asks it for RRSIGs at build
// time, the DNS server for the records it chooses per query.
package signing

import (
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Key flags (RFC 4034 section 2.1.1): a zone key, and the secure entry
// point bit that marks a key signing key (RFC 3757).
const (
	FlagZSK = 256
	FlagKSK = 257
)

// Algorithms Meridian signs with: ECDSA P-256 (the default, RFC 6605)
// and Ed25519 (RFC 8080). Both give small signatures, which keep signed
// answers within 1232 octets.
var Algorithms = map[string]uint8{
	"ECDSAP256SHA256": dns.ECDSAP256SHA256,
	"ED25519":         dns.ED25519,
}

// Key is one DNSSEC key of a zone: the public DNSKEY and its private half.
type Key struct {
	DNSKEY *dns.DNSKEY
	signer crypto.Signer
}

// Generate makes a new key for zone. flags is FlagKSK for a key signing
// key or a combined signing key, FlagZSK for a zone signing key.
func Generate(zone string, algorithm uint8, flags uint16) (*Key, error) {
	bits := 0
	switch algorithm {
	case dns.ECDSAP256SHA256:
		bits = 256
	case dns.ED25519:
		bits = 256
	default:
		return nil, fmt.Errorf("signing: algorithm %d is not supported (ECDSAP256SHA256 or ED25519)", algorithm)
	}
	if flags != FlagKSK && flags != FlagZSK {
		return nil, fmt.Errorf("signing: flags %d: want %d (KSK or CSK) or %d (ZSK)", flags, FlagKSK, FlagZSK)
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     flags,
		Protocol:  3,
		Algorithm: algorithm,
	}
	priv, err := k.Generate(bits)
	if err != nil {
		return nil, fmt.Errorf("signing: generate key for %s: %w", zone, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("signing: generated key cannot sign")
	}
	return &Key{DNSKEY: k, signer: signer}, nil
}

// ParseKey reads a key from its public DNSKEY record and its private key
// in the format of BIND's and ldns's .private files, so that keys made by
// dnssec-keygen or ldns-keygen can be used, and ours by them. source names
// the key in errors.
func ParseKey(public, private, source string) (*Key, error) {
	rr, err := dns.NewRR(public)
	if err != nil {
		return nil, fmt.Errorf("signing: %s: public key: %w", source, err)
	}
	k, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("signing: %s: public key is a %s record, not DNSKEY", source, dns.TypeToString[rr.Header().Rrtype])
	}
	if _, ok := algorithmName(k.Algorithm); !ok {
		return nil, fmt.Errorf("signing: %s: algorithm %d is not supported (ECDSAP256SHA256 or ED25519)", source, k.Algorithm)
	}
	if k.Flags != FlagKSK && k.Flags != FlagZSK {
		return nil, fmt.Errorf("signing: %s: flags %d: want %d or %d", source, k.Flags, FlagKSK, FlagZSK)
	}
	priv, err := k.ReadPrivateKey(strings.NewReader(private), source)
	if err != nil {
		return nil, fmt.Errorf("signing: %s: private key: %w", source, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing: %s: private key cannot sign", source)
	}
	if !samePublic(k, signer) {
		return nil, fmt.Errorf("signing: %s: the private key is not the one of the DNSKEY", source)
	}
	k.Hdr.Name = dns.CanonicalName(k.Hdr.Name)
	return &Key{DNSKEY: k, signer: signer}, nil
}

// samePublic reports whether signer is the private half of k: it signs a
// record and checks the signature with k.
func samePublic(k *dns.DNSKEY, signer crypto.Signer) bool {
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: k.Hdr.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{"key check"}}
	sig := &dns.RRSIG{Algorithm: k.Algorithm, KeyTag: k.KeyTag(), SignerName: k.Hdr.Name, Inception: 0, Expiration: 1<<32 - 1}
	if err := sig.Sign(signer, []dns.RR{rr}); err != nil {
		return false
	}
	return sig.Verify(k, []dns.RR{rr}) == nil
}

// PrivateString returns the private key in the .private file format.
func (k *Key) PrivateString() string { return k.DNSKEY.PrivateKeyString(k.signer) }

// Tag is the key tag (RFC 4034 appendix B).
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// KSK reports whether the key signs the DNSKEY RRset: a key signing key
// or a combined signing key.
func (k *Key) KSK() bool { return k.DNSKEY.Flags&1 == 1 }

// DS returns the DS record of the key with a SHA-256 digest (RFC 4509),
// for the parent zone.
func (k *Key) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// String names the key as BIND's file names do: zone, algorithm, tag.
func (k *Key) String() string {
	name, _ := algorithmName(k.DNSKEY.Algorithm)
	role := "ZSK"
	if k.KSK() {
		role = "KSK"
	}
	return fmt.Sprintf("%s %s %s tag %d", k.DNSKEY.Hdr.Name, role, name, k.Tag())
}

// FileBase is the base name BIND and ldns give the key's files:
// K<zone>+<algorithm>+<tag>, to which .key and .private are added.
func (k *Key) FileBase() string {
	return fmt.Sprintf("K%s+%03d+%05d", k.DNSKEY.Hdr.Name, k.DNSKEY.Algorithm, k.Tag())
}

func algorithmName(a uint8) (string, bool) {
	for n, v := range Algorithms {
		if v == a {
			return n, true
		}
	}
	return fmt.Sprint(a), false
}

package signing

import (
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Policy says how long signatures last. Signatures start Backdate before
// they are made, so that a validator whose clock is behind accepts them,
// and are made again when less than Refresh of their Validity is left.
type Policy struct {
	Validity time.Duration
	Refresh  time.Duration
	Backdate time.Duration
}

// DefaultPolicy is two weeks of validity, renewed after one, and an hour
// of backdating.
func DefaultPolicy() Policy {
	return Policy{Validity: 14 * 24 * time.Hour, Refresh: 7 * 24 * time.Hour, Backdate: time.Hour}
}

// Validate reports a policy that cannot work.
func (p Policy) Validate() error {
	if p.Validity < time.Hour || p.Refresh <= 0 || p.Refresh >= p.Validity || p.Backdate < 0 || p.Backdate > p.Validity {
		return fmt.Errorf("signing: policy: validity %s must be at least an hour, refresh %s between 0 and the validity, backdate %s within it", p.Validity, p.Refresh, p.Backdate)
	}
	return nil
}

// Window returns the inception and expiration of signatures made at now.
func (p Policy) Window(now time.Time) (inception, expiration uint32) {
	return uint32(now.Add(-p.Backdate).Unix()), uint32(now.Add(p.Validity).Unix())
}

// RefreshAt returns when signatures made at now are to be made again.
func (p Policy) RefreshAt(now time.Time) time.Time {
	return now.Add(p.Validity - p.Refresh)
}

// Keyset is the keys of one zone. Every key is published in the DNSKEY
// RRset and signs: key signing keys the DNSKEY, CDS and CDNSKEY RRsets,
// zone signing keys the rest, and key signing keys everything when the
// zone has no zone signing key (a combined signing key). Two keys of a
// role sign side by side during a rollover (the double signature method).
type Keyset struct {
	Zone   string
	Keys   []*Key
	Policy Policy
	// ID is a digest of the keys and the policy: the same keys read again
	// have the same ID, so signatures cached for them stay good.
	ID uint64
}

// NewKeyset checks keys for zone: at least one key signing key, every key
// owned by the zone, no tag twice.
func NewKeyset(zone string, keys []*Key, policy Policy) (*Keyset, error) {
	zone = dns.CanonicalName(zone)
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("signing: zone %s has no keys", zone)
	}
	ksk := false
	seen := map[uint16]bool{}
	for _, k := range keys {
		if k.DNSKEY.Hdr.Name != zone {
			return nil, fmt.Errorf("signing: key %s belongs to %s, not %s", k, k.DNSKEY.Hdr.Name, zone)
		}
		if seen[k.Tag()] {
			return nil, fmt.Errorf("signing: zone %s has two keys with tag %d", zone, k.Tag())
		}
		seen[k.Tag()] = true
		ksk = ksk || k.KSK()
	}
	if !ksk {
		return nil, fmt.Errorf("signing: zone %s has no key signing key (flags 257)", zone)
	}
	ks := &Keyset{Zone: zone, Keys: slices.Clone(keys), Policy: policy}
	slices.SortFunc(ks.Keys, func(a, b *Key) int { return int(a.Tag()) - int(b.Tag()) })
	h := fnv.New64a()
	fmt.Fprint(h, zone, policy)
	for _, k := range ks.Keys {
		fmt.Fprint(h, k.DNSKEY.String())
	}
	ks.ID = h.Sum64()
	return ks, nil
}

// DNSKEYs returns the zone's DNSKEY RRset with the given TTL.
func (ks *Keyset) DNSKEYs(ttl uint32) []dns.RR {
	out := make([]dns.RR, 0, len(ks.Keys))
	for _, k := range ks.Keys {
		c := *k.DNSKEY
		c.Hdr.Ttl = ttl
		out = append(out, &c)
	}
	return out
}

// CDS returns the CDS and CDNSKEY RRsets that ask the parent to publish
// the DS of the key signing keys (RFC 7344, RFC 8078).
func (ks *Keyset) CDS(ttl uint32) (cds, cdnskey []dns.RR) {
	for _, k := range ks.Keys {
		if !k.KSK() {
			continue
		}
		c := k.DS().ToCDS()
		c.Hdr.Ttl = ttl
		cds = append(cds, c)
		ck := k.DNSKEY.ToCDNSKEY()
		ck.Hdr.Ttl = ttl
		cdnskey = append(cdnskey, ck)
	}
	return cds, cdnskey
}

// hasZSK reports whether some key is a zone signing key only.
func (ks *Keyset) hasZSK() bool {
	return slices.ContainsFunc(ks.Keys, func(k *Key) bool { return !k.KSK() })
}

// signers returns the keys that sign an RRset of type t.
func (ks *Keyset) signers(t uint16) []*Key {
	apexKeys := t == dns.TypeDNSKEY || t == dns.TypeCDS || t == dns.TypeCDNSKEY
	zsk := ks.hasZSK()
	var out []*Key
	for _, k := range ks.Keys {
		if k.KSK() == apexKeys || k.KSK() && !zsk {
			out = append(out, k)
		}
	}
	return out
}

// Sign returns the RRSIGs of rrset, one per signing key, valid from
// inception to expiration. rrset must be one RRset: one owner, type and
// class; its records are signed in canonical form and order whatever
// their order here (RFC 4034 section 6.3).
func (ks *Keyset) Sign(rrset []dns.RR, inception, expiration uint32) ([]dns.RR, error) {
	if len(rrset) == 0 {
		return nil, nil
	}
	h := rrset[0].Header()
	var out []dns.RR
	for _, k := range ks.signers(h.Rrtype) {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Ttl: h.Ttl},
			Algorithm:  k.DNSKEY.Algorithm,
			Expiration: expiration,
			Inception:  inception,
			KeyTag:     k.Tag(),
			SignerName: ks.Zone,
			OrigTtl:    h.Ttl,
		}
		if err := sig.Sign(k.signer, rrset); err != nil {
			return nil, fmt.Errorf("signing: sign %s %s with %s: %w", h.Name, dns.TypeToString[h.Rrtype], k, err)
		}
		out = append(out, sig)
	}
	return out, nil
}

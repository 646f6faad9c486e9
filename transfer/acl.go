package transfer

import (
	"net/netip"
)

// key is a TSIG key ready for use: its name fully qualified and lower
// case, miekg/dns's algorithm name and the secret in base64.
type key struct {
	name, alg, secret string
}

// rule is a Rule ready for matching.
type rule struct {
	zones zoneSet
	from  []netip.Prefix
	keys  map[string]bool // by keyName; empty: any or no key
}

// acl decides who may transfer what. It is immutable once built.
type acl struct {
	keys  map[string]*key
	rules []rule
}

func newACL(c *Config) *acl {
	a := &acl{keys: map[string]*key{}}
	for _, k := range c.Keys {
		n := keyName(k.Name)
		a.keys[n] = &key{name: n, alg: k.DNSAlgorithm(), secret: k.Secret}
	}
	for _, r := range c.Allow {
		cr := rule{zones: newZoneSet(r.Zones), keys: map[string]bool{}}
		for _, p := range r.From {
			cr.from = append(cr.from, p.Masked())
		}
		for _, k := range r.Keys {
			cr.keys[keyName(k)] = true
		}
		a.rules = append(a.rules, cr)
	}
	return a
}

// allowed reports whether a client at addr, whose request was signed
// with the key named signer (verified; "" when unsigned), may transfer
// the zone origin: some rule names the zone, holds addr in one of its
// prefixes (when it lists any) and names signer (when it lists keys).
func (a *acl) allowed(origin string, addr netip.Addr, signer string) bool {
	addr = addr.Unmap()
	for _, r := range a.rules {
		if !r.zones.has(origin) {
			continue
		}
		if len(r.from) > 0 && !containsAddr(r.from, addr) {
			continue
		}
		if len(r.keys) > 0 && !r.keys[signer] {
			continue
		}
		return true
	}
	return false
}

// covers reports whether some rule names the zone: only then may it be
// transferred, and is it worth a journal.
func (a *acl) covers(origin string) bool {
	for _, r := range a.rules {
		if r.zones.has(origin) {
			return true
		}
	}
	return false
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

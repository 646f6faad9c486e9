package update

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/tsigkey"
)

// Config says who may update what. Without rules no UPDATE is accepted.
type Config struct {
	// Keys are the TSIG keys (RFC 8945) rules may name; every UPDATE
	// must be signed with one of them.
	Keys []Key
	// Rules grant a key the right to change some names and types of
	// some zones, BIND update-policy style. A change is allowed when one
	// rule of the signing key allows it.
	Rules []Rule
}

// Key is a TSIG key: its name, algorithm (hmac-sha256 or hmac-sha512)
// and secret in base64.
type Key = tsigkey.Key

// Rule lets Key change, in Zones, the names matched by Names (all names
// of the zone when empty) and the types in Types (any type when empty).
// A name is absolute ("host.example.com.") or relative to the zone
// ("_acme-challenge", "@" for the apex); a leading "*." matches every
// name strictly below the rest ("*.dyn" matches a.dyn and a.b.dyn, not
// dyn itself).
type Rule struct {
	Key   string
	Zones []string
	Names []string
	Types []string
}

// Validate reports the first error in c: a key without name, algorithm
// or secret, a rule naming a key not defined, a zone, name or type that
// does not parse.
func (c *Config) Validate() error {
	keys, err := tsigkey.Check(c.Keys)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	for i, r := range c.Rules {
		if r.Key == "" || !keys[canonical(r.Key)] {
			return fmt.Errorf("update: policy entry %d names TSIG key %q, which is not defined", i+1, r.Key)
		}
		if len(r.Zones) == 0 {
			return fmt.Errorf("update: policy entry %d lists no zones", i+1)
		}
		for _, z := range r.Zones {
			if _, ok := dns.IsDomainName(z); !ok {
				return fmt.Errorf("update: policy entry %d: zone %q is not a domain name", i+1, z)
			}
		}
		for _, n := range r.Names {
			if _, ok := dns.IsDomainName(strings.TrimPrefix(n, "*.")); !ok && n != "@" && n != "*" {
				return fmt.Errorf("update: policy entry %d: name %q is not a domain name", i+1, n)
			}
		}
		for _, t := range r.Types {
			if _, ok := dns.StringToType[strings.ToUpper(t)]; !ok {
				return fmt.Errorf("update: policy entry %d: unknown type %q", i+1, t)
			}
		}
	}
	return nil
}

func canonical(s string) string { return dns.CanonicalName(s) }

// rule is a Rule compiled: zones and names canonical, types as numbers.
type rule struct {
	zones map[string]bool
	names []string // absolute patterns per zone are made at match time
	types map[uint16]bool
}

func compile(r Rule) rule {
	c := rule{zones: map[string]bool{}}
	for _, z := range r.Zones {
		c.zones[canonical(z)] = true
	}
	c.names = r.Names
	if len(r.Types) > 0 {
		c.types = map[uint16]bool{}
		for _, t := range r.Types {
			c.types[dns.StringToType[strings.ToUpper(t)]] = true
		}
	}
	return c
}

// allows reports whether the rule lets its key change the RRset of type
// t (dns.TypeANY: every RRset) at name in zone.
func (r rule) allows(zone, name string, t uint16) bool {
	if !r.zones[zone] {
		return false
	}
	if r.types != nil && (t == dns.TypeANY || !r.types[t]) {
		return false
	}
	if len(r.names) == 0 {
		return true
	}
	for _, n := range r.names {
		if matchName(zone, n, name) {
			return true
		}
	}
	return false
}

// matchName reports whether name (canonical) matches pattern, relative
// to zone unless absolute.
func matchName(zone, pattern, name string) bool {
	wild := false
	switch {
	case pattern == "*":
		pattern, wild = "@", true
	case strings.HasPrefix(pattern, "*."):
		pattern, wild = pattern[2:], true
	}
	switch {
	case pattern == "@":
		pattern = zone
	case !dns.IsFqdn(pattern):
		pattern = pattern + "." + zone
	}
	pattern = canonical(pattern)
	if !wild {
		return name == pattern
	}
	return name != pattern && dns.IsSubDomain(pattern, name)
}

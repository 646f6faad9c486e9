package mgmtapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meridiandns/meridian/zones"
)

// Scopes of a token.
const (
	ScopeRead  = "read"  // read every zone, the checkers and the audit log
	ScopeAdmin = "admin" // everything: zones created and deleted too
	// ScopeZonePrefix starts "zone:<origin>": read and write that zone's
	// records, datacenters, pools, endpoints and admin states.
	ScopeZonePrefix = "zone:"
)

// ParseScope checks a scope and returns it in its canonical form (a
// zone's origin fully qualified, lower case).
func ParseScope(s string) (string, error) {
	switch {
	case s == ScopeRead || s == ScopeAdmin:
		return s, nil
	case strings.HasPrefix(s, ScopeZonePrefix):
		z := strings.TrimPrefix(s, ScopeZonePrefix)
		if z == "" || strings.ContainsAny(z, " \t/") {
			return "", fmt.Errorf("scope %q: want zone:<origin>", s)
		}
		return ScopeZonePrefix + zones.CanonicalName(z), nil
	}
	return "", fmt.Errorf("unknown scope %q (want read, admin or zone:<origin>)", s)
}

// Principal is who a request acts as.
type Principal struct {
	Name   string   // in the audit log: "token:<label>"
	Scopes []string // canonical (ParseScope)
}

func (p Principal) has(scope string) bool { return slices.Contains(p.Scopes, scope) }

// Admin reports whether p may do everything.
func (p Principal) Admin() bool { return p.has(ScopeAdmin) }

// CanRead reports whether p may read zone origin (canonical).
func (p Principal) CanRead(origin string) bool {
	return p.has(ScopeRead) || p.CanWrite(origin)
}

// CanWrite reports whether p may change zone origin (canonical).
func (p Principal) CanWrite(origin string) bool {
	return p.Admin() || p.has(ScopeZonePrefix+origin)
}

// ReadsAll reports whether p may read every zone, the checkers and the
// whole audit log.
func (p Principal) ReadsAll() bool { return p.Admin() || p.has(ScopeRead) }

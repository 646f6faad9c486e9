package secondary

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/tsigkey"
	"github.com/meridiandns/meridian/zones"
)

// Config lists the zones Meridian is a secondary for and the TSIG keys
// their transfers are signed with.
type Config struct {
	Zones []Zone
	Keys  []Key
	// FirstRetry is how long a zone never transferred waits before it
	// tries again, having no SOA to take the retry interval from (and
	// the least wait between two tries in any case). Zero:
	// DefaultFirstRetry.
	FirstRetry time.Duration
	// Timeout bounds each exchange with a primary (an SOA query, each
	// message of a transfer). Zero: DefaultTimeout.
	Timeout time.Duration
}

// Zone is one zone transferred from Primaries (each IP:port, tried in
// order), signed with the TSIG key named Key when set. NOTIFY for the
// zone is accepted from the primaries' addresses only.
type Zone struct {
	Origin    string
	Primaries []string
	Key       string
	// Overlay, when set, holds datacenters and pools (and no records)
	// added to every copy of the zone: pools defined on top of a zone
	// that another server owns.
	Overlay *zones.Zone
}

// Key is a TSIG key (RFC 8945): hmac-sha256 or hmac-sha512, the secret
// in base64.
type Key = tsigkey.Key

// Defaults for the zero values of Config.
const (
	DefaultFirstRetry = 10 * time.Second
	DefaultTimeout    = 5 * time.Second
)

// Validate reports the first problem of c: a zone without an origin or
// primaries, a zone listed twice, a primary that is not IP:port, a key
// not defined, or a key that is not usable.
func (c *Config) Validate() error {
	keys, err := tsigkey.Check(c.Keys)
	if err != nil {
		return fmt.Errorf("secondary: %w", err)
	}
	seen := map[string]bool{}
	for i, z := range c.Zones {
		if z.Origin == "" {
			return fmt.Errorf("secondary: zone %d has no name", i+1)
		}
		if _, ok := dns.IsDomainName(z.Origin); !ok {
			return fmt.Errorf("secondary: zone %q is not a domain name", z.Origin)
		}
		o := dns.CanonicalName(z.Origin)
		if seen[o] {
			return fmt.Errorf("secondary: zone %s is listed twice", o)
		}
		seen[o] = true
		if len(z.Primaries) == 0 {
			return fmt.Errorf("secondary: zone %s lists no primary", o)
		}
		for _, p := range z.Primaries {
			if _, err := netip.ParseAddrPort(p); err != nil {
				return fmt.Errorf("secondary: zone %s: primary %q is not IP:port", o, p)
			}
		}
		if ov := z.Overlay; ov != nil {
			if zones.CanonicalName(ov.Origin) != o {
				return fmt.Errorf("secondary: zone %s: the pools file %s is for %s", o, ov.Source, ov.Origin)
			}
			if len(ov.Records) > 0 {
				return fmt.Errorf("secondary: zone %s: the pools file %s holds records: only datacenters and pools go on a transferred zone", o, ov.Source)
			}
		}
		if z.Key != "" && !keys[dns.CanonicalName(z.Key)] {
			return fmt.Errorf("secondary: zone %s names TSIG key %s, which is not defined", o, z.Key)
		}
	}
	if c.FirstRetry < 0 || c.Timeout < 0 {
		return errors.New("secondary: first retry and timeout cannot be negative")
	}
	return nil
}

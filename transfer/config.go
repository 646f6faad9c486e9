package transfer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/tsigkey"
)

// Config says which peers may transfer which zones, with which TSIG keys,
// and which secondaries are told of changes. The zero Config refuses
// every transfer and notifies nobody.
type Config struct {
	// Keys are the TSIG keys (RFC 8945) that rules and notify targets
	// name.
	Keys []Key
	// Allow lists the rules that allow transfers; a transfer matching
	// none is refused.
	Allow []Rule
	// Notify lists the secondaries told of each new serial.
	Notify []Target
	// JournalSize bounds the differences kept per zone for IXFR; 0 means
	// DefaultJournalSize.
	JournalSize int
	// NotifyTries bounds the NOTIFY messages sent per change and target
	// until one is answered (RFC 1996 section 3.6); 0 means
	// DefaultNotifyTries. NotifyTimeout is how long the first waits for
	// its answer, doubling at each try; 0 means DefaultNotifyTimeout.
	NotifyTries   int
	NotifyTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultJournalSize   = 64
	DefaultNotifyTries   = 5
	DefaultNotifyTimeout = time.Second
)

// Key is a TSIG key: its name, its algorithm (hmac-sha256 or
// hmac-sha512) and its secret, in base64 as BIND and Knot write it.
type Key = tsigkey.Key

// Rule allows transfers of Zones ("*" for every zone) to clients whose
// address is in one of From, signed with one of Keys. A rule with both
// lists asks for both; one of them may be empty, not both.
type Rule struct {
	Zones []string
	From  []netip.Prefix
	Keys  []string
}

// Target is a list of secondaries (To, each an IP:port) told of every
// new serial of Zones ("*" for every zone) by a NOTIFY, signed with the
// TSIG key named Key when it is set.
type Target struct {
	Zones []string
	To    []string
	Key   string
}

// Validate reports the first problem of c: a key without a name, an
// unknown algorithm, a secret that is not base64, a key defined twice, a
// rule or target naming an unknown key or no zone, a rule allowing
// anyone, a target that is not IP:port.
func (c *Config) Validate() error {
	keys, err := tsigkey.Check(c.Keys)
	if err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	for i, r := range c.Allow {
		if len(r.Zones) == 0 {
			return fmt.Errorf("transfer: allow rule %d names no zone", i+1)
		}
		if len(r.From) == 0 && len(r.Keys) == 0 {
			return fmt.Errorf("transfer: allow rule %d names neither addresses nor keys: it would allow anyone (write from: [0.0.0.0/0, ::/0] if that is meant)", i+1)
		}
		for _, k := range r.Keys {
			if !keys[keyName(k)] {
				return fmt.Errorf("transfer: allow rule %d names TSIG key %s, which is not defined", i+1, k)
			}
		}
	}
	for i, n := range c.Notify {
		if len(n.Zones) == 0 || len(n.To) == 0 {
			return fmt.Errorf("transfer: notify entry %d needs zones and to", i+1)
		}
		for _, to := range n.To {
			if _, err := netip.ParseAddrPort(to); err != nil {
				return fmt.Errorf("transfer: notify entry %d: %q is not IP:port", i+1, to)
			}
		}
		if n.Key != "" && !keys[keyName(n.Key)] {
			return fmt.Errorf("transfer: notify entry %d names TSIG key %s, which is not defined", i+1, n.Key)
		}
	}
	if c.JournalSize < 0 || c.NotifyTries < 0 || c.NotifyTimeout < 0 {
		return errors.New("transfer: journal size, notify tries and notify timeout cannot be negative")
	}
	return nil
}

// keyName is the form TSIG key names are compared in: fully qualified,
// lower case (RFC 8945 section 4.2 compares them as domain names).
func keyName(s string) string { return strings.ToLower(dns.Fqdn(s)) }

// zoneSet matches zone origins: "*" matches every zone.
type zoneSet struct {
	all   bool
	names map[string]bool
}

func newZoneSet(zs []string) zoneSet {
	s := zoneSet{names: map[string]bool{}}
	for _, z := range zs {
		if z == "*" {
			s.all = true
			continue
		}
		s.names[strings.ToLower(dns.Fqdn(z))] = true
	}
	return s
}

func (s zoneSet) has(origin string) bool { return s.all || s.names[origin] }

package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/meridiandns/meridian/transfer"
)

// transferConfig is the "transfer" section: zone transfers to secondary
// servers and NOTIFY (docs/transfers.md). Off unless allow or notify
// lists something: every transfer is then refused.
type transferConfig struct {
	// TSIGKeys (transfer.tsig_keys) are the TSIG keys (RFC 8945) that
	// allow rules and notify entries name.
	TSIGKeys []tsigKeyConfig `mapstructure:"tsig_keys"`
	// Allow (transfer.allow) lists who may transfer which zones.
	Allow []transferAllowConfig `mapstructure:"allow"`
	// Notify (transfer.notify) lists the secondaries told of every new
	// serial of a zone.
	Notify []transferNotifyConfig `mapstructure:"notify"`
	// JournalSize (transfer.journal_size) is how many changes of each
	// zone are kept for IXFR.
	JournalSize int `mapstructure:"journal_size"`
	// NotifyTries (transfer.notify_tries) bounds the NOTIFY messages sent
	// per change and secondary until one is answered.
	NotifyTries int `mapstructure:"notify_tries"`
	// NotifyTimeout (transfer.notify_timeout) is how long the first
	// NOTIFY waits for its answer; the wait doubles at each try.
	NotifyTimeout time.Duration `mapstructure:"notify_timeout"`
}

// tsigKeyConfig is one entry of transfer.tsig_keys.
type tsigKeyConfig struct {
	// Name is the key's name, as the peer knows it.
	Name string `mapstructure:"name"`
	// Algorithm is hmac-sha256 or hmac-sha512.
	Algorithm string `mapstructure:"algorithm"`
	// Secret is the key in base64 (keymgr -t, tsig-keygen).
	Secret string `mapstructure:"secret"`
}

// transferAllowConfig is one entry of transfer.allow.
type transferAllowConfig struct {
	// Zones are the zones the entry allows, or "*" for all.
	Zones []string `mapstructure:"zones"`
	// From are the client addresses or prefixes allowed; empty: any
	// address, when keys is set.
	From []string `mapstructure:"from"`
	// Keys are the TSIG keys one of which must sign the request; empty:
	// none needed, when from is set.
	Keys []string `mapstructure:"keys"`
}

// transferNotifyConfig is one entry of transfer.notify.
type transferNotifyConfig struct {
	// Zones are the zones whose changes are notified, or "*" for all.
	Zones []string `mapstructure:"zones"`
	// To are the secondaries, each IP:port.
	To []string `mapstructure:"to"`
	// Key, when set, names the TSIG key that signs the NOTIFY messages.
	Key string `mapstructure:"key"`
}

// enabled reports whether the section asks for anything: without allow
// or notify entries the server refuses transfers as it always did.
func (t transferConfig) enabled() bool { return len(t.Allow) > 0 || len(t.Notify) > 0 }

// parse turns the section into a transfer.Config and validates it.
func (t transferConfig) parse() (transfer.Config, error) {
	c := transfer.Config{JournalSize: t.JournalSize, NotifyTries: t.NotifyTries, NotifyTimeout: t.NotifyTimeout}
	for _, k := range t.TSIGKeys {
		c.Keys = append(c.Keys, transfer.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	for i, a := range t.Allow {
		r := transfer.Rule{Zones: a.Zones, Keys: a.Keys}
		for _, f := range a.From {
			p, err := parsePrefix(f)
			if err != nil {
				return c, fmt.Errorf("transfer.allow[%d].from: %w", i, err)
			}
			r.From = append(r.From, p)
		}
		c.Allow = append(c.Allow, r)
	}
	for _, n := range t.Notify {
		c.Notify = append(c.Notify, transfer.Target{Zones: n.Zones, To: n.To, Key: n.Key})
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// parsePrefix reads a prefix or a single address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Package tsigkey is a TSIG key (RFC 8945) as the configuration gives it,
// shared by zone transfers, the secondary and dynamic updates, so that
// the three accept and check keys alike.
package tsigkey

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Key is a TSIG key: its name, its algorithm (hmac-sha256 or
// hmac-sha512) and its secret, in base64 as BIND and Knot write it.
type Key struct {
	Name      string
	Algorithm string
	Secret    string
}

// algorithms maps the names accepted for Key.Algorithm to miekg/dns's.
var algorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha512": dns.HmacSHA512,
}

// CanonicalName returns the key's name as TSIG records carry it:
// absolute and lower case.
func CanonicalName(name string) string { return dns.CanonicalName(name) }

// DNSAlgorithm returns the key's algorithm as miekg/dns names it, ""
// when it is not one accepted.
func (k Key) DNSAlgorithm() string { return algorithms[strings.ToLower(k.Algorithm)] }

// Check reports the first problem of keys (a key without a name, defined
// twice, with an algorithm other than hmac-sha256 or hmac-sha512, or a
// secret that is not base64) and returns their canonical names.
func Check(keys []Key) (map[string]bool, error) {
	names := map[string]bool{}
	for _, k := range keys {
		name := CanonicalName(k.Name)
		switch {
		case k.Name == "":
			return nil, errors.New("a TSIG key has no name")
		case names[name]:
			return nil, fmt.Errorf("TSIG key %s is defined twice", k.Name)
		case k.DNSAlgorithm() == "":
			return nil, fmt.Errorf("TSIG key %s: algorithm %q is not hmac-sha256 or hmac-sha512", k.Name, k.Algorithm)
		}
		if b, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(b) == 0 {
			return nil, fmt.Errorf("TSIG key %s: the secret is not base64", k.Name)
		}
		names[name] = true
	}
	return names, nil
}

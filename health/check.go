package health

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults applied by Check.WithDefaults to fields left zero.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultMethod   = "GET"
	DefaultPath     = "/"
	DefaultDNSPort  = 53
	DefaultDNSType  = dns.TypeSOA

	// DefaultRise is high on purpose: it is the only threshold that
	// decides whether an endpoint failing at random comes back up (any
	// failure restarts the count), so it alone bounds flapping. For an
	// endpoint failing half of its probes, the chance of two or more state
	// changes within 100 probes is near 1 at rise 2, 4.4e-2 at 10,
	// 1.1e-2 at 12, 6.6e-4 at 16 and 3.9e-5 at 20 (exact figures,
	// TestFlappingProbability). 20 is also gdnsd's up_thresh. The price is
	// that recovery, and the first "up" verdict after a start, take
	// 20 intervals (100 s at the default interval).
	DefaultRise = 20
	// DefaultFall takes an endpoint that stops answering down within
	// three intervals.
	DefaultFall = 3
	// DefaultOK forgives failures once two probes in a row succeed. On
	// average, an endpoint losing 1% of its probes is wrongly taken down
	// once in 260,000 probes (15 days at 5 s); one failing 20% of them is
	// taken down within 60 probes, one failing half within 8.
	DefaultOK = 2
)

// Response bodies are searched for ExpectBody in their first maxBody bytes.
const maxBody = 64 << 10

// minInterval keeps a misconfigured check from probing in a tight loop.
const minInterval = 10 * time.Millisecond

// Check types.
const (
	TypeHTTP  = "http"
	TypeHTTPS = "https"
	TypeTCP   = "tcp"
	// TypeAgent reads one line from an HAProxy agent-check agent on the
	// port ("up", "drain", "75%", ...), so existing agents work unchanged.
	TypeAgent = "agent"
	TypeDNS   = "dns"
)

// Check says how to probe an endpoint and how to judge the results. Zero
// fields take the defaults of WithDefaults; Type, and Port or DNSName as
// the type needs, have none.
type Check struct {
	Type string // "http", "https", "tcp", "dns" or "agent"
	// Port is required for http, https and tcp; dns defaults to 53.
	Port uint16

	// Host is the HTTP Host header and the TLS server name. The probe
	// still connects to the target's address, never to Host.
	Host         string
	Method       string // default GET
	Path         string // default "/", may carry a query
	ExpectStatus []int  // default [200]
	// ExpectBody must appear in the first 64 KiB of the body; "" accepts
	// any body.
	ExpectBody string
	// TLSVerify checks the https certificate and name against CAFile, or
	// the system roots when CAFile is "".
	TLSVerify bool
	CAFile    string

	DNSName     string // required for dns
	DNSType     uint16 // default SOA
	ExpectRcode int    // default NOERROR

	Interval time.Duration // default 5s
	Timeout  time.Duration // default 2s, must be below Interval

	// Rise, Fall and OK are the Tracker's thresholds (default 20, 3, 2).
	Rise, Fall, OK int
}

// WithDefaults returns c with defaults in the zero fields.
func (c Check) WithDefaults() Check {
	c.Type = strings.ToLower(c.Type)
	if c.Port == 0 && c.Type == TypeDNS {
		c.Port = DefaultDNSPort
	}
	if c.Method == "" {
		c.Method = DefaultMethod
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if len(c.ExpectStatus) == 0 {
		c.ExpectStatus = []int{200}
	}
	if c.DNSName != "" {
		c.DNSName = dns.Fqdn(c.DNSName)
	}
	if c.DNSType == 0 {
		c.DNSType = DefaultDNSType
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	c.Rise, c.Fall, c.OK = c.thresholds()
	return c
}

// thresholds returns Rise, Fall and OK with defaults, without the copying
// and allocation of WithDefaults.
func (c Check) thresholds() (rise, fall, ok int) {
	rise, fall, ok = c.Rise, c.Fall, c.OK
	if rise == 0 {
		rise = DefaultRise
	}
	if fall == 0 {
		fall = DefaultFall
	}
	if ok == 0 {
		ok = DefaultOK
	}
	return rise, fall, ok
}

// Validate reports what is wrong with c, which should have been through
// WithDefaults. It reads no files: a missing CAFile shows up as the
// reason of failing probes.
func (c Check) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch c.Type {
	case TypeHTTP, TypeHTTPS:
		if c.Port == 0 {
			bad("port required for %s", c.Type)
		}
		if !isToken(c.Method) {
			bad("invalid method %q", c.Method)
		}
		if _, err := url.ParseRequestURI(c.Path); err != nil || !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, " \t\r\n") {
			bad("invalid path %q: want an absolute path like /health", c.Path)
		}
		if strings.ContainsAny(c.Host, " \t\r\n/") {
			bad("invalid host %q", c.Host)
		}
		for _, s := range c.ExpectStatus {
			if s < 100 || s > 599 {
				bad("invalid expected status %d", s)
			}
		}
		if len(c.ExpectBody) > maxBody {
			bad("expected body longer than %d bytes", maxBody)
		}
		if c.CAFile != "" && c.Type == TypeHTTPS && !c.TLSVerify {
			bad("ca file %q given but tls verification is off", c.CAFile)
		}
	case TypeTCP, TypeAgent:
		if c.Port == 0 {
			bad("port required for %s", c.Type)
		}
	case TypeDNS:
		if c.DNSName == "" {
			bad("dns name required for dns")
		} else if _, ok := dns.IsDomainName(c.DNSName); !ok {
			bad("invalid dns name %q", c.DNSName)
		}
		if _, ok := dns.TypeToString[c.DNSType]; !ok {
			bad("unknown dns type %d", c.DNSType)
		}
		if _, ok := dns.RcodeToString[c.ExpectRcode]; !ok {
			bad("unknown rcode %d", c.ExpectRcode)
		}
	default:
		bad("unknown check type %q", c.Type)
	}
	switch {
	case c.Interval < minInterval:
		bad("interval %s below %s", c.Interval, minInterval)
	case c.Timeout <= 0:
		bad("timeout %s not positive", c.Timeout)
	case c.Timeout >= c.Interval:
		bad("timeout %s not below interval %s", c.Timeout, c.Interval)
	}
	if c.Rise < 1 || c.Fall < 1 || c.OK < 1 {
		bad("rise, fall and ok must be at least 1 (have %d, %d, %d)", c.Rise, c.Fall, c.OK)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("health: check: %w", err)
	}
	return nil
}

// isToken tells whether s is an HTTP token (RFC 9110 section 5.6.2), which
// is what a method must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

// equal tells whether two checks probe and judge alike.
func (c Check) equal(d Check) bool {
	return reflect.DeepEqual(c, d)
}

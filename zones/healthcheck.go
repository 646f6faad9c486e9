package zones

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// HealthCheck is how health checkers probe a pool's endpoints: always at
// the endpoint's own address, never through a public name. Zero fields
// take the checker's defaults, so a check says only what differs.
type HealthCheck struct {
	Type         string        `json:"type"`                    // http, https, tcp, dns or agent (HAProxy agent-check)
	Port         uint16        `json:"port,omitempty"`          // required for http, https and tcp
	Host         string        `json:"host,omitempty"`          // HTTP Host header and TLS server name
	Method       string        `json:"method,omitempty"`        // HTTP method (GET)
	Path         string        `json:"path,omitempty"`          // HTTP path (/)
	ExpectStatus []int         `json:"expect_status,omitempty"` // HTTP statuses that pass (200)
	ExpectBody   string        `json:"expect_body,omitempty"`   // substring the body must hold, e.g. "UP"
	TLSInsecure  bool          `json:"tls_insecure,omitempty"`  // https without certificate verification
	CAFile       string        `json:"ca_file,omitempty"`       // https: verify against this CA bundle
	DNSName      string        `json:"dns_name,omitempty"`      // dns: the name to ask
	DNSType      string        `json:"dns_type,omitempty"`      // dns: the type to ask (A)
	ExpectRcode  string        `json:"expect_rcode,omitempty"`  // dns: the rcode that passes (NOERROR)
	Interval     time.Duration `json:"interval,omitempty"`
	Timeout      time.Duration `json:"timeout,omitempty"`
	Rise         int           `json:"rise,omitempty"` // consecutive successes to come up
	Fall         int           `json:"fall,omitempty"` // failures to go down
	OK           int           `json:"ok,omitempty"`   // consecutive successes that forget failures
	// DegradedTTL is the TTL of the pool's answers while any of its
	// active endpoints is down or not yet judged, so that resolvers ask
	// again soon after it recovers (default DefaultDegradedTTL).
	DegradedTTL uint32 `json:"degraded_ttl,omitempty"`
	// SlowStart ramps a recovered endpoint's weight up over this long,
	// so that it is not flooded by every returning client at once.
	SlowStart time.Duration `json:"slow_start,omitempty"`
}

// DefaultDegradedTTL is the answer TTL of a pool in trouble, in seconds.
const DefaultDegradedTTL = 10

// checkTypes are the probe types, in documentation order.
var checkTypes = []string{"http", "https", "tcp", "dns", "agent"}

// Problems lists what is wrong with c, in words for an operator.
func (c *HealthCheck) Problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if !slices.Contains(checkTypes, c.Type) {
		add("unknown check type %q (want %s)", c.Type, strings.Join(checkTypes, ", "))
	}
	if c.Port == 0 && c.Type != "dns" {
		add("a %s check needs a port", c.Type)
	}
	for _, s := range c.ExpectStatus {
		if s < 100 || s > 599 {
			add("expect_status %d is not an HTTP status", s)
		}
	}
	if c.Type == "dns" && c.DNSName == "" {
		add("a dns check needs dns_name")
	}
	if c.DNSType != "" {
		if _, ok := dns.StringToType[strings.ToUpper(c.DNSType)]; !ok {
			add("unknown dns_type %q", c.DNSType)
		}
	}
	if c.ExpectRcode != "" {
		if _, ok := dns.StringToRcode[strings.ToUpper(c.ExpectRcode)]; !ok {
			add("unknown expect_rcode %q", c.ExpectRcode)
		}
	}
	if c.Interval < 0 || c.Timeout < 0 || c.Rise < 0 || c.Fall < 0 || c.OK < 0 {
		add("interval, timeout, rise, fall and ok cannot be negative")
	}
	if c.Interval > 0 && c.Timeout >= c.Interval {
		add("timeout %s must be shorter than interval %s", c.Timeout, c.Interval)
	}
	return out
}

// healthCheckKeys are the keys of a health_check mapping.
var healthCheckKeys = []string{"type", "port", "host", "method", "path", "expect_status", "expect_body",
	"tls_insecure", "ca_file", "dns_name", "dns_type", "expect_rcode", "interval", "timeout", "rise", "fall", "ok", "degraded_ttl", "slow_start"}

// loadHealthCheck reads a health_check mapping over base (the pool's
// check, for an endpoint's override; nil for a pool's own).
func (y *yamlZone) loadHealthCheck(n *yaml.Node, what string, base *HealthCheck) *HealthCheck {
	f := y.mapping(n, what, healthCheckKeys)
	if f == nil {
		return nil
	}
	c := &HealthCheck{}
	if base != nil {
		*c = *base
		c.ExpectStatus = slices.Clone(base.ExpectStatus)
	} else if f["type"] == nil {
		y.errorf(n, "%s: missing key type", what)
		return nil
	}
	before := len(y.errs)
	strs := map[string]*string{"type": &c.Type, "host": &c.Host, "method": &c.Method, "path": &c.Path,
		"expect_body": &c.ExpectBody, "ca_file": &c.CAFile, "dns_name": &c.DNSName, "dns_type": &c.DNSType, "expect_rcode": &c.ExpectRcode}
	for k, p := range strs {
		if f[k] != nil {
			*p, _ = y.str(f[k], what+" "+k)
		}
	}
	ints := map[string]*int{"rise": &c.Rise, "fall": &c.Fall, "ok": &c.OK}
	for k, p := range ints {
		if f[k] != nil {
			if v, ok := y.uint32(f[k], what+" "+k); ok {
				*p = int(min(v, 1000))
			}
		}
	}
	if f["port"] != nil {
		if v, ok := y.uint32(f["port"], what+" port"); ok {
			if v == 0 || v > 65535 {
				y.errorf(f["port"], "%s port: want 1 to 65535, got %d", what, v)
			}
			c.Port = uint16(v)
		}
	}
	if f["degraded_ttl"] != nil {
		c.DegradedTTL, _ = y.uint32(f["degraded_ttl"], what+" degraded_ttl")
	}
	if f["tls_insecure"] != nil {
		c.TLSInsecure, _ = y.bool(f["tls_insecure"], what+" tls_insecure")
	}
	durs := map[string]*time.Duration{"interval": &c.Interval, "timeout": &c.Timeout, "slow_start": &c.SlowStart}
	for k, p := range durs {
		if f[k] != nil {
			if s, ok := y.str(f[k], what+" "+k); ok {
				d, err := time.ParseDuration(s)
				if err != nil || d <= 0 {
					y.errorf(f[k], "%s %s: want a positive duration such as 5s, got %q", what, k, s)
				}
				*p = d
			}
		}
	}
	if f["expect_status"] != nil {
		c.ExpectStatus = nil
		for _, s := range y.strs(f["expect_status"], what+" expect_status") {
			var v int
			if _, err := fmt.Sscan(s, &v); err != nil {
				y.errorf(f["expect_status"], "%s expect_status: %q is not a number", what, s)
				continue
			}
			c.ExpectStatus = append(c.ExpectStatus, v)
		}
	}
	if len(y.errs) > before {
		return nil
	}
	for _, p := range c.Problems() {
		y.errorf(n, "%s: %s", what, p)
	}
	return c
}

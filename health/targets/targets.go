// Package targets turns zones' pools into the health checker's probe
// targets, for meridian-checker and for the checker that "meridian serve"
// runs in-process without a database.
package targets

import (
	"log/slog"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/health"
	"github.com/meridiandns/meridian/zones"
)

// FromZones lists what to probe: every endpoint of every pool with a check,
// drained and disabled ones too, so their health is known when they return.
func FromZones(zs []*zones.Zone, logger *slog.Logger) []health.Target {
	var out []health.Target
	for _, z := range zs {
		for _, p := range z.Pools {
			if p.Check == nil {
				continue
			}
			for _, e := range p.Endpoints {
				c := p.Check
				if e.Check != nil {
					c = e.Check
				}
				hc, err := Check(c)
				if err != nil {
					logger.Warn("Not probing an endpoint with a bad check", "pool", p.Name, "address", e.Addr, "err", err)
					continue
				}
				out = append(out, health.Target{Key: Key(p.Name, e.Addr), Addr: e.Addr, Check: hc})
			}
		}
	}
	return out
}

// Key names an endpoint as a target: pool name and address.
func Key(pool string, addr netip.Addr) string { return pool + "/" + addr.String() }

// SplitKey reverses Key.
func SplitKey(key string) (string, netip.Addr, bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", netip.Addr{}, false
	}
	a, err := netip.ParseAddr(key[i+1:])
	return key[:i], a, err == nil
}

// Check turns the configuration into the prober's check, defaults
// applied by the prober.
func Check(c *zones.HealthCheck) (health.Check, error) {
	hc := health.Check{
		Type: c.Type, Port: c.Port, Host: c.Host, Method: c.Method, Path: c.Path,
		ExpectStatus: c.ExpectStatus, ExpectBody: c.ExpectBody,
		TLSVerify: !c.TLSInsecure, CAFile: c.CAFile,
		DNSName: c.DNSName, Interval: c.Interval, Timeout: c.Timeout,
		Rise: c.Rise, Fall: c.Fall, OK: c.OK,
	}
	if c.DNSType != "" {
		hc.DNSType = dns.StringToType[strings.ToUpper(c.DNSType)]
	}
	if c.ExpectRcode != "" {
		hc.ExpectRcode = dns.StringToRcode[strings.ToUpper(c.ExpectRcode)]
	}
	hc = hc.WithDefaults()
	return hc, hc.Validate()
}

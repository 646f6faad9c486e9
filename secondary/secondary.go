// Package secondary makes Meridian a secondary server of zones it does
// not own: it transfers each configured zone from its primaries (AXFR,
// RFC 5936; IXFR, RFC 1995), keeps it fresh on the SOA's refresh and
// retry timers, drops it once the SOA's expire time passes without a
// successful refresh (RFC 1035 section 3.3.13), and refreshes at once
// when a primary sends a NOTIFY (RFC 1996). Transfers and NOTIFY may be
// signed with TSIG (RFC 8945).
//
// A zone's copy is replaced only by a complete transfer that checks out
// (an SOA first and last with the same serial, every record inside the
// zone; for IXFR, a chain of differences from the serial held to the
// new one): a transfer cut in the middle changes nothing. The copies
// reach the snapshot through the store.Store that Manager.Store wraps.
package secondary

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// Manager keeps the transferred copies of the configured zones. Its
// methods are safe for concurrent use.
type Manager struct {
	logger     *slog.Logger
	zones      []*zone
	byName     map[string]*zone
	secrets    map[string]string // canonical key name: base64 secret
	algs       map[string]string // canonical key name: miekg/dns algorithm
	firstRetry time.Duration
	timeout    time.Duration
	changed    chan struct{} // a copy was installed or dropped
	counts     counters
}

// zone is the state of one secondary zone.
type zone struct {
	origin    string
	primaries []string
	addrs     []netip.Addr // the primaries' addresses, for NOTIFY
	key       string       // canonical TSIG key name; "" for none
	overlay   *zones.Zone  // datacenters and pools added to each copy; nil for none
	notify    chan struct{}

	mu   sync.Mutex
	copy *zoneCopy // nil: not served (never transferred, or expired)
}

// zoneCopy is a complete transferred zone, never modified once made.
type zoneCopy struct {
	soa     *dns.SOA
	rrs     []dns.RR // the whole zone, the SOA first
	zone    *zones.Zone
	primary string
}

// New returns a Manager for cfg, which it validates. Call Run to start
// the transfers. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		logger: logger, byName: map[string]*zone{},
		secrets: map[string]string{}, algs: map[string]string{},
		firstRetry: cfg.FirstRetry, timeout: cfg.Timeout,
		changed: make(chan struct{}, 1),
	}
	if m.firstRetry == 0 {
		m.firstRetry = DefaultFirstRetry
	}
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	for _, k := range cfg.Keys {
		name := dns.CanonicalName(k.Name)
		m.secrets[name] = k.Secret
		m.algs[name] = k.DNSAlgorithm()
	}
	for _, zc := range cfg.Zones {
		z := &zone{origin: dns.CanonicalName(zc.Origin), primaries: zc.Primaries, overlay: zc.Overlay, notify: make(chan struct{}, 1)}
		if zc.Key != "" {
			z.key = dns.CanonicalName(zc.Key)
		}
		for _, p := range zc.Primaries {
			z.addrs = append(z.addrs, netip.MustParseAddrPort(p).Addr().Unmap())
		}
		m.zones = append(m.zones, z)
		m.byName[z.origin] = z
	}
	return m, nil
}

// Origins returns the secondary zones' names, in configuration order.
func (m *Manager) Origins() []string {
	out := make([]string, len(m.zones))
	for i, z := range m.zones {
		out[i] = z.origin
	}
	return out
}

// Zones returns the copies currently served, sorted by origin. A zone
// never transferred, or expired, is not among them.
func (m *Manager) Zones() []*zones.Zone {
	var out []*zones.Zone
	for _, z := range m.zones {
		if c := z.current(); c != nil {
			out = append(out, c.zone)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out
}

// Serial returns the serial of the copy of origin served, and false
// when none is.
func (m *Manager) Serial(origin string) (uint32, bool) {
	z := m.byName[dns.CanonicalName(origin)]
	if z == nil {
		return 0, false
	}
	c := z.current()
	if c == nil {
		return 0, false
	}
	return c.soa.Serial, true
}

func (z *zone) current() *zoneCopy {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.copy
}

// signal tells the store wrapper that the copies changed.
func (m *Manager) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Run transfers and refreshes every zone until ctx is done, then
// returns nil.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, z := range m.zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.run(ctx, z)
		}()
	}
	wg.Wait()
	return nil
}

// seconds turns an SOA timer into a duration of at least least.
func seconds(s uint32, least time.Duration) time.Duration {
	return max(time.Duration(s)*time.Second, least)
}

// run is the refresh loop of one zone (RFC 1035 section 3.3.13): a
// successful check waits the SOA's refresh interval, a failed one its
// retry interval, and once expire has passed since the last successful
// check the zone is dropped and no longer served. A NOTIFY cuts the
// wait short (RFC 1996 section 3.7).
func (m *Manager) run(ctx context.Context, z *zone) {
	var lastOK time.Time
	var wait time.Duration
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-z.notify:
				t.Stop()
			}
		}
		err := m.refresh(ctx, z)
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		c := z.current()
		switch {
		case err == nil:
			lastOK = now
			wait = seconds(c.soa.Refresh, time.Second)
		case c == nil:
			wait = m.firstRetry
		default:
			expire := seconds(c.soa.Expire, time.Second)
			if now.Sub(lastOK) >= expire {
				z.mu.Lock()
				z.copy = nil
				z.mu.Unlock()
				m.counts.expired.Add(1)
				m.logger.Error("Secondary zone expired: no longer served", "zone", z.origin, "serial", c.soa.Serial,
					"last_refresh", lastOK.UTC().Format(time.RFC3339), "expire", expire.String(), "err", err)
				m.signal()
				wait = seconds(c.soa.Retry, time.Second)
				continue
			}
			// Retry, but not past the expiry, which is then noticed on time.
			wait = min(seconds(c.soa.Retry, time.Second), lastOK.Add(expire).Sub(now))
		}
	}
}

// refresh checks each primary in turn until one answers: it transfers
// the zone when none is held, or when the primary's serial is newer.
func (m *Manager) refresh(ctx context.Context, z *zone) error {
	var err error
	for _, p := range z.primaries {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err = m.refreshFrom(z, p); err == nil {
			return nil
		}
		m.logger.Warn("Secondary zone refresh failed", "zone", z.origin, "primary", p, "err", err)
	}
	return err
}

func (m *Manager) refreshFrom(z *zone, primary string) error {
	start := time.Now()
	c := z.current()
	if c == nil {
		soa, rrs, err := m.axfr(z, primary)
		if err != nil {
			return err
		}
		m.install(z, soa, rrs, primary, "AXFR", start)
		return nil
	}
	serial, err := m.querySerial(z, primary)
	if err != nil {
		return err
	}
	if !zones.SerialLess(c.soa.Serial, serial) {
		m.logger.Debug("Secondary zone up to date", "zone", z.origin, "primary", primary, "serial", c.soa.Serial)
		return nil
	}
	soa, rrs, kind, err := m.ixfr(z, primary, c)
	if err != nil {
		// RFC 1995 section 4: a primary that cannot answer the IXFR
		// (or answers one we cannot apply) is asked for the whole zone.
		m.logger.Warn("IXFR failed, trying AXFR", "zone", z.origin, "primary", primary, "err", err)
		kind = "AXFR"
		if soa, rrs, err = m.axfr(z, primary); err != nil {
			return err
		}
	}
	if rrs == nil {
		return nil // the primary says we are up to date after all
	}
	m.install(z, soa, rrs, primary, kind, start)
	return nil
}

// install makes rrs the zone's copy.
func (m *Manager) install(z *zone, soa *dns.SOA, rrs []dns.RR, primary, kind string, start time.Time) {
	recs := make([]zones.Record, len(rrs))
	for i, rr := range rrs {
		recs[i] = zones.Record{RR: rr}
	}
	zz := &zones.Zone{Origin: z.origin, Source: "transfer from " + primary, Records: recs}
	zones.Normalize(zz) // as a zone file is: exact duplicates go (RFC 2181 section 5)
	if z.overlay != nil {
		zz.Datacenters, zz.Pools = z.overlay.Datacenters, z.overlay.Pools
	}
	c := &zoneCopy{soa: soa, rrs: rrs, primary: primary, zone: zz}
	z.mu.Lock()
	old := z.copy
	z.copy = c
	z.mu.Unlock()
	var oldSerial any = "none"
	if old != nil {
		oldSerial = old.soa.Serial
	}
	m.logger.Info("Secondary zone transferred", "zone", z.origin, "primary", primary, "type", kind,
		"serial", soa.Serial, "old_serial", oldSerial, "records", len(rrs), "took", time.Since(start).Round(time.Microsecond).String())
	m.signal()
}

package transfer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxNotifying bounds the NOTIFY exchanges in flight, so that a change of
// many zones with many secondaries does not open sockets without end.
const maxNotifying = 64

// notifier sends NOTIFY (RFC 1996) to the secondaries of changed zones,
// over UDP, again and again with a growing timeout until one is
// answered (section 3.6), at most tries times. A newer change of a zone
// replaces the NOTIFY still being retried for the same secondary.
type notifier struct {
	targets []notifyTarget
	counts  *counters
	tries   int
	timeout time.Duration
	logger  *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // nil until run starts, and after it ends
	pending map[notifyKey]*pendingNotify
	wg      sync.WaitGroup
	slots   chan struct{}
}

type notifyTarget struct {
	zones zoneSet
	to    []string
	key   *key
}

type notifyKey struct{ origin, to string }

// pendingNotify is a NOTIFY being sent, to cancel when a newer one
// replaces it.
type pendingNotify struct{ cancel context.CancelFunc }

func newNotifier(c *Config, keys map[string]*key, counts *counters, logger *slog.Logger) *notifier {
	n := &notifier{counts: counts, tries: c.NotifyTries, timeout: c.NotifyTimeout, logger: logger,
		pending: map[notifyKey]*pendingNotify{}, slots: make(chan struct{}, maxNotifying)}
	if n.tries == 0 {
		n.tries = DefaultNotifyTries
	}
	if n.timeout == 0 {
		n.timeout = DefaultNotifyTimeout
	}
	for _, t := range c.Notify {
		nt := notifyTarget{zones: newZoneSet(t.Zones), to: t.To}
		if t.Key != "" {
			nt.key = keys[keyName(t.Key)]
		}
		n.targets = append(n.targets, nt)
	}
	return n
}

// covers reports whether some target is notified of origin's changes.
func (n *notifier) covers(origin string) bool {
	for _, t := range n.targets {
		if t.zones.has(origin) {
			return true
		}
	}
	return false
}

// start lets changed send, until stop.
func (n *notifier) start(ctx context.Context) {
	n.mu.Lock()
	n.ctx = ctx
	n.mu.Unlock()
}

// stop stops what is pending and waits for it.
func (n *notifier) stop() {
	n.mu.Lock()
	n.ctx = nil
	for _, p := range n.pending {
		p.cancel()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// changed notifies origin's secondaries that its serial is now soa's.
// It does not block; before start and after stop it does nothing.
func (n *notifier) changed(origin string, soa *dns.SOA) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx == nil {
		return
	}
	for _, t := range n.targets {
		if !t.zones.has(origin) {
			continue
		}
		for _, to := range t.to {
			k := notifyKey{origin, to}
			if p := n.pending[k]; p != nil {
				p.cancel()
			}
			ctx, cancel := context.WithCancel(n.ctx)
			p := &pendingNotify{cancel}
			n.pending[k] = p
			n.wg.Go(func() {
				defer func() {
					n.mu.Lock()
					cancel()
					if n.pending[k] == p {
						delete(n.pending, k)
					}
					n.mu.Unlock()
				}()
				n.send(ctx, origin, soa, to, t.key)
			})
		}
	}
}

// send notifies one secondary, retrying until it answers.
func (n *notifier) send(ctx context.Context, origin string, soa *dns.SOA, to string, k *key) {
	select {
	case n.slots <- struct{}{}:
		defer func() { <-n.slots }()
	case <-ctx.Done():
		return
	}
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Answer = []dns.RR{dns.Copy(soa)} // the new serial, a hint (RFC 1996 section 3.7); a copy, as packing writes to it
	c := &dns.Client{Net: "udp"}
	if k != nil {
		c.TsigSecret = map[string]string{k.name: k.secret}
	}
	timeout := n.timeout
	for try := 1; try <= n.tries; try++ {
		if k != nil {
			m.SetTsig(k.name, k.alg, fudge, time.Now().Unix())
		}
		c.Timeout = timeout
		next := time.Now().Add(timeout)
		r, _, err := c.ExchangeContext(ctx, m, to)
		if ctx.Err() != nil {
			return // superseded by a newer change, or shutting down
		}
		if err == nil {
			if r.Rcode != dns.RcodeSuccess {
				n.counts.notifies[notifyRefused].Add(1)
				n.logger.Warn("NOTIFY refused by secondary", "zone", origin, "serial", soa.Serial, "to", to, "rcode", dns.RcodeToString[r.Rcode])
			} else {
				n.counts.notifies[notifyAnswered].Add(1)
				n.logger.Info("NOTIFY answered", "zone", origin, "serial", soa.Serial, "to", to, "tries", try)
			}
			return
		}
		n.logger.Debug("NOTIFY not answered", "zone", origin, "serial", soa.Serial, "to", to, "try", try, "err", err)
		// An error can come at once (ICMP port unreachable while the
		// secondary starts): wait out the try's time all the same.
		if try < n.tries {
			select {
			case <-time.After(time.Until(next)):
			case <-ctx.Done():
				return
			}
		}
		timeout *= 2
	}
	n.counts.notifies[notifyUnanswered].Add(1)
	n.logger.Warn("NOTIFY never answered", "zone", origin, "serial", soa.Serial, "to", to, "tries", n.tries)
}

package secondary

import (
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// ServeNotify answers a NOTIFY (RFC 1996) read from client and returns
// the reply, or nil when the message does not parse. A NOTIFY for a
// secondary zone from one of its primaries' addresses, signed with the
// zone's key when it has one, gets NOERROR with AA and makes the zone
// check its primaries at once (RFC 1996 section 3.7); any other gets
// REFUSED, or NOTAUTH when its TSIG does not verify. It implements
// dnsserver.Notifier and is safe for concurrent use.
func (m *Manager) ServeNotify(query []byte, client netip.AddrPort) []byte {
	req := new(dns.Msg)
	if err := req.Unpack(query); err != nil || len(req.Question) != 1 || req.Opcode != dns.OpcodeNotify {
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(req)
	r.Extra = nil
	z := m.byName[dns.CanonicalName(req.Question[0].Name)]
	from := client.Addr().Unmap()
	if z == nil || !slices.Contains(z.addrs, from) {
		m.counts.notifies[notifyRefused].Add(1)
		m.logger.Debug("NOTIFY refused", "zone", req.Question[0].Name, "client", from.String())
		return pack(r.SetRcode(req, dns.RcodeRefused))
	}
	ts := req.IsTsig()
	if z.key != "" && (ts == nil || dns.CanonicalName(ts.Hdr.Name) != z.key) {
		m.counts.notifies[notifyRefused].Add(1)
		m.logger.Warn("NOTIFY refused: not signed with the zone's key", "zone", z.origin, "client", from.String())
		return pack(r.SetRcode(req, dns.RcodeRefused))
	}
	if z.key != "" {
		// TsigVerify writes into the message it checks: give it a copy.
		if err := dns.TsigVerify(slices.Clone(query), m.secrets[z.key], "", false); err != nil {
			m.counts.notifies[notifyNotAuth].Add(1)
			m.logger.Warn("NOTIFY refused: TSIG", "zone", z.origin, "client", from.String(), "err", err)
			return pack(r.SetRcode(req, dns.RcodeNotAuth))
		}
	}
	r.Authoritative = true
	m.counts.notifies[notifyAccepted].Add(1)
	select {
	case z.notify <- struct{}{}:
	default: // a check is already due
	}
	var serial any = "none"
	if len(req.Answer) > 0 {
		if soa, ok := req.Answer[0].(*dns.SOA); ok {
			serial = soa.Serial
		}
	}
	m.logger.Info("NOTIFY received", "zone", z.origin, "client", from.String(), "serial", serial)
	if z.key == "" {
		return pack(r)
	}
	r.SetTsig(z.key, ts.Algorithm, fudge, time.Now().Unix())
	out, _, err := dns.TsigGenerate(r, m.secrets[z.key], ts.MAC, false)
	if err != nil {
		return nil
	}
	return out
}

func pack(m *dns.Msg) []byte {
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

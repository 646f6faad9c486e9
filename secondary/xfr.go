package secondary

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// fudge is the TSIG time window asked for (RFC 8945 section 10).
const fudge = 300

// sign signs q with the zone's key, if it has one, and returns the
// secrets for checking the replies.
func (m *Manager) sign(z *zone, q *dns.Msg) map[string]string {
	if z.key == "" {
		return nil
	}
	q.SetTsig(z.key, m.algs[z.key], fudge, time.Now().Unix())
	return map[string]string{z.key: m.secrets[z.key]}
}

// querySerial asks primary for the zone's SOA (RFC 1035 section 4.3.5),
// over UDP, then TCP when the reply is truncated.
func (m *Manager) querySerial(z *zone, primary string) (uint32, error) {
	q := new(dns.Msg)
	q.SetQuestion(z.origin, dns.TypeSOA)
	q.RecursionDesired = false
	cl := &dns.Client{Net: "udp", Timeout: m.timeout, TsigSecret: m.sign(z, q)}
	r, _, err := cl.Exchange(q, primary)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.Exchange(q, primary)
	}
	if err != nil {
		return 0, fmt.Errorf("SOA query: %w", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return 0, fmt.Errorf("SOA query: %s", dns.RcodeToString[r.Rcode])
	}
	if z.key != "" && r.IsTsig() == nil {
		return 0, errors.New("SOA query: the reply is not signed")
	}
	if !r.Authoritative {
		return 0, errors.New("SOA query: the reply is not authoritative")
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok && strings.EqualFold(soa.Hdr.Name, z.origin) {
			return soa.Serial, nil
		}
	}
	return 0, errors.New("SOA query: no SOA in the answer")
}

// transfer runs the transfer q from primary and returns every record of
// every message, or the first error.
func (m *Manager) transfer(z *zone, primary string, q *dns.Msg) ([]dns.RR, error) {
	tr := &dns.Transfer{DialTimeout: m.timeout, ReadTimeout: m.timeout, WriteTimeout: m.timeout, TsigSecret: m.sign(z, q)}
	ch, err := tr.In(q, primary)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil && err == nil {
			err = env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	if err != nil {
		return nil, err
	}
	return rrs, nil
}

// axfr transfers the whole zone (RFC 5936) and returns its SOA and its
// records, the SOA first.
func (m *Manager) axfr(z *zone, primary string) (*dns.SOA, []dns.RR, error) {
	q := new(dns.Msg)
	q.SetAxfr(z.origin)
	rrs, err := m.transfer(z, primary, q)
	if err != nil {
		m.counts.transfer(kindAXFR, err)
		return nil, nil, fmt.Errorf("AXFR: %w", err)
	}
	soa, body, err := checkWhole(z.origin, rrs)
	m.counts.transfer(kindAXFR, err)
	if err != nil {
		return nil, nil, fmt.Errorf("AXFR: %w", err)
	}
	return soa, body, nil
}

// checkWhole checks a whole zone as AXFR sends it (RFC 5936 section
// 2.2): the SOA first and last, with the same serial, no other SOA,
// every record in the zone. It returns the SOA and the records without
// the closing SOA.
func checkWhole(origin string, rrs []dns.RR) (*dns.SOA, []dns.RR, error) {
	if len(rrs) < 2 {
		return nil, nil, errors.New("incomplete transfer")
	}
	first, ok1 := rrs[0].(*dns.SOA)
	last, ok2 := rrs[len(rrs)-1].(*dns.SOA)
	if !ok1 || !ok2 || first.Serial != last.Serial {
		return nil, nil, errors.New("the transfer does not begin and end with the same SOA")
	}
	if !strings.EqualFold(first.Hdr.Name, origin) {
		return nil, nil, fmt.Errorf("the SOA is for %s", first.Hdr.Name)
	}
	body := rrs[:len(rrs)-1]
	for _, rr := range body[1:] {
		if rr.Header().Rrtype == dns.TypeSOA {
			return nil, nil, errors.New("a second SOA inside the zone")
		}
		if !dns.IsSubDomain(origin, rr.Header().Name) {
			return nil, nil, fmt.Errorf("record %s is outside the zone", rr.Header().Name)
		}
	}
	return first, body, nil
}

// ixfr asks for the changes since the copy c (RFC 1995) and returns the
// new zone, and how it came: "IXFR" (differences applied) or "IXFR,
// whole zone" (the primary sent the zone in full). Both nil: the
// primary has nothing newer.
func (m *Manager) ixfr(z *zone, primary string, c *zoneCopy) (*dns.SOA, []dns.RR, string, error) {
	q := new(dns.Msg)
	q.SetIxfr(z.origin, c.soa.Serial, c.soa.Ns, c.soa.Mbox)
	rrs, err := m.transfer(z, primary, q)
	if err != nil {
		m.counts.transfer(kindIXFR, err)
		return nil, nil, "", fmt.Errorf("IXFR: %w", err)
	}
	soa, body, kind, err := applyIXFR(z.origin, c, rrs)
	m.counts.transfer(kindIXFR, err)
	if err != nil {
		return nil, nil, "", fmt.Errorf("IXFR: %w", err)
	}
	return soa, body, kind, nil
}

// applyIXFR applies an IXFR reply (RFC 1995 section 4) to c.
func applyIXFR(origin string, c *zoneCopy, rrs []dns.RR) (*dns.SOA, []dns.RR, string, error) {
	if len(rrs) == 0 {
		return nil, nil, "", errors.New("empty reply")
	}
	newSOA, ok := rrs[0].(*dns.SOA)
	if !ok {
		return nil, nil, "", errors.New("the reply does not begin with an SOA")
	}
	if len(rrs) == 1 {
		if zones.SerialLess(c.soa.Serial, newSOA.Serial) {
			return nil, nil, "", errors.New("incomplete transfer")
		}
		return nil, nil, "", nil // up to date
	}
	if _, ok := rrs[1].(*dns.SOA); !ok || len(rrs) == 2 {
		soa, body, err := checkWhole(origin, rrs)
		return soa, body, "IXFR, whole zone", err
	}
	last, ok := rrs[len(rrs)-1].(*dns.SOA)
	if !ok || last.Serial != newSOA.Serial {
		return nil, nil, "", errors.New("incomplete transfer")
	}
	set := newRRSet(c.rrs[1:])
	serial := c.soa.Serial
	i, end := 1, len(rrs)-1
	for i < end {
		from, ok := rrs[i].(*dns.SOA)
		if !ok || from.Serial != serial {
			return nil, nil, "", fmt.Errorf("a difference does not start from serial %d", serial)
		}
		for i++; i < end && rrs[i].Header().Rrtype != dns.TypeSOA; i++ {
			set.remove(rrs[i])
		}
		if i == end {
			return nil, nil, "", errors.New("a difference without its new SOA")
		}
		serial = rrs[i].(*dns.SOA).Serial
		for i++; i < end && rrs[i].Header().Rrtype != dns.TypeSOA; i++ {
			if !dns.IsSubDomain(origin, rrs[i].Header().Name) {
				return nil, nil, "", fmt.Errorf("record %s is outside the zone", rrs[i].Header().Name)
			}
			set.add(rrs[i])
		}
	}
	if serial != newSOA.Serial {
		return nil, nil, "", fmt.Errorf("the differences end at serial %d, not %d", serial, newSOA.Serial)
	}
	return newSOA, append([]dns.RR{newSOA}, set.list()...), "IXFR", nil
}

// rrSet is a zone's records, in the order they came, found by their
// name, class, type and data; the TTL does not count (RFC 1995 section
// 4 deletes records by their data).
type rrSet struct {
	order []string
	rrs   map[string]dns.RR
}

func newRRSet(rrs []dns.RR) *rrSet {
	s := &rrSet{rrs: make(map[string]dns.RR, len(rrs))}
	for _, rr := range rrs {
		s.add(rr)
	}
	return s
}

func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	c.Header().Ttl = 0
	c.Header().Name = strings.ToLower(c.Header().Name)
	return c.String()
}

func (s *rrSet) add(rr dns.RR) {
	k := rrKey(rr)
	if _, ok := s.rrs[k]; !ok {
		s.order = append(s.order, k)
	}
	s.rrs[k] = rr
}

func (s *rrSet) remove(rr dns.RR) { delete(s.rrs, rrKey(rr)) }

func (s *rrSet) list() []dns.RR {
	out := make([]dns.RR, 0, len(s.rrs))
	seen := make(map[string]bool, len(s.rrs))
	for _, k := range s.order {
		if rr, ok := s.rrs[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, rr)
		}
	}
	return out
}

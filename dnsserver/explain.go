package dnsserver

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/zones"
)

// Explanation tells how the server answers one name for one client, from
// the same selection code the query path runs. Operators read it through
// `meridian explain`.
type Explanation struct {
	Name   string
	Qtype  uint16
	Client netip.Prefix // the client subnet the answer was chosen for

	HaveDB   bool
	Located  bool
	Location geo.Location
	Network  netip.Prefix // the database network that placed the client

	Pool     string // the pool that answered; empty for static names
	Order    []RankedDC
	Rule     int // index of the topology rule that decided, or -1
	Spill    string
	AllDown  string
	Answer   []netip.Addr
	Scope    int
	LeftOut  []LeftOut
	Rcode    int
	Records  []string // static answers
	FailOpen bool
}

// RankedDC is a datacenter in the order chosen for the client.
type RankedDC struct {
	Name     string
	Distance float64 // km, NaN when the client has no coordinates
	Bias     float64
}

// LeftOut is an endpoint that is not in the answer, and why.
type LeftOut struct {
	Addr       netip.Addr
	Datacenter string
	Reason     string
}

// explainTracer records the steps of a selection.
type explainTracer struct{ e *Explanation }

func (t explainTracer) located(idx int32, loc geo.Location, network netip.Prefix, haveDB bool) {
	t.e.HaveDB, t.e.Located, t.e.Location, t.e.Network = haveDB, idx != geo.NoLocation, loc, network
}

func (t explainTracer) ordered(p *zones.CompiledPool, order []uint8, rule int) {
	t.e.Rule = rule
	t.e.Order = t.e.Order[:0]
	for _, i := range order {
		dc := p.DCs[i]
		d := math.NaN()
		if t.e.Located && t.e.Location.HasCoords {
			d = geo.Distance(t.e.Location.Lat, t.e.Location.Lon, dc.Lat, dc.Lon)
		}
		t.e.Order = append(t.e.Order, RankedDC{Name: dc.Name, Distance: d, Bias: dc.Bias})
	}
}

func (t explainTracer) spilled(from, to string) {
	t.e.Spill = fmt.Sprintf("nearest datacenter %s has no eligible endpoint; spread to %s", from, to)
}

func (t explainTracer) allDown(p *zones.CompiledPool, mode zones.AllDownMode) {
	names := map[zones.AllDownMode]string{zones.FailOpen: "fail_open", zones.Fallback: "fallback:" + p.Source.FallbackTo, zones.Empty: "empty"}
	t.e.AllDown = fmt.Sprintf("pool %s has no eligible endpoint: %s", p.Name, names[mode])
}

// Explain answers name/qtype for a client at clientNet, as a query with
// that ECS subnet would be answered, and says why.
func (s *Server) Explain(name string, qtype uint16, clientNet netip.Prefix) (*Explanation, error) {
	st := s.st.Load()
	if st == nil || st.snap == nil {
		return nil, fmt.Errorf("dnsserver: no snapshot loaded")
	}
	lname, err := zones.WireName(name)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Name: zones.CanonicalName(name), Qtype: qtype, Client: clientNet, Rule: -1}
	a := st.snap.Lookup(lname, qtype)
	if a == nil {
		e.Rcode = dns.RcodeRefused
		return e, nil
	}
	e.Rcode = a.Rcode
	for _, rr := range a.Answer {
		e.Records = append(e.Records, rr.String())
	}
	if a.Pool == nil {
		return e, nil
	}
	c := client{addr: clientNet.Addr(), bits: clientNet.Bits()}
	var ch choice
	rng := uint64(1)
	st.choose(a.Pool, a.PoolFamily, c, &rng, new(orderBuf), nil, explainTracer{e}, &ch)
	e.Pool, e.Scope, e.FailOpen = ch.pool.Name, min(ch.scope, c.bits), ch.failOpen
	in := map[netip.Addr]bool{}
	for _, ep := range ch.eps[:ch.n] {
		e.Answer = append(e.Answer, ep.Addr)
		in[ep.Addr] = true
	}
	src := ch.pool.Source
	for _, ep := range src.Endpoints {
		if in[ep.Addr] {
			continue
		}
		e.LeftOut = append(e.LeftOut, LeftOut{Addr: ep.Addr, Datacenter: ep.Datacenter, Reason: leftOutReason(src, &ep, a.PoolFamily)})
	}
	return e, nil
}

func leftOutReason(p *zones.Pool, ep *zones.Endpoint, fam int) string {
	switch {
	case ep.Addr.Is6() != (fam == 1):
		return "other address family"
	case ep.Admin != zones.AdminActive:
		return "admin state " + ep.Admin.String()
	case ep.Health == zones.HealthDown:
		return "health down"
	case ep.Health == zones.HealthUnknown && !p.UnknownIsUp:
		return "health unknown, counted as down"
	case ep.Weight > 0 && ep.EffectiveWeight(p.ShedLoad) == 0:
		// zones.Compile keeps such an endpoint out of the weighted
		// choice; only fail-open answers it.
		return "weight 0: its agent's load or weight percentage leaves it no new clients"
	}
	return fmt.Sprintf("eligible, but the answer is cut at max_answers %d", p.MaxAnswers)
}

// String renders the explanation for a terminal.
func (e *Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "query:    %s %s for client %s\n", e.Name, dns.TypeToString[e.Qtype], e.Client)
	if e.Pool == "" {
		fmt.Fprintf(&b, "answer:   %s (static, the same for every client)\n", dns.RcodeToString[e.Rcode])
		for _, r := range e.Records {
			fmt.Fprintf(&b, "          %s\n", r)
		}
		return b.String()
	}
	switch {
	case !e.HaveDB:
		b.WriteString("location: no GeoIP database loaded\n")
	case !e.Located:
		fmt.Fprintf(&b, "location: not in the GeoIP database (network %s)\n", e.Network)
	default:
		l := e.Location
		coords := "no coordinates"
		if l.HasCoords {
			coords = fmt.Sprintf("%.4f,%.4f", l.Lat, l.Lon)
		}
		fmt.Fprintf(&b, "location: %s, country %s, continent %s (network %s)\n", coords, or(l.Country, "-"), or(l.Continent, "-"), e.Network)
	}
	fmt.Fprintf(&b, "pool:     %s\n", e.Pool)
	if e.Rule >= 0 {
		fmt.Fprintf(&b, "rule:     topology rule #%d decided the first datacenters\n", e.Rule+1)
	}
	b.WriteString("order:\n")
	for i, dc := range e.Order {
		d := "distance unknown"
		if !math.IsNaN(dc.Distance) {
			d = fmt.Sprintf("%.0f km", dc.Distance)
		}
		if dc.Bias != 0 {
			d += fmt.Sprintf(" %+.0f km bias", dc.Bias)
		}
		fmt.Fprintf(&b, "  %d. %-16s %s\n", i+1, dc.Name, d)
	}
	if e.Spill != "" {
		fmt.Fprintf(&b, "spill:    %s\n", e.Spill)
	}
	if e.AllDown != "" {
		fmt.Fprintf(&b, "all down: %s\n", e.AllDown)
	}
	b.WriteString("answer:\n")
	if len(e.Answer) == 0 {
		b.WriteString("  (none: NODATA)\n")
	}
	for _, a := range e.Answer {
		fmt.Fprintf(&b, "  %s\n", a)
	}
	fmt.Fprintf(&b, "ecs scope: /%d\n", e.Scope)
	if len(e.LeftOut) > 0 {
		b.WriteString("left out:\n")
		for _, l := range e.LeftOut {
			fmt.Fprintf(&b, "  %-28s %-16s %s\n", l.Addr, l.Datacenter, l.Reason)
		}
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

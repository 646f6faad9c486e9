package statuspage

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// page is what the template renders.
type page struct {
	Checker  string
	At       string // the database's clock, UTC
	Refresh  int    // seconds; 0: no automatic refresh
	Notice   string
	Error    string
	Token    *tokenView // nil: not signed in
	Summary  summary
	Map      worldMap
	Checkers []checkerView
	Pools    []poolView
	Recent   []eventView
	Filter   filter
	// Shown is how many endpoints the tables list: those the filter
	// keeps, at most maxRows; Matched is how many it keeps in all.
	Shown, Matched int
}

// maxRows bounds the endpoint rows of one page, so that a fleet of
// thousands still renders; the summary, map and recent changes count
// everything.
const maxRows = 500

// filter narrows the endpoint tables: Pool is part of a pool's name
// (any case), State one of the states below. Empty keeps everything.
type filter struct {
	Pool, State string
}

// filterStates are the values of ?state=: an effective state, or "out"
// for the endpoints not in the answers whatever the reason.
var filterStates = []string{"up", "down", "unknown", "drain", "disabled", "out"}

func parseFilter(pool, state string) filter {
	f := filter{Pool: strings.TrimSpace(pool)}
	if slices.Contains(filterStates, state) {
		f.State = state
	}
	return f
}

// keep reports whether the filter keeps an endpoint of pool in state,
// answered or not.
func (f filter) keep(pool, state string, answered bool) bool {
	if f.Pool != "" && !strings.Contains(strings.ToLower(pool), strings.ToLower(f.Pool)) {
		return false
	}
	switch f.State {
	case "":
		return true
	case "out":
		return !answered
	}
	return f.State == state
}

// Active reports whether the filter narrows anything.
func (f filter) Active() bool { return f.Pool != "" || f.State != "" }

// States lists the values the page's filter form offers.
func (filter) States() []string { return filterStates }

type tokenView struct {
	Actor    string
	Operator bool
	Pool     string // of an agent token
}

type summary struct {
	Pools, Endpoints            int
	Up, Down, Unknown, Disabled int // Disabled: drained or disabled, whatever their health
	Answered                    int
}

type checkerView struct {
	ID, Region string
	Live       bool
	LastSeen   when
	Started    when
}

type poolView struct {
	Zone, Name  string
	ID          string // HTML id
	Quorum      string
	Check       string // "" when not probed
	UnknownIsUp bool
	Answered    int
	Total       int            // endpoints, listed or not
	Endpoints   []endpointView // those the filter keeps
}

type endpointView struct {
	Pool, Addr  string
	ID          string // HTML id
	Datacenter  string
	Weight      uint32
	State       string // up, down, unknown, drain or disabled: see effective
	Source      string // what decided it: admin, agent, quorum or none
	Reason      string
	Since       when
	Answered    bool
	Health      string // the health under an admin state
	Admin       string
	AdminReason string
	Agent       *agentView
	Verdicts    []verdictView
	Events      []eventView
	CanAdmin    bool // the signed-in token may drain or enable it
	Drained     bool // admin state not active: Enable, not Drain
}

type agentView struct {
	Status   string
	Load     string // "" when not reported
	Weight   string // "75%"
	Capacity string
	Conns    string
	Message  string
	Fresh    bool
	Reported when
	Expires  when
}

type verdictView struct {
	Checker, Region string
	Up              bool
	Reason          string
	Since           when
	Stale           bool
}

type eventView struct {
	Pool, Addr string // set in Recent only
	at         time.Time
	At         when
	Kind       string
	What       string // "up → down"
	Reason     string
	By         string
}

// when is a time as the page shows it: relative to the page's time, and
// in full as a tooltip.
type when struct {
	Ago, UTC string
}

func newWhen(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	return when{Ago: ago(now.Sub(t)), UTC: t.UTC().Format("2006-01-02 15:04:05 UTC")}
}

// ago says how long ago d was, roughly: "now", "12s ago", "5m ago",
// "3h ago", "2d ago"; "in 20s" for the future (an expiry).
func ago(d time.Duration) string {
	if d < 0 {
		return "in " + roughly(-d)
	}
	if d < time.Second {
		return "now"
	}
	return roughly(d) + " ago"
}

func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// effective is an endpoint's state as the DNS servers apply it (see
// docs/api.md, "Effective state"): the admin state wins; then the stored
// health, which is a fresh agent report's when there is one, else the
// live checkers' quorum. source names what decided.
func effective(e *postgres.OverviewEndpoint) (state, source, reason string) {
	if e.Admin != zones.AdminActive {
		return e.Admin.String(), "admin", e.AdminReason
	}
	reason = e.HealthReason
	switch {
	case e.Health == zones.HealthUnknown && reason == "":
		return e.Health.String(), "none", "no checker or agent has spoken yet"
	case strings.HasPrefix(reason, "agent:"):
		source = "agent"
	case e.Health == zones.HealthUnknown:
		source = "none"
	default:
		source = "quorum"
	}
	return e.Health.String(), source, reason
}

// answered reports whether the endpoint is in the pool's answers in
// normal operation (zones.Pool.Eligible).
func answered(p *postgres.OverviewPool, e *postgres.OverviewEndpoint) bool {
	zp := zones.Pool{UnknownIsUp: p.UnknownIsUp}
	return zp.Eligible(&zones.Endpoint{Admin: e.Admin, Health: e.Health})
}

// htmlID makes an HTML id of parts: letters and digits kept, anything
// else a hyphen, parts joined by two underscores.
func htmlID(prefix string, parts ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, p := range parts {
		b.WriteString("__")
		for _, r := range strings.TrimSuffix(p, ".") {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
				b.WriteRune(r)
			} else {
				b.WriteByte('-')
			}
		}
	}
	return b.String()
}

// recentEvents is how many changes the page lists across all endpoints.
const recentEvents = 20

// build turns an overview into the page, for the token tok (nil: not
// signed in), listing the endpoints f keeps.
func build(ov *postgres.Overview, checker string, tok *postgres.TokenInfo, f filter) *page {
	now := ov.At
	pg := &page{Checker: checker, At: now.UTC().Format("2006-01-02 15:04:05 UTC"), Filter: f}
	if tok != nil {
		pg.Token = &tokenView{Actor: tok.Actor(), Operator: tok.Kind == postgres.TokenOperator, Pool: tok.Pool}
	}
	for _, c := range ov.Checkers {
		pg.Checkers = append(pg.Checkers, checkerView{ID: c.ID, Region: c.Region, Live: c.Live,
			LastSeen: newWhen(c.LastSeen, now), Started: newWhen(c.Started, now)})
	}
	type dcKey struct{ zone, name string }
	healthy := map[dcKey][2]int{} // answered, total
	for i := range ov.Pools {
		p := &ov.Pools[i]
		pv := poolView{Zone: p.Zone, Name: p.Name, ID: htmlID("pool", p.Name, p.Zone), Quorum: p.Quorum, Check: p.CheckType, UnknownIsUp: p.UnknownIsUp, Total: len(p.Endpoints)}
		for j := range p.Endpoints {
			e := &p.Endpoints[j]
			ev := endpointView{Pool: p.Name, Addr: e.Addr.String(), ID: htmlID("ep", p.Name, p.Zone, e.Addr.String()),
				Datacenter: e.Datacenter, Weight: e.Weight, Answered: answered(p, e), Health: e.Health.String(),
				Admin: e.Admin.String(), AdminReason: e.AdminReason, Drained: e.Admin != zones.AdminActive}
			ev.State, ev.Source, ev.Reason = effective(e)
			ev.Since = newWhen(e.HealthUpdated, now)
			if ev.Source == "admin" {
				ev.Since = when{}
				if i := slices.IndexFunc(e.Events, func(x postgres.HealthEvent) bool { return x.Kind == postgres.EventAdmin }); i >= 0 {
					ev.Since = newWhen(e.Events[i].At, now)
				}
			}
			ev.CanAdmin = tok != nil && agentapi.MayAdmin(*tok, p.Name) == nil
			if a := e.Agent; a != nil {
				ev.Agent = agentOf(a, now)
			}
			for _, v := range e.Verdicts {
				ev.Verdicts = append(ev.Verdicts, verdictView{Checker: v.Checker, Region: v.Region, Up: v.Up, Reason: v.Reason, Since: newWhen(v.Changed, now), Stale: v.Stale})
			}
			for _, x := range e.Events {
				ev.Events = append(ev.Events, eventOf(x, now))
				if x.Kind != postgres.EventVerdict {
					r := eventOf(x, now)
					r.Pool, r.Addr = p.Name, e.Addr.String()
					pg.Recent = append(pg.Recent, r)
				}
			}
			if f.keep(p.Name, ev.State, ev.Answered) {
				pg.Matched++
				if pg.Shown < maxRows {
					pg.Shown++
					pv.Endpoints = append(pv.Endpoints, ev)
				}
			}

			pg.Summary.Endpoints++
			switch {
			case e.Admin != zones.AdminActive:
				pg.Summary.Disabled++
			case e.Health == zones.HealthUp:
				pg.Summary.Up++
			case e.Health == zones.HealthDown:
				pg.Summary.Down++
			default:
				pg.Summary.Unknown++
			}
			k := dcKey{p.Zone, e.Datacenter}
			h := healthy[k]
			h[1]++
			if ev.Answered {
				h[0]++
				pv.Answered++
				pg.Summary.Answered++
			}
			healthy[k] = h
		}
		pg.Summary.Pools++
		if len(pv.Endpoints) > 0 || !f.Active() && len(p.Endpoints) == 0 {
			pg.Pools = append(pg.Pools, pv)
		}
	}
	slices.SortStableFunc(pg.Recent, func(a, b eventView) int { return b.at.Compare(a.at) })
	pg.Recent = pg.Recent[:min(len(pg.Recent), recentEvents)]

	var dcs []mapPoint
	for _, d := range ov.Datacenters {
		h := healthy[dcKey{d.Zone, d.Name}]
		dcs = append(dcs, mapPoint{Name: d.Name, Lat: d.Lat, Lon: d.Lon, Healthy: h[0], Total: h[1]})
	}
	pg.Map = newWorldMap(dcs)
	return pg
}

func agentOf(a *postgres.AgentReport, now time.Time) *agentView {
	v := &agentView{Status: a.Status, Message: a.Message, Fresh: a.Fresh, Reported: newWhen(a.Reported, now), Expires: newWhen(a.Expires, now)}
	if a.Load != nil {
		v.Load = fmt.Sprintf("%.2f", *a.Load)
	}
	if a.WeightPercent != nil {
		v.Weight = fmt.Sprintf("%d%%", *a.WeightPercent)
	}
	if a.Capacity != nil {
		v.Capacity = fmt.Sprint(*a.Capacity)
	}
	if a.Connections != nil {
		v.Conns = fmt.Sprint(*a.Connections)
	}
	return v
}

func eventOf(x postgres.HealthEvent, now time.Time) eventView {
	return eventView{at: x.At, At: newWhen(x.At, now), Kind: x.Kind, What: x.Old + " → " + x.New, Reason: x.Reason, By: x.By}
}

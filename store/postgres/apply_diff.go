package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meridiandns/meridian/zones"
)

// Op is the kind of a change: added, removed or updated.
type Op byte

// Ops, as shown at the start of a diff line.
const (
	Add    Op = '+'
	Remove Op = '-'
	Update Op = '~'
)

// Change is one line of a diff.
type Change struct {
	Op   Op
	Text string // "www.example.com. 300 IN A 192.0.2.1", "pool www.example.com.: max_answers 4 -> 2"
}

// ZoneDiff is the change of one zone: added, removed (with everything in
// it) or updated.
type ZoneDiff struct {
	Origin  string
	Op      Op
	Changes []Change
}

// Diff is what Apply changed or, on a dry run or refusal, would change.
type Diff struct {
	Zones []ZoneDiff // by origin
	// Version is the data version after Apply: the new one when it
	// committed, else the current one.
	Version int64
	// Applied reports that the change was committed.
	Applied bool
}

// Empty reports whether there is nothing to change.
func (d *Diff) Empty() bool { return len(d.Zones) == 0 }

// Counts returns the number of added, removed and changed items; a whole
// zone added or removed counts as one item besides its contents.
func (d *Diff) Counts() (added, removed, changed int) {
	count := func(op Op) {
		switch op {
		case Add:
			added++
		case Remove:
			removed++
		case Update:
			changed++
		}
	}
	for _, z := range d.Zones {
		if z.Op != Update {
			count(z.Op)
		}
		for _, c := range z.Changes {
			count(c.Op)
		}
	}
	return added, removed, changed
}

// String renders the diff one change per line, each zone headed by
// "+ zone", "- zone" or "~ zone", and ends with the counts.
func (d *Diff) String() string {
	if d.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	for _, z := range d.Zones {
		fmt.Fprintf(&b, "%c zone %s\n", z.Op, z.Origin)
		for _, c := range z.Changes {
			fmt.Fprintf(&b, "%c %s\n", c.Op, c.Text)
		}
	}
	a, r, c := d.Counts()
	fmt.Fprintf(&b, "%d added, %d removed, %d changed\n", a, r, c)
	return b.String()
}

// setting is one named value of a row, for diff lines.
type setting struct{ name, value string }

// settings lists what a datacenter is configured with, in diff order.
func (d *dcRow) settings() []setting {
	return []setting{
		{"lat", strconv.FormatFloat(d.lat, 'g', -1, 64)},
		{"lon", strconv.FormatFloat(d.lon, 'g', -1, 64)},
		{"country", d.country},
		{"continent", d.continent},
	}
}

// settings lists what a pool is configured with, in diff order; its
// endpoints are diffed on their own.
func (r *poolRow) settings() []setting {
	return []setting{
		{"ttl", strconv.FormatInt(r.ttl, 10)},
		{"max_answers", strconv.FormatInt(r.maxAnswers, 10)},
		{"geo", r.geo},
		{"sticky", strconv.FormatBool(r.sticky)},
		{"spill", strconv.FormatInt(r.spill, 10)},
		{"unknown_is_up", strconv.FormatBool(r.unknownUp)},
		{"when_all_down", r.allDown},
		{"bias", r.bias},
		{"rules", r.rules},
		{"quorum", r.quorum},
		{"shed_load", shedString(r.shedLoad)},
		{"health_check", r.check},
	}
}

// settings leaves out health, which is not configuration (see
// updateEndpoint).
func (e *endpointRow) settings() []setting {
	return []setting{
		{"datacenter", e.dc},
		{"weight", strconv.FormatInt(e.weight, 10)},
		{"admin", e.admin},
		{"health_check", e.check},
	}
}

// summary describes an endpoint in an added or removed line: its
// datacenter, and what differs from the defaults.
func (e *endpointRow) summary() string {
	s := e.dc
	if e.weight != zones.DefaultWeight {
		s += fmt.Sprintf(", weight %d", e.weight)
	}
	if e.admin != "active" {
		s += ", admin " + e.admin
	}
	if e.health != "unknown" {
		s += ", health " + e.health
	}
	return s
}

// joinSettings renders settings as "name value, ...", leaving out empty
// values, and with named, {} and [] too.
func joinSettings(ss []setting, named bool) string {
	var parts []string
	for _, s := range ss {
		switch {
		case s.value == "" || s.value == "{}" || s.value == "[]":
		case named:
			parts = append(parts, s.name+" "+s.value)
		default:
			parts = append(parts, s.value)
		}
	}
	return strings.Join(parts, ", ")
}

// shedString shows a shed_load setting; "" (left out of lists) when off.
func shedString(v float32) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(v), 'g', -1, 32)
}

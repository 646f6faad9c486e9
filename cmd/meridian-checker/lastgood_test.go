package main

import (
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/zones"
)

// TestLastGood follows a zone through being read whole, broken (its last
// good version is probed, logged once), and fixed; a zone broken before
// it was ever read whole is probed as far as it could be read.
func TestLastGood(t *testing.T) {
	zone := func(addr string, invalid error) *zones.Zone {
		p := zones.NewPool("www.a.test.")
		p.Endpoints = []zones.Endpoint{{Addr: netip.MustParseAddr(addr), Datacenter: "dc"}}
		return &zones.Zone{Origin: "a.test.", Pools: []zones.Pool{p}, Invalid: invalid}
	}
	broken := errors.New("bad CIDR")
	var logs logbuf.Buffer
	g := newLastGood(slog.New(slog.NewTextHandler(&logs, nil)))
	steps := []struct {
		name    string
		zs      []*zones.Zone
		probed  string // the endpoint probed
		invalid int    // "Zone invalid" lines so far
		valid   int    // "Zone valid again" lines so far
	}{
		{"never read whole: probed as read", []*zones.Zone{zone("192.0.2.1", broken)}, "192.0.2.1", 1, 0},
		{"read whole", []*zones.Zone{zone("192.0.2.2", nil)}, "192.0.2.2", 1, 1},
		{"broken: last good probed", []*zones.Zone{zone("192.0.2.3", broken)}, "192.0.2.2", 2, 1},
		{"still broken: not logged again", []*zones.Zone{zone("192.0.2.4", broken)}, "192.0.2.2", 2, 1},
		{"fixed", []*zones.Zone{zone("192.0.2.5", nil)}, "192.0.2.5", 2, 2},
	}
	for _, st := range steps {
		out := g.apply(st.zs)
		if len(out) != 1 || out[0].Pools[0].Endpoints[0].Addr.String() != st.probed {
			t.Errorf("%s: probing %v, want %s", st.name, out[0].Pools[0].Endpoints, st.probed)
		}
		if n := strings.Count(logs.String(), "Zone invalid"); n != st.invalid {
			t.Errorf("%s: %d invalid lines, want %d", st.name, n, st.invalid)
		}
		if n := strings.Count(logs.String(), "Zone valid again"); n != st.valid {
			t.Errorf("%s: %d valid-again lines, want %d", st.name, n, st.valid)
		}
	}
}

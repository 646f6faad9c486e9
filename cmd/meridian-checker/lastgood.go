package main

import (
	"log/slog"

	"github.com/meridiandns/meridian/zones"
)

// lastGood stands in for each zone the store could not read whole
// (zones.Zone.Invalid) with its last version read whole, as the DNS
// servers keep serving it: a pool or endpoint left out of a zone broken
// by a manual SQL edit must not stop being probed, or its health would go
// stale while the servers still answer with it. Not safe for concurrent
// use; the checker loads from one goroutine at a time.
type lastGood struct {
	logger  *slog.Logger
	zones   map[string]*zones.Zone // by origin: the last version read whole
	invalid map[string]string      // by origin: why it is invalid now
}

func newLastGood(logger *slog.Logger) *lastGood {
	return &lastGood{logger: logger, zones: map[string]*zones.Zone{}, invalid: map[string]string{}}
}

// apply returns zs with each Invalid zone replaced by its last good
// version when there is one (an Invalid zone without one is probed as far
// as it could be read), and logs each zone turning invalid or valid.
func (g *lastGood) apply(zs []*zones.Zone) []*zones.Zone {
	out := make([]*zones.Zone, 0, len(zs))
	nextGood := make(map[string]*zones.Zone, len(zs))
	nextInvalid := map[string]string{}
	for _, z := range zs {
		if z.Invalid == nil {
			nextGood[z.Origin] = z
			if _, was := g.invalid[z.Origin]; was {
				g.logger.Info("Zone valid again: probing its current version", "zone", z.Origin)
			}
			out = append(out, z)
			continue
		}
		reason := z.Invalid.Error()
		nextInvalid[z.Origin] = reason
		prev := g.zones[z.Origin]
		if g.invalid[z.Origin] != reason {
			if prev != nil {
				g.logger.Error("Zone invalid: probing its last good version until it is fixed", "zone", z.Origin, "reason", reason)
			} else {
				g.logger.Error("Zone invalid: probing what could be read of it", "zone", z.Origin, "reason", reason)
			}
		}
		if prev != nil {
			nextGood[z.Origin] = prev
			z = prev
		}
		out = append(out, z)
	}
	g.zones, g.invalid = nextGood, nextInvalid
	return out
}

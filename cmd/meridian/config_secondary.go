package main

import (
	"fmt"
	"os"
	"time"

	"github.com/meridiandns/meridian/secondary"
	"github.com/meridiandns/meridian/zones"
)

// secondaryConfig is the "secondary" section: zones Meridian transfers
// from another primary and serves as its secondary (docs/transfers.md).
// Off unless zones lists something.
type secondaryConfig struct {
	// Zones (secondary.zones) lists the zones transferred, each from its
	// primaries.
	Zones []secondaryZoneConfig `mapstructure:"zones"`
	// FirstRetry (secondary.first_retry) is how long a zone not yet
	// transferred waits before it tries again.
	FirstRetry time.Duration `mapstructure:"first_retry"`
	// Timeout (secondary.timeout) bounds each exchange with a primary.
	Timeout time.Duration `mapstructure:"timeout"`
}

// secondaryZoneConfig is one entry of secondary.zones.
type secondaryZoneConfig struct {
	// Zone is the zone's name.
	Zone string `mapstructure:"zone"`
	// Primaries are the servers it is transferred from, each IP:port,
	// tried in order; NOTIFY is accepted from their addresses only.
	Primaries []string `mapstructure:"primaries"`
	// Key, when set, names the transfer.tsig_keys entry that signs the
	// SOA queries and transfers, and that NOTIFY must be signed with.
	Key string `mapstructure:"key"`
	// Pools, when set, is a YAML zone file (origin, datacenters, pools;
	// no records) whose pools are served on top of the transferred zone.
	Pools string `mapstructure:"pools"`
}

// enabled reports whether any zone is a secondary zone.
func (s secondaryConfig) enabled() bool { return len(s.Zones) > 0 }

// parse turns the section, with the TSIG keys of the transfer section,
// into a secondary.Config and validates it.
func (s secondaryConfig) parse(keys []tsigKeyConfig) (secondary.Config, error) {
	c := secondary.Config{FirstRetry: s.FirstRetry, Timeout: s.Timeout}
	for _, k := range keys {
		c.Keys = append(c.Keys, secondary.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	for _, z := range s.Zones {
		sz := secondary.Zone{Origin: z.Zone, Primaries: z.Primaries, Key: z.Key}
		if z.Pools != "" {
			data, err := os.ReadFile(z.Pools)
			if err != nil {
				return c, fmt.Errorf("secondary.zones: %w", err)
			}
			if sz.Overlay, err = zones.ParseYAML(data, z.Pools); err != nil {
				return c, fmt.Errorf("secondary.zones: %w", err)
			}
		}
		c.Zones = append(c.Zones, sz)
	}
	return c, c.Validate()
}

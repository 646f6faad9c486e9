package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/update"
	"github.com/meridiandns/meridian/zones"
)

// updateConfig is the "update" section: dynamic updates (RFC 2136) with
// TSIG (docs/update.md). Off unless policy lists something: every UPDATE
// then gets NOTIMP.
type updateConfig struct {
	// Policy (update.policy) lists which key may change which names and
	// types of which zones.
	Policy []updatePolicyConfig `mapstructure:"policy"`
}

// updatePolicyConfig is one entry of update.policy.
type updatePolicyConfig struct {
	// Key names the transfer.tsig_keys entry that signs the updates.
	Key string `mapstructure:"key"`
	// Zones are the zones the entry applies to.
	Zones []string `mapstructure:"zones"`
	// Names are the names the key may change, relative to the zone or
	// absolute, "*." for every name below; empty: every name.
	Names []string `mapstructure:"names"`
	// Types are the types the key may change; empty: every type.
	Types []string `mapstructure:"types"`
}

// enabled reports whether the section allows anything.
func (u updateConfig) enabled() bool { return len(u.Policy) > 0 }

// parse turns the section into an update.Config, with keys from
// transfer.tsig_keys, and validates it.
func (u updateConfig) parse(keys []tsigKeyConfig) (update.Config, error) {
	var c update.Config
	for _, k := range keys {
		c.Keys = append(c.Keys, update.Key{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	for _, p := range u.Policy {
		c.Rules = append(c.Rules, update.Rule{Key: p.Key, Zones: p.Zones, Names: p.Names, Types: p.Types})
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// newUpdater returns the Updater of cfg. With zone files, updates go to
// a journal next to each file (store/journal.go); with PostgreSQL they
// are refused for now, with the reason in the log.
func newUpdater(cfg *config, logger *slog.Logger) (*update.Updater, error) {
	uc, err := cfg.Update.parse(cfg.Transfer.TSIGKeys)
	if err != nil {
		return nil, err
	}
	var b update.Backend = refusingBackend{}
	if cfg.Store.Database == "" {
		b = filesBackend{store.NewFiles(cfg.Zones.Files, logger)}
	}
	return update.New(uc, b, logger)
}

// filesBackend is store.Files as an update.Backend.
type filesBackend struct{ f *store.Files }

func (b filesBackend) Update(ctx context.Context, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
	err := b.f.Update(ctx, origin, change)
	switch {
	case errors.Is(err, store.ErrNoZone):
		return update.ErrNoZone
	case errors.Is(err, store.ErrInvalidUpdate):
		return fmt.Errorf("%w: %w", update.ErrRefused, err)
	}
	return err
}

// refusingBackend refuses every update: PostgreSQL mode does not take
// them yet (docs/update.md).
type refusingBackend struct{}

func (refusingBackend) Update(context.Context, string, func(*zones.Zone) ([]dns.RR, error)) error {
	return fmt.Errorf("%w: dynamic updates are not supported with store.database yet; change the zone with meridianctl apply", update.ErrRefused)
}

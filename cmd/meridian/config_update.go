package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
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
// a journal next to each file (store/journal.go); with PostgreSQL, to the
// records of the zone, through the change log that every server follows
// (postgres.UpdateRecords).
func newUpdater(cfg *config, files *store.Files, logger *slog.Logger) (*update.Updater, error) {
	uc, err := cfg.Update.parse(cfg.Transfer.TSIGKeys)
	if err != nil {
		return nil, err
	}
	var b update.Backend
	if cfg.Store.Database == "" {
		b = updateBackend{files.Update, store.ErrNoZone, store.ErrInvalidUpdate}
	} else {
		pu, err := postgres.NewUpdater(cfg.Store.writeDatabase())
		if err != nil {
			return nil, err
		}
		// The audit log names the TSIG key of each update.
		pgUpdate := func(ctx context.Context, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
			return pu.Update(ctx, origin, "tsig:"+update.KeyName(ctx), change)
		}
		b = updateBackend{pgUpdate, postgres.ErrNoZone, postgres.ErrInvalidUpdate}
	}
	return update.New(uc, b, logger)
}

// updateBackend is a store's update function as an update.Backend, its errors
// turned into the update package's.
type updateBackend struct {
	update          func(context.Context, string, func(*zones.Zone) ([]dns.RR, error)) error
	noZone, invalid error
}

func (b updateBackend) Update(ctx context.Context, origin string, change func(*zones.Zone) ([]dns.RR, error)) error {
	err := b.update(ctx, origin, change)
	switch {
	case errors.Is(err, b.noZone):
		return update.ErrNoZone
	case errors.Is(err, b.invalid):
		return fmt.Errorf("%w: %w", update.ErrRefused, err)
	}
	return err
}

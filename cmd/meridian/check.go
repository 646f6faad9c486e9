package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// checkCmd implements "meridian check [--config F] [FILES...]": it
// validates the configuration, the zone files it names, the GeoIP
// database it names and the zone files given as arguments, as serve would
// load them, without opening a socket. Problems go to stderr, one per line
// and as FILE:LINE: where there is a line, and the exit status is 1, so
// that CI pipelines can run it before a deploy (as named-checkzone and
// kzonecheck are used).
func checkCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newServeFlags()
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian check [--config FILE] [flags] [ZONE-FILE...]\n\n"+
			"Validate the configuration (with --config, or when no zone file is given), the zone\n"+
			"files and GeoIP database it names, and the zone files given, without serving.\n"+
			"Exit status 1 when anything is wrong. Takes the same flags as serve.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian check", args, stderr); !ok {
		return code
	}
	c := &checker{out: stdout, errs: stderr}
	files := fs.Args()
	if fs.Changed("config") || len(files) == 0 {
		files = append(c.config(fs), files...)
	}
	c.zoneFiles(unique(files))
	if c.problems > 0 {
		fmt.Fprintf(stderr, "meridian check: %d problem(s) found\n", c.problems)
		return 1
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}

// checker runs the checks and counts the problems.
type checker struct {
	out, errs io.Writer
	problems  int
	// keys are the keysets of dnssec.key_dir by zone, to sign the zones
	// of the configuration as serve would.
	keys map[string]*signing.Keyset
}

// report prints err, one problem per line.
func (c *checker) report(err error) {
	fmt.Fprintln(c.errs, err)
	var zes zones.Errors
	if errors.As(err, &zes) {
		c.problems += len(zes) // one line each
	} else {
		c.problems++
	}
}

// config checks the configuration and its GeoIP database, and returns its
// zone files.
func (c *checker) config(fs *pflag.FlagSet) []string {
	cfg, err := loadConfig(fs)
	if err != nil {
		c.report(err)
		return nil
	}
	name := cfg.file
	if name == "" {
		name = "configuration (flags and environment)"
	}
	fmt.Fprintf(c.out, "%s: valid\n", name)
	for _, w := range cfg.warnings {
		fmt.Fprintf(c.out, "warning: %s\n", w)
	}
	if cfg.Store.Database != "" {
		fmt.Fprintln(c.out, "zones come from the database: check changes with meridianctl apply --dry-run")
	}
	if cfg.DNSSEC.KeyDir != "" {
		c.keyDir(cfg)
	}
	if cfg.Geo.Database != "" {
		db, err := geo.Open(cfg.Geo.Database)
		if err != nil {
			c.report(err)
		} else {
			fmt.Fprintf(c.out, "%s: GeoIP database with %d locations, built %s\n", cfg.Geo.Database, db.Len(), db.BuildTime().UTC().Format("2006-01-02"))
			db.Close()
		}
	}
	return cfg.Zones.Files
}

// keyDir reads the keys of dnssec.key_dir as serve would.
func (c *checker) keyDir(cfg *config) {
	kfs, err := signing.ReadKeyDir(cfg.DNSSEC.KeyDir)
	if err != nil {
		c.report(err)
		return
	}
	c.keys = map[string]*signing.Keyset{}
	for zone, zk := range signing.ByZone(kfs) {
		if err := signing.CheckAlgorithms(zk); err != nil {
			c.report(err)
			continue
		}
		ks, err := signing.NewKeyset(zone, signing.Keys(zk), cfg.DNSSEC.policy())
		if err != nil {
			c.report(fmt.Errorf("%s: %w", cfg.DNSSEC.KeyDir, err))
			continue
		}
		c.keys[zone] = ks
	}
	fmt.Fprintf(c.out, "%s: %d DNSSEC keys for %d zones\n", cfg.DNSSEC.KeyDir, len(kfs), len(c.keys))
}

// zoneFiles checks each file alone, then all together as one snapshot,
// which finds what crosses files (a zone defined twice) and what only
// compiling finds.
func (c *checker) zoneFiles(files []string) {
	var all []*zones.Zone
	failed := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			c.report(err)
			failed = true
			continue
		}
		z, err := zones.Parse(b, f)
		if err != nil {
			c.report(err)
			failed = true
			continue
		}
		signed := ""
		if ks := c.keys[zones.CanonicalName(z.Origin)]; ks != nil {
			z.Keys = ks
			signed = fmt.Sprintf(", signed with %d keys", len(ks.Keys))
		}
		fmt.Fprintf(c.out, "%s: zone %s: %d records, %d datacenters, %d pools%s\n", f, z.Origin, len(z.Records), len(z.Datacenters), len(z.Pools), signed)
		all = append(all, z)
	}
	if failed || len(all) == 0 {
		return
	}
	if _, err := zones.Build(all, 1); err != nil {
		c.report(err)
	}
}

// unique returns list without repeats, in order.
func unique(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/signing"
)

// keysCmd implements "meridian keys": the DNSSEC keys of a key directory
// (dnssec.key_dir), in the files BIND and ldns use. The work is done by
// package signing, which meridianctl shares.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := &cli.Program{
		Name:  "meridian keys",
		About: "Manage the DNSSEC keys of a key directory (dnssec.key_dir, docs/dnssec.md).",
		Commands: []cli.Command{
			{Name: "generate", Summary: "make a key for a zone", Run: keysGenerate},
			{Name: "list", Summary: "list the keys: zone, tag, algorithm, role, file", Run: keysList},
			{Name: "ds", Summary: "print the DS records of a zone's key signing keys, for its parent", Run: keysDS},
			{Name: "rollover", Summary: "start or finish a key rollover (double signature)", Run: keysRollover},
		},
	}
	return p.Run(ctx, args, stdout, stderr)
}

// keyFlags are the flags shared by the keys commands.
type keyFlags struct {
	fs            *pflag.FlagSet
	dir, zone     string
	ksk, zsk, csk bool
}

func newKeyFlags(name, usage string, stderr io.Writer, roles bool) *keyFlags {
	f := &keyFlags{fs: pflag.NewFlagSet(name, pflag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.SortFlags = false
	f.fs.StringVar(&f.dir, "dir", "", "the key directory (required)")
	f.fs.StringVar(&f.zone, "zone", "", "the zone, e.g. example.com")
	if roles {
		f.fs.BoolVar(&f.ksk, "ksk", false, "a key signing key (flags 257), beside a zone signing key")
		f.fs.BoolVar(&f.zsk, "zsk", false, "a zone signing key (flags 256)")
		f.fs.BoolVar(&f.csk, "csk", false, "a combined signing key (flags 257) that signs everything")
	}
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s\n\nFlags:\n%s", name, usage, f.fs.FlagUsages())
	}
	return f
}

// parse parses args and checks the directory and, when needZone, the zone.
func (f *keyFlags) parse(name string, args []string, stderr io.Writer, needZone bool) (int, bool) {
	if code, ok := cli.ParseFlags(f.fs, name, args, stderr); !ok {
		return code, false
	}
	switch {
	case f.fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, f.fs.Arg(0))
		return 2, false
	case f.dir == "":
		fmt.Fprintf(stderr, "%s: --dir is required\n", name)
		return 2, false
	case needZone && f.zone == "":
		fmt.Fprintf(stderr, "%s: --zone is required\n", name)
		return 2, false
	}
	if f.zone != "" {
		if _, ok := dns.IsDomainName(f.zone); !ok {
			fmt.Fprintf(stderr, "%s: --zone %q is not a domain name\n", name, f.zone)
			return 2, false
		}
		f.zone = dns.CanonicalName(f.zone)
	}
	return 0, true
}

// role returns the role flag given: "" for none, an error for several.
func (f *keyFlags) role() (string, error) {
	var roles []string
	for _, r := range []struct {
		set  bool
		name string
	}{{f.ksk, "KSK"}, {f.zsk, "ZSK"}, {f.csk, "CSK"}} {
		if r.set {
			roles = append(roles, r.name)
		}
	}
	switch len(roles) {
	case 0:
		return "", nil
	case 1:
		return roles[0], nil
	}
	return "", errors.New("give one of --ksk, --zsk and --csk")
}

func keysGenerate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "meridian keys generate"
	f := newKeyFlags(name, "--dir DIR --zone ZONE [--algorithm A] [--csk|--ksk|--zsk]\n\n"+
		"Make a key and write it as DIR/K<zone>+<alg>+<tag>.key and .private; print that\n"+
		"base name. A zone needs a CSK (the default), or a KSK and a ZSK.", stderr, true)
	alg := f.fs.String("algorithm", "ecdsap256sha256", "ecdsap256sha256 (13) or ed25519 (15)")
	if code, ok := f.parse(name, args, stderr, true); !ok {
		return code
	}
	role, err := f.role()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	a, err := signing.ParseAlgorithm(*alg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --algorithm: %v\n", name, err)
		return 2
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	existing, err := signing.ReadKeyDir(f.dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	zoneKeys := signing.ByZone(existing)[f.zone]
	if len(zoneKeys) > 0 && !f.fs.Changed("algorithm") {
		a = zoneKeys[0].DNSKEY.Algorithm // the zone's, unless asked
	}
	if len(zoneKeys) > 0 && zoneKeys[0].DNSKEY.Algorithm != a {
		fmt.Fprintf(stderr, "%s: %s has %s keys (%s): the keys of a zone share one algorithm\n", name, f.zone, signing.AlgorithmName(zoneKeys[0].DNSKEY.Algorithm), zoneKeys[0].PublicFile())
		return 1
	}
	flags := uint16(signing.FlagKSK)
	if role == "ZSK" {
		flags = signing.FlagZSK
	}
	k, err := signing.Generate(f.zone, a, flags)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	kf, err := signing.WriteKeyFiles(f.dir, k, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	fmt.Fprintln(stdout, kf.Base)
	// What the zone's keys now do, when that is not what was asked for.
	all := append(signing.Keys(zoneKeys), k)
	hasKSK := false
	for _, o := range all {
		hasKSK = hasKSK || o.KSK()
	}
	switch got := signing.Role(k, all); {
	case !hasKSK:
		fmt.Fprintf(stderr, "%s: note: %s has no key signing key yet, and is not signed until it has one: run with --ksk\n", name, f.zone)
	case role != "" && got != role:
		fmt.Fprintf(stderr, "%s: note: key %d is a %s among the keys of %s\n", name, k.Tag(), got, f.zone)
	}
	for _, o := range zoneKeys {
		if signing.Role(o.Key, all) == signing.Role(k, all) {
			fmt.Fprintf(stderr, "%s: note: %s has another %s, key %d: both are published and sign (to replace a key, use meridian keys rollover)\n", name, f.zone, signing.Role(k, all), o.Tag())
			break
		}
	}
	return 0
}

func keysList(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "meridian keys list"
	f := newKeyFlags(name, "--dir DIR [--zone ZONE]\n\nList the keys of DIR (not those in DIR/retired).", stderr, false)
	if code, ok := f.parse(name, args, stderr, false); !ok {
		return code
	}
	all, err := signing.ReadKeyDir(f.dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	byZone := signing.ByZone(all)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tTAG\tALGORITHM\tROLE\tCREATED\tFILE")
	n := 0
	for _, kf := range all {
		z := kf.DNSKEY.Hdr.Name
		if f.zone != "" && z != f.zone {
			continue
		}
		n++
		created := "-"
		if !kf.Created.IsZero() {
			created = kf.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", z, kf.Tag(), signing.AlgorithmName(kf.DNSKEY.Algorithm), signing.Role(kf.Key, signing.Keys(byZone[z])), created, kf.PublicFile())
	}
	tw.Flush()
	if n == 0 && f.zone != "" {
		fmt.Fprintf(stderr, "%s: no keys for %s in %s\n", name, f.zone, f.dir)
		return 1
	}
	return 0
}

func keysDS(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "meridian keys ds"
	f := newKeyFlags(name, "--dir DIR --zone ZONE\n\nPrint the DS records (SHA-256) of the zone's KSKs or CSK, to publish in its parent.", stderr, false)
	if code, ok := f.parse(name, args, stderr, true); !ok {
		return code
	}
	all, err := signing.ReadKeyDir(f.dir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	n := 0
	for _, kf := range signing.ByZone(all)[f.zone] {
		if kf.KSK() {
			fmt.Fprintln(stdout, kf.DS().String())
			n++
		}
	}
	if n == 0 {
		fmt.Fprintf(stderr, "%s: %s has no key signing key in %s\n", name, f.zone, f.dir)
		return 1
	}
	return 0
}

func keysRollover(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "meridian keys rollover"
	usage := "start|finish --dir DIR --zone ZONE [--csk|--ksk|--zsk]\n\n" +
		"start makes a successor of the zone's key of the role, with its algorithm: both are\n" +
		"published and sign. finish moves the older key's files to DIR/retired, once the new\n" +
		"key is older than --min-age. The role flag may be left out when the zone's keys\n" +
		"have one role (a CSK)."
	if len(args) == 0 || (args[0] != "start" && args[0] != "finish") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintf(stdout, "Usage: %s %s\n", name, usage)
			return 0
		}
		fmt.Fprintf(stderr, "Usage: %s %s\n", name, usage)
		return 2
	}
	step := args[0]
	full := name + " " + step
	f := newKeyFlags(full, usage, stderr, true)
	minAge := f.fs.Duration("min-age", time.Hour, "finish: the least age of the new key, at least the DNSKEY TTL (the SOA's); 0 skips the check")
	if code, ok := f.parse(full, args[1:], stderr, true); !ok {
		return code
	}
	role, err := f.role()
	if err == nil && role == "" {
		role, err = onlyRole(f.dir, f.zone)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", full, err)
		return 2
	}
	now := time.Now()
	if step == "start" {
		r, err := signing.StartRollover(f.dir, f.zone, role, now)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", full, err)
			return 1
		}
		fmt.Fprintln(stdout, r.New.Base)
		fmt.Fprintf(stderr, "%s: %s key %d is published and signs beside %d from the next reload (at once: the server watches the key directory).\n", full, role, r.New.Tag(), r.Old.Tag())
		if r.New.KSK() {
			fmt.Fprintf(stderr, "Next: publish the new DS in the parent (meridian keys ds --dir %s --zone %s), wait the old DS's TTL, then run finish.\n", f.dir, f.zone)
		} else {
			fmt.Fprintf(stderr, "Next: wait the DNSKEY TTL (the SOA's), then run finish.\n")
		}
		return 0
	}
	r, err := signing.FinishRollover(f.dir, f.zone, role, now, *minAge)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", full, err)
		return 1
	}
	fmt.Fprintln(stdout, r.Old.Base)
	fmt.Fprintf(stderr, "%s: %s key %d retired; key %d signs alone from the next reload.\n", full, role, r.Old.Tag(), r.New.Tag())
	if r.New.KSK() {
		fmt.Fprintf(stderr, "Remove the DS of key %d from the parent.\n", r.Old.Tag())
	}
	return 0
}

// onlyRole returns the role of the zone's keys when they all have one.
func onlyRole(dir, zone string) (string, error) {
	all, err := signing.ReadKeyDir(dir)
	if err != nil {
		return "", err
	}
	zk := signing.Keys(signing.ByZone(all)[zone])
	roles := map[string]bool{}
	for _, k := range zk {
		roles[signing.Role(k, zk)] = true
	}
	switch {
	case len(zk) == 0:
		return "", fmt.Errorf("%s has no keys in %s", zone, dir)
	case len(roles) > 1:
		return "", fmt.Errorf("%s has a KSK and a ZSK: give --ksk or --zsk", zone)
	}
	for r := range roles {
		return r, nil
	}
	return "", nil
}

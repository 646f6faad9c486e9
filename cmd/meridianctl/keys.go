package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// The environment variables of the key secret: the ones "meridian serve"
// reads for store.key_secret and store.key_old_secrets, so that one
// setting serves both. The secret is never taken from a flag, which other
// users could read in the process list.
const (
	envKeySecret     = "MERIDIAN_STORE_KEY_SECRET"
	envKeyOldSecrets = "MERIDIAN_STORE_KEY_OLD_SECRETS"
)

// keysCmd implements "meridianctl keys": the zones' DNSSEC keys in the
// database.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: meridianctl keys <command> [flags]\n\n"+
			"Manage the DNSSEC keys of the zones. Every server of the fleet signs with them once it\n"+
			"has loaded the change. Private keys are sealed with $"+envKeySecret+" (base64 of 32\n"+
			"random octets: openssl rand -base64 32), which the servers need too.\n\n"+
			"Commands:\n"+
			"  generate --zone Z [--algorithm A] [--split]   the first keys of a zone (a combined key, or KSK and ZSK)\n"+
			"  list [--zone Z] [--all]                       the keys (--all: retired ones too)\n"+
			"  ds --zone Z                                   the DS records for the parent zone\n"+
			"  rollover start --zone Z [--role R]            add a successor; both keys sign\n"+
			"  rollover finish --zone Z [--role R]           retire the predecessor\n"+
			"  reseal                                        seal every key with the current secret\n"+
			"  audit [--limit N]                             who generated, rolled and resealed keys\n")
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "generate":
		return keysGenerate(ctx, args[1:], stdout, stderr)
	case "list":
		return keysList(ctx, args[1:], stdout, stderr)
	case "ds":
		return keysDS(ctx, args[1:], stdout, stderr)
	case "rollover":
		if len(args) > 1 && args[1] == "start" {
			return keysRolloverStart(ctx, args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "finish" {
			return keysRolloverFinish(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, "Usage: meridianctl keys rollover start|finish --zone ZONE [flags]\n")
		return 2
	case "reseal":
		return keysReseal(ctx, args[1:], stdout, stderr)
	case "audit":
		return keysAudit(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "meridianctl keys: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// keyring reads the key secret and the old secrets from the environment.
// Errors name the variable, never its value.
func keyring() (*keyseal.Keyring, error) {
	text := os.Getenv(envKeySecret)
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("no key secret: set %s to the secret the servers have (store.key_secret); openssl rand -base64 32 makes a new one", envKeySecret)
	}
	current, err := keyseal.ParseSecret(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envKeySecret, err)
	}
	var old [][]byte
	for i, text := range strings.Split(os.Getenv(envKeyOldSecrets), ",") {
		if strings.TrimSpace(text) == "" {
			continue
		}
		s, err := keyseal.ParseSecret(text)
		if err != nil {
			return nil, fmt.Errorf("%s, secret %d: %w", envKeyOldSecrets, i+1, err)
		}
		old = append(old, s)
	}
	ring, err := keyseal.New(current, old...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envKeySecret, err)
	}
	return ring, nil
}

func keysGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys generate"
	f := newFlags(name, "--zone ZONE [--algorithm A] [--split] [flags]",
		"Generate the first DNSSEC keys of a zone: a combined signing key (CSK), or with --split\n"+
			"a key signing key (KSK) and a zone signing key (ZSK). Prints the DS records to publish\n"+
			"at the parent once the servers sign the zone.", stderr)
	zone := f.String("zone", "", "the zone (example.com.)")
	algorithm := f.String("algorithm", "ecdsap256sha256", "ecdsap256sha256 or ed25519")
	split := f.Bool("split", false, "a KSK and a ZSK instead of one combined key")
	actor := f.String("actor", defaultActor(), "who, for the audit log")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *zone == "" {
		f.Usage()
		return 2
	}
	alg, ok := signing.Algorithms[strings.ToUpper(*algorithm)]
	if !ok {
		fmt.Fprintf(stderr, "meridianctl %s: --algorithm %q: want ecdsap256sha256 or ed25519\n", name, *algorithm)
		return 2
	}
	ring, err := keyring()
	if err != nil {
		return fail(stderr, name, err)
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		c, err := postgres.GenerateKeys(ctx, conn, ring, *zone, alg, *split, *actor)
		if err != nil {
			return err
		}
		printChange(stdout, c)
		printDS(stdout, c.Added)
		return nil
	})
}

func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys list"
	f := newFlags(name, "[--zone ZONE] [--all] [flags]",
		"List the DNSSEC keys: every ACTIVE key is published and signs. The SECRET column names\n"+
			"the secret that sealed the private key (\"meridianctl keys reseal\" after a rotation).", stderr)
	zone := f.String("zone", "", "only this zone")
	all := f.Bool("all", false, "retired keys too")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		ks, err := postgres.ListKeys(ctx, conn, *zone, *all)
		if err != nil {
			return err
		}
		tw := table(stdout, "ZONE", "TAG", "ROLE", "ALGORITHM", "STATE", "CREATED", "RETIRED", "SECRET")
		for _, k := range ks {
			state := "active"
			if !k.Active {
				state = "retired"
			}
			row(tw, k.Zone, k.Tag, strings.ToUpper(k.Role), postgres.AlgorithmName(k.Algorithm), state, when(k.Created), when(k.Retired), dash(k.SecretID))
		}
		return tw.Flush()
	})
}

func keysDS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys ds"
	f := newFlags(name, "--zone ZONE [flags]",
		"Print the DS records (SHA-256) of the zone's active key signing keys, for the parent\n"+
			"zone. During a KSK rollover both keys' are printed.", stderr)
	zone := f.String("zone", "", "the zone (example.com.)")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *zone == "" {
		f.Usage()
		return 2
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		ks, err := postgres.ListKeys(ctx, conn, *zone, false)
		if err != nil {
			return err
		}
		n := 0
		for _, k := range ks {
			if k.Role != postgres.RoleZSK {
				fmt.Fprintln(stdout, k.DS())
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("zone %s: %w", zones.CanonicalName(*zone), postgres.ErrNoKeys)
		}
		return nil
	})
}

func keysRolloverStart(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys rollover start"
	f := newFlags(name, "--zone ZONE [--role csk|ksk|zsk] [flags]",
		"Start a rollover: add a successor to the zone's key of the role, with its algorithm.\n"+
			"Both keys are published and sign until \"rollover finish\". --role may be left out\n"+
			"for a zone with a combined key.", stderr)
	zone := f.String("zone", "", "the zone (example.com.)")
	role := f.String("role", "", "csk, ksk or zsk")
	actor := f.String("actor", defaultActor(), "who, for the audit log")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *zone == "" {
		f.Usage()
		return 2
	}
	ring, err := keyring()
	if err != nil {
		return fail(stderr, name, err)
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		c, err := postgres.StartRollover(ctx, conn, ring, *zone, strings.ToLower(*role), *actor)
		if err != nil {
			return err
		}
		printChange(stdout, c)
		wait, err := postgres.RolloverWait(ctx, conn, *zone)
		if err != nil {
			return err
		}
		if k := c.Added[0]; k.Role == postgres.RoleZSK {
			fmt.Fprintf(stdout, "Finish it (meridianctl keys rollover finish --zone %s --role zsk) after %s or later.\n", k.Zone, k.Created.Add(wait).UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			fmt.Fprintf(stdout, "Replace the DS at the parent with this one, wait until the old DS has left caches (its TTL),\n"+
				"then finish (meridianctl keys rollover finish --zone %s), not before %s:\n", k.Zone, k.Created.Add(wait).UTC().Format("2006-01-02T15:04:05Z"))
			printDS(stdout, c.Added)
		}
		return nil
	})
}

func keysRolloverFinish(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys rollover finish"
	f := newFlags(name, "--zone ZONE [--role csk|ksk|zsk] [--force] [flags]",
		"Finish a rollover: retire the predecessor, so that only the successor signs. Refused\n"+
			"until the successor has been published for the zone's largest TTL and an hour, so that\n"+
			"resolvers know it. For a KSK or CSK, the parent must have the successor's DS first.", stderr)
	zone := f.String("zone", "", "the zone (example.com.)")
	role := f.String("role", "", "csk, ksk or zsk, when rollovers of two roles are in progress")
	force := f.Bool("force", false, "finish now, even if resolvers may still hold the old DNSKEY RRset")
	actor := f.String("actor", defaultActor(), "who, for the audit log")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *zone == "" {
		f.Usage()
		return 2
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		wait, err := postgres.RolloverWait(ctx, conn, *zone)
		if err != nil {
			return err
		}
		c, err := postgres.FinishRollover(ctx, conn, *zone, strings.ToLower(*role), wait, *force, *actor)
		if err != nil {
			if errors.Is(err, postgres.ErrRolloverTooSoon) {
				err = fmt.Errorf("%w (--force to finish anyway)", err)
			}
			return err
		}
		printChange(stdout, c)
		return nil
	})
}

func keysReseal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys reseal"
	f := newFlags(name, "[flags]",
		"Seal every private key again with the current secret ($"+envKeySecret+"), opening\n"+
			"those sealed with an old one with $"+envKeyOldSecrets+" (comma separated). Once done,\n"+
			"the old secret can be dropped from the servers.", stderr)
	actor := f.String("actor", defaultActor(), "who, for the audit log")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	ring, err := keyring()
	if err != nil {
		return fail(stderr, name, err)
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		n, err := postgres.ResealKeys(ctx, conn, ring, *actor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d keys resealed with secret %s\n", n, ring.ID())
		return nil
	})
}

func keysAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "keys audit"
	f := newFlags(name, "[--limit N] [flags]", "Show the log of DNSSEC key changes, newest first.", stderr)
	limit := f.Int("limit", 50, "entries to show (0: all)")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		as, err := postgres.KeyAuditLog(ctx, conn, *limit)
		if err != nil {
			return err
		}
		tw := table(stdout, "AT", "ACTOR", "ZONE", "ACTION", "DETAIL")
		for _, a := range as {
			row(tw, when(a.At), a.Actor, a.Zone, a.Action, dash(a.Detail))
		}
		return tw.Flush()
	})
}

// printChange says what a key command changed, and in which version.
func printChange(w io.Writer, c *postgres.KeyChange) {
	for _, k := range c.Added {
		fmt.Fprintf(w, "%s: added %s %d (%s)\n", k.Zone, strings.ToUpper(k.Role), k.Tag, postgres.AlgorithmName(k.Algorithm))
	}
	for _, k := range c.Retired {
		fmt.Fprintf(w, "%s: retired %s %d\n", k.Zone, strings.ToUpper(k.Role), k.Tag)
	}
	fmt.Fprintf(w, "applied: version %d\n", c.Version)
}

// printDS prints the DS records of the key signing keys among keys.
func printDS(w io.Writer, keys []postgres.KeyInfo) {
	for _, k := range keys {
		if k.Role != postgres.RoleZSK {
			fmt.Fprintf(w, "DS for the parent: %s\n", k.DS())
		}
	}
}

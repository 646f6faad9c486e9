package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// zoneExts are the extensions of the zone files taken from a directory.
var zoneExts = []string{".yaml", ".yml", ".zone"}

// applyCmd implements "meridianctl apply": it loads zone files, prints
// what differs from the database and, unless --dry-run, applies it in one
// transaction.
func applyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("apply", "-f DIR|FILE [-f ...] [flags]",
		"Make the database hold the zones of zone files (*.yaml and *.yml in the YAML zone format,\n"+
			"*.zone and any other file named explicitly as RFC 1035 master files). Prints the changes,\n"+
			"then applies them in one transaction. Invalid files change nothing.", stderr)
	paths := f.StringArrayP("file", "f", nil, "zone file, or directory of *.yaml, *.yml and *.zone files (repeatable)")
	dryRun := f.Bool("dry-run", false, "print the changes without applying them")
	prune := f.Bool("prune", false, "delete zones that are in the database but not in the files")
	force := f.Bool("force", false, "apply changes that the guard rails refuse")
	share := f.Float64("max-delete-share", postgres.DefaultMaxDeleteShare, "largest share of a zone's records and endpoints deleted without --force")
	actor := f.String("actor", defaultActor(), "who applies, for the audit log")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if len(*paths) == 0 {
		f.Usage()
		return 2
	}
	if *share <= 0 {
		fmt.Fprintf(stderr, "meridianctl apply: --max-delete-share must be positive, got %g\n", *share)
		return 2
	}
	zs, err := loadZones(*paths)
	if err != nil {
		fmt.Fprintf(stderr, "meridianctl apply: %v\nNothing was changed.\n", err)
		return 1
	}
	// Apply's error is reported below rather than by withConn: after the
	// diff, which comes with a refusal, and with what to do about it.
	var diff *postgres.Diff
	if code := f.withConn(ctx, func(conn *pgx.Conn) error {
		diff, err = postgres.Apply(ctx, conn, zs, postgres.ApplyOptions{
			DryRun: *dryRun, Prune: *prune, Force: *force, MaxDeleteShare: *share, Actor: *actor,
		})
		return nil
	}); code != 0 {
		return code
	}
	if diff != nil && !diff.Empty() {
		fmt.Fprint(stdout, diff)
	}
	var refused *postgres.RefusedError
	switch {
	case errors.As(err, &refused):
		fmt.Fprintf(stderr, "meridianctl apply: %v\nNothing was changed. Review the changes above; run again with --force to apply them, or raise --max-delete-share.\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "meridianctl apply: %v\nNothing was changed.\n", err)
		return 1
	case diff.Empty():
		fmt.Fprintf(stdout, "no changes (version %d)\n", diff.Version)
	case *dryRun:
		fmt.Fprintf(stdout, "dry run: nothing applied (version %d)\n", diff.Version)
	default:
		fmt.Fprintf(stdout, "applied: version %d\n", diff.Version)
	}
	return 0
}

// defaultActor is the user running the command, for the audit log.
func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// loadZones parses the zone files named by paths, a directory standing
// for its zone files in name order. Every file is parsed, so that all
// errors are reported at once.
func loadZones(paths []string) ([]*zones.Zone, error) {
	var files []string
	for _, p := range paths {
		fs, err := zoneFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	var zs []*zones.Zone
	var errs []error
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		z, err := zones.Parse(data, file)
		if err != nil {
			errs = append(errs, err) // zones errors name the file and line
			continue
		}
		zs = append(zs, z)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid zone files:\n%w", errors.Join(errs...))
	}
	return zs, nil
}

// zoneFiles returns path when it is a file, else the zone files in it.
func zoneFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && slices.Contains(zoneExts, strings.ToLower(filepath.Ext(e.Name()))) {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no zone files (%s) in the directory", path, strings.Join(zoneExts, ", "))
	}
	return files, nil
}

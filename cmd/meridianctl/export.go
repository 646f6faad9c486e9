package main

import (
	"context"
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

// exportCmd implements "meridianctl export": it writes the zones of the
// database as YAML zone files that "meridianctl apply" reads back.
func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("export", "-o DIR [--zone ZONE] [flags]",
		"Write each zone of the database to DIR/<zone>.yaml in the YAML zone format. Health is\n"+
			"left out: it belongs to the checkers, and a file that said up or down would override\n"+
			"them when applied again. Admin states are kept. A zone that cannot be read whole\n"+
			"(a record broken by a manual SQL edit) is not written, and the exit status is 1.", stderr)
	dir := f.StringP("output", "o", "", "directory to write the zone files to (created if missing)")
	zone := f.String("zone", "", "export only this zone")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *dir == "" {
		f.Usage()
		return 2
	}
	zs, code := f.readZones(ctx, *zone)
	if code != 0 {
		return code
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fail(stderr, "export", err)
	}
	for _, z := range zs {
		if z.Invalid != nil {
			// Written, it would lack what could not be read, and applying
			// it would delete that: the zone must be fixed in SQL first.
			fmt.Fprintf(stderr, "meridianctl export: zone %s not written: it cannot be read whole: %v\n", z.Origin, z.Invalid)
			code = 1
			continue
		}
		path, err := writeZone(*dir, z)
		if err != nil {
			return fail(stderr, "export", err)
		}
		fmt.Fprintf(stdout, "wrote %s\n", path)
	}
	return code
}

// readZones connects and reads every zone, or only zone, in one
// consistent snapshot, by origin. A code other than 0 ends the command,
// whose error withConn has printed.
func (f *flags) readZones(ctx context.Context, zone string) (zs []*zones.Zone, code int) {
	code = f.withConn(ctx, func(conn *pgx.Conn) error {
		var byID map[int64]*zones.Zone
		err := readOnly(ctx, conn, func(tx pgx.Tx) (err error) {
			byID, err = postgres.ReadZones(ctx, tx, nil)
			return err
		})
		if err != nil {
			return err
		}
		for _, z := range byID {
			if zone == "" || z.Origin == zones.CanonicalName(zone) {
				zs = append(zs, z)
			}
		}
		if zone != "" && len(zs) == 0 {
			return fmt.Errorf("no zone %s in the database", zones.CanonicalName(zone))
		}
		slices.SortFunc(zs, func(a, b *zones.Zone) int { return strings.Compare(a.Origin, b.Origin) })
		return nil
	})
	return zs, code
}

// writeZone writes z to dir/<origin>.yaml, replacing the file atomically
// so that an interrupted export never leaves half a zone behind.
func writeZone(dir string, z *zones.Zone) (string, error) {
	name := strings.TrimSuffix(z.Origin, ".")
	if name == "" {
		name = "root"
	}
	// An origin is data from the database: it must not reach outside dir.
	if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("zone %s: origin not usable as a file name", z.Origin)
	}
	for i := range z.Pools {
		for j := range z.Pools[i].Endpoints {
			z.Pools[i].Endpoints[j].Health = zones.HealthUnknown
		}
	}
	data, err := zones.FormatYAML(z)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".yaml")
	tmp, err := os.CreateTemp(dir, "."+name+".yaml.*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

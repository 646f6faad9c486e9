package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
)

// zonesCmd implements "meridianctl zones".
func zonesCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("zones", "[flags]",
		"List the zones with their SOA serial, what they hold, and their STATUS: ok, or invalid\n"+
			"and why (see \"meridianctl check\"): the servers then keep serving the zone's last\n"+
			"good version.", stderr)
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		var zs []postgres.ZoneInfo
		var statuses map[string]string
		err := readOnly(ctx, conn, func(tx pgx.Tx) (err error) {
			if zs, err = postgres.ListZones(ctx, tx); err != nil {
				return err
			}
			statuses, err = zoneStatuses(ctx, tx)
			return err
		})
		if err != nil {
			return err
		}
		tw := table(stdout, "ZONE", "SERIAL", "RECORDS", "DATACENTERS", "POOLS", "ENDPOINTS", "STATUS")
		for _, z := range zs {
			row(tw, z.Origin, z.Serial, z.Records, z.Datacenters, z.Pools, z.Endpoints, statuses[z.Origin])
		}
		return tw.Flush()
	})
}

// poolsCmd implements "meridianctl pools".
func poolsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("pools", "[--zone ZONE] [flags]",
		"List the pools with their endpoints counted by state. ELIGIBLE endpoints are those\n"+
			"answered in normal operation: active and up, or unknown when unknown_is_up.", stderr)
	zone := f.String("zone", "", "list only the pools of this zone")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		ps, err := postgres.ListPools(ctx, conn, *zone)
		if err != nil {
			return err
		}
		tw := table(stdout, "ZONE", "POOL", "TTL", "MAX", "GEO", "ALL DOWN", "ENDPOINTS", "ACTIVE", "UP", "DOWN", "ELIGIBLE")
		for _, p := range ps {
			row(tw, p.Zone, p.Name, p.TTL, p.MaxAnswers, p.Geo, p.WhenAllDown, p.Endpoints, p.Active, p.Up, p.Down, p.Eligible)
		}
		return tw.Flush()
	})
}

// endpointsCmd implements "meridianctl endpoints".
func endpointsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("endpoints", "[--pool POOL] [flags]",
		"List the endpoints with their admin state and health, each with its reason.", stderr)
	pool := f.String("pool", "", "list only the endpoints of this pool (fully qualified name)")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		es, err := postgres.ListEndpoints(ctx, conn, *pool)
		if err != nil {
			return err
		}
		tw := table(stdout, "POOL", "ADDRESS", "DATACENTER", "WEIGHT", "ADMIN", "HEALTH", "ELIGIBLE", "HEALTH SINCE", "REASONS")
		for _, e := range es {
			row(tw, e.Pool, e.Addr, e.Datacenter, e.Weight, e.Admin, e.Health, yesNo(e.Eligible), when(e.HealthUpdated), reasons(e.AdminReason, e.HealthReason))
		}
		return tw.Flush()
	})
}

// auditCmd implements "meridianctl audit".
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("audit", "[--changes [--zone Z]] [--limit N] [flags]",
		"Show the admin state changes, newest first; with --changes, the changes of the zones'\n"+
			"configuration (apply, the management API, dynamic updates) with their diffs.", stderr)
	limit := f.Int("limit", 50, "show at most this many entries (0: all)")
	changes := f.Bool("changes", false, "show the zones' configuration changes instead")
	zone := f.String("zone", "", "with --changes: of this zone only")
	if code, ok := f.parse(args, stderr); !ok {
		return code
	}
	if *zone != "" && !*changes {
		fmt.Fprintln(stderr, "meridianctl audit: --zone goes with --changes")
		return 2
	}
	return f.withConn(ctx, func(conn *pgx.Conn) error {
		if *changes {
			return auditChanges(ctx, conn, *zone, *limit, stdout)
		}
		as, err := postgres.AuditLog(ctx, conn, *limit)
		if err != nil {
			return err
		}
		tw := table(stdout, "AT", "ACTOR", "POOL", "ADDRESS", "CHANGE", "REASON")
		for _, a := range as {
			row(tw, when(a.At), a.Actor, a.Pool, a.Addr, a.Old+" -> "+a.New, dash(a.Reason))
		}
		return tw.Flush()
	})
}

// auditChanges prints the configuration changes of zone ("" for all),
// newest first, each with its diff.
func auditChanges(ctx context.Context, conn *pgx.Conn, zone string, limit int, stdout io.Writer) error {
	if limit <= 0 {
		limit = 1 << 30
	}
	rs, err := postgres.ReadAudit(ctx, conn, postgres.AuditQuery{Zone: zone, Limit: limit})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Diff == "" {
			continue // an admin state change: meridianctl audit shows those
		}
		fmt.Fprintf(stdout, "%s  %s  %s  version %d\n", when(r.At), r.Actor, r.Zone, r.Version)
		for _, line := range strings.Split(strings.TrimSuffix(r.Diff, "\n"), "\n") {
			fmt.Fprintf(stdout, "    %s\n", line)
		}
	}
	return nil
}

// table starts a table with a header line.
func table(w io.Writer, header ...any) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row(tw, header...)
	return tw
}

// row writes one line of a table.
func row(tw *tabwriter.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c)
	}
	fmt.Fprint(tw, "\n")
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reasons joins the admin and health reasons of an endpoint.
func reasons(admin, health string) string {
	switch {
	case admin != "" && health != "":
		return "admin: " + admin + "; health: " + health
	case admin != "":
		return "admin: " + admin
	case health != "":
		return "health: " + health
	}
	return "-"
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// adminStates maps the admin commands to the states they set.
var adminStates = map[string]zones.AdminState{
	"drain":   zones.AdminDrain,
	"disable": zones.AdminDisabled,
	"enable":  zones.AdminActive,
}

// adminCmd returns the command "meridianctl drain", "disable" or
// "enable", which sets an endpoint's admin state and logs who did it and
// why.
func adminCmd(name string) func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	state := adminStates[name]
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		about := fmt.Sprintf("Set the admin state of an endpoint to %s, and log it in the audit log.\n"+
			"DNS servers pick the change up when notified, or at their next poll.", state)
		f := newFlags(name, "--pool POOL --address ADDR --reason TEXT [flags]", about, stderr)
		pool := f.String("pool", "", "pool name (www.example.com.)")
		address := f.String("address", "", "endpoint address")
		reason := f.String("reason", "", "why, for the audit log (required to drain or disable)")
		actor := f.String("actor", defaultActor(), "who, for the audit log")
		if code, ok := f.parse(args, stderr); !ok {
			return code
		}
		if *pool == "" || *address == "" {
			f.Usage()
			return 2
		}
		addr, err := netip.ParseAddr(*address)
		if err != nil {
			fmt.Fprintf(stderr, "meridianctl %s: --address: %v\n", name, err)
			return 2
		}
		if state != zones.AdminActive && *reason == "" {
			fmt.Fprintf(stderr, "meridianctl %s: --reason is required: say why, for the audit log\n", name)
			return 2
		}
		return f.withConn(ctx, func(conn *pgx.Conn) error {
			old, err := postgres.SetAdmin(ctx, conn, *pool, addr, state, *reason, *actor)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s: %s -> %s\n", zones.CanonicalName(*pool), addr, old, state)
			return nil
		})
	}
}

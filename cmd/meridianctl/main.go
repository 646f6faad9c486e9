// Command meridianctl manages the zones, pools and endpoints of a Meridian
// PostgreSQL store: it applies zone files to the database, exports the
// database as zone files, lists what is there and drains, disables and
// enables endpoints, with an audit log.
//
// Usage:
//
//	meridianctl apply -f DIR|FILE [-f ...] [--dry-run] [--prune] [--force]
//	meridianctl export -o DIR [--zone ZONE]
//	meridianctl zones
//	meridianctl check [--zone ZONE]
//	meridianctl pools [--zone ZONE]
//	meridianctl endpoints [--pool POOL]
//	meridianctl audit [--limit N]
//	meridianctl drain|disable|enable --pool POOL --address ADDR --reason TEXT
//	meridianctl token create --pool POOL | --operator [--label TEXT]
//	meridianctl token list
//	meridianctl token revoke ID
//	meridianctl checkers [remove ID]
//	meridianctl keys generate|list|ds|rollover start|rollover finish|reseal|audit
//	meridianctl changes [prune [--keep DURATION]]
//
// Every command takes --database URL, by default $MERIDIAN_STORE_DATABASE,
// and refuses a database whose schema it does not know ("meridian
// migrate" creates and upgrades it).
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/meridiandns/meridian/internal/cli"
)

// program lists the subcommands in the order usage shows them.
var program = &cli.Program{
	Name:   "meridianctl",
	About:  "meridianctl manages the zones and endpoints of Meridian's PostgreSQL store.",
	Footer: "Every command takes --database URL (default $" + envDatabase + ").\n",
	Commands: []cli.Command{
		{Name: "apply", Summary: "make the database hold the zones of zone files", Run: applyCmd},
		{Name: "export", Summary: "write the zones of the database as YAML zone files", Run: exportCmd},
		{Name: "zones", Summary: "list the zones, with their status", Run: zonesCmd},
		{Name: "check", Summary: "validate the zones of the database as the servers do", Run: checkCmd},
		{Name: "pools", Summary: "list the pools, with endpoint counts by state", Run: poolsCmd},
		{Name: "endpoints", Summary: "list the endpoints, with admin state and health", Run: endpointsCmd},
		{Name: "audit", Summary: "show the log of admin state changes", Run: auditCmd},
		{Name: "drain", Summary: "stop answering an endpoint, for maintenance", Run: adminCmd("drain")},
		{Name: "disable", Summary: "stop answering an endpoint until enabled", Run: adminCmd("disable")},
		{Name: "enable", Summary: "answer a drained or disabled endpoint again", Run: adminCmd("enable")},
		{Name: "token", Summary: "create, list and revoke agent API tokens", Run: tokenCmd},
		{Name: "checkers", Summary: "list the health checkers; remove a retired one", Run: checkersCmd},
		{Name: "keys", Summary: "generate, list and roll the zones' DNSSEC keys", Run: keysCmd},
		{Name: "changes", Summary: "show the change log; prune it", Run: changesCmd},
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Run(ctx, args, stdout, stderr)
}

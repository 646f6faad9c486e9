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
//	meridianctl pools [--zone ZONE]
//	meridianctl endpoints [--pool POOL]
//	meridianctl audit [--limit N]
//	meridianctl drain|disable|enable --pool POOL --address ADDR --reason TEXT
//
// Every command takes --database URL, by default $MERIDIAN_STORE_DATABASE,
// and refuses a database whose schema it does not know ("meridian
// migrate" creates and upgrades it).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand of meridianctl.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"apply", "make the database hold the zones of zone files", applyCmd},
	{"export", "write the zones of the database as YAML zone files", exportCmd},
	{"zones", "list the zones", zonesCmd},
	{"pools", "list the pools, with endpoint counts by state", poolsCmd},
	{"endpoints", "list the endpoints, with admin state and health", endpointsCmd},
	{"audit", "show the log of admin state changes", auditCmd},
	{"drain", "stop answering an endpoint, for maintenance", adminCmd("drain")},
	{"disable", "stop answering an endpoint until enabled", adminCmd("disable")},
	{"enable", "answer a drained or disabled endpoint again", adminCmd("enable")},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "meridianctl: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "meridianctl manages the zones and endpoints of Meridian's PostgreSQL store.\n\nUsage: meridianctl <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEvery command takes --database URL (default $%s).\nRun \"meridianctl <command> --help\" for the flags of a command.\n", envDatabase)
}

// Command meridian is Meridian, an authoritative, GeoIP-aware GSLB DNS
// server.
//
// Usage:
//
//	meridian serve [--config meridian.yaml] [flags]
//	meridian explain NAME --client ADDR[/PREFIX] [--type A|AAAA] [flags]
//	meridian migrate --database URL
//	meridian version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version is used.
var version = ""

// command is one subcommand of meridian.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order usage shows them.
var commands = []command{
	{"serve", "serve DNS for the configured zones", serveCmd},
	{"explain", "show how a name is answered for a client, and why", explainCmd},
	{"migrate", "create or upgrade the schema of a PostgreSQL store", migrateCmd},
	{"version", "print the version", versionCmd},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
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
	case "-version", "--version":
		return versionCmd(ctx, nil, stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "meridian: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Meridian is an authoritative, GeoIP-aware GSLB DNS server.\n\nUsage: meridian <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"meridian <command> --help\" for the flags of a command.\n")
}

func versionCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "meridian version: unexpected argument %q\n", args[0])
		return 2
	}
	fmt.Fprintf(stdout, "meridian %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// versionString returns the version set at build time, else the module
// version, else "devel".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

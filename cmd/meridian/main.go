// Command meridian is Meridian, an authoritative, GeoIP-aware GSLB DNS
// server.
//
// Usage:
//
//	meridian serve [--config meridian.yaml] [flags]
//	meridian check [--config meridian.yaml] [ZONE-FILE...]
//	meridian explain NAME --client ADDR[/PREFIX] [--type A|AAAA] [flags]
//	meridian migrate --database URL
//	meridian keys generate|list|ds|rollover --dir DIR [--zone ZONE]
//	meridian version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/meridiandns/meridian/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version is used.
var version = ""

// program lists the subcommands in the order usage shows them.
var program = &cli.Program{
	Name:  "meridian",
	About: "Meridian is an authoritative, GeoIP-aware GSLB DNS server.",
	Commands: []cli.Command{
		{Name: "serve", Summary: "serve DNS for the configured zones", Run: serveCmd},
		{Name: "check", Summary: "validate the configuration and zone files without serving", Run: checkCmd},
		{Name: "explain", Summary: "show how a name is answered for a client, and why", Run: explainCmd},
		{Name: "migrate", Summary: "create or upgrade the schema of a PostgreSQL store", Run: migrateCmd},
		{Name: "keys", Summary: "make, list and roll the DNSSEC keys of a key directory", Run: keysCmd},
		{Name: "agent-token", Summary: "make a token for the health-agent API of a server without a database", Run: agentTokenCmd},
		{Name: "api-token", Summary: "make a token for the management API of a server without a database", Run: apiTokenCmd},
		{Name: "version", Summary: "print the version", Run: versionCmd},
	},
	Aliases: map[string]string{"-version": "version", "--version": "version"},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Run(ctx, args, stdout, stderr)
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

// Package cli dispatches the subcommands of Meridian's binaries, so that
// meridian and meridianctl parse and explain their commands the same way.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// Command is one subcommand. Run returns the process exit code.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Program is a binary made of subcommands.
type Program struct {
	Name     string    // as typed, e.g. "meridianctl"
	About    string    // one sentence, first line of the usage
	Footer   string    // after the command list
	Commands []Command // in the order the usage lists them
	// Aliases maps extra first arguments (such as "--version") to commands.
	Aliases map[string]string
}

// Run dispatches args (without the program name) and returns the exit
// code: 2 for a usage error, as flag packages do.
func (p *Program) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.Usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		p.Usage(stdout)
		return 0
	}
	name := args[0]
	if alias, ok := p.Aliases[name]; ok {
		name = alias
	}
	for _, c := range p.Commands {
		if c.Name == name {
			return c.Run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
	p.Usage(stderr)
	return 2
}

// Usage writes the program's usage to w.
func (p *Program) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage: %s <command> [flags]\n\nCommands:\n", p.About, p.Name)
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\n%sRun \"%s <command> --help\" for the flags of a command.\n", p.Footer, p.Name)
}

// ParseFlags parses args into fs for the command name (as its messages
// show it, e.g. "meridian serve"). When ok is false the command is over
// with exit code code: 0 after --help (fs.Usage was shown), 2 for a bad
// flag, which is reported on stderr.
func ParseFlags(fs *pflag.FlagSet, name string, args []string, stderr io.Writer) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, pflag.ErrHelp):
		return 0, false
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 2, false
}

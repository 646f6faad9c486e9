package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestProgramRun(t *testing.T) {
	var ran []string
	cmd := func(name string) func(context.Context, []string, io.Writer, io.Writer) int {
		return func(_ context.Context, args []string, stdout, _ io.Writer) int {
			ran = append(ran, name+" "+strings.Join(args, " "))
			return 7
		}
	}
	p := &Program{
		Name: "prog", About: "Prog does things.", Footer: "Footer line.\n",
		Commands: []Command{{"one", "first", cmd("one")}, {"two", "second", cmd("two")}},
		Aliases:  map[string]string{"--one": "one"},
	}
	tests := []struct {
		args      []string
		code      int
		ran       string
		stdout    string
		stderr    string
		wantUsage bool
	}{
		{args: nil, code: 2, stderr: "Usage: prog <command>"},
		{args: []string{"--help"}, code: 0, stdout: "Footer line.\nRun \"prog <command> --help\""},
		{args: []string{"two", "-x", "y"}, code: 7, ran: "two -x y"},
		{args: []string{"--one"}, code: 7, ran: "one "},
		{args: []string{"three"}, code: 2, stderr: "prog: unknown command \"three\""},
	}
	for _, tc := range tests {
		ran = nil
		var out, errOut bytes.Buffer
		code := p.Run(context.Background(), tc.args, &out, &errOut)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
		if got := strings.Join(ran, ","); got != tc.ran {
			t.Errorf("%v: ran %q, want %q", tc.args, got, tc.ran)
		}
		if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("%v: stdout %q stderr %q, want %q and %q", tc.args, out.String(), errOut.String(), tc.stdout, tc.stderr)
		}
	}
	var out bytes.Buffer
	p.Usage(&out)
	if !strings.Contains(out.String(), "  one        first\n  two        second\n") {
		t.Errorf("usage lists commands badly:\n%s", out.String())
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		ok       bool
		stderr   string
		usage    bool
		wantName string
	}{
		{args: []string{"--name", "x", "pos"}, ok: true, wantName: "x"},
		{args: []string{"--help"}, code: 0, usage: true},
		{args: []string{"--bogus"}, code: 2, stderr: "prog sub: unknown flag: --bogus\n"},
		{args: []string{"--name"}, code: 2, stderr: "prog sub: flag needs an argument: --name\n"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		fs := pflag.NewFlagSet("sub", pflag.ContinueOnError)
		fs.SetOutput(&stderr)
		usage := false
		fs.Usage = func() { usage = true }
		name := fs.String("name", "", "a name")
		code, ok := ParseFlags(fs, "prog sub", tt.args, &stderr)
		if code != tt.code || ok != tt.ok || stderr.String() != tt.stderr || usage != tt.usage {
			t.Errorf("%v: code %d ok %v stderr %q usage %v; want %d %v %q %v", tt.args, code, ok, stderr.String(), usage, tt.code, tt.ok, tt.stderr, tt.usage)
		}
		if tt.ok && (*name != tt.wantName || fs.NArg() != 1) {
			t.Errorf("%v: name %q args %v", tt.args, *name, fs.Args())
		}
	}
}

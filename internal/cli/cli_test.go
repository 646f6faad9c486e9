package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
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

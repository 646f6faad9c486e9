package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--database", "x", "extra"}, {"--bogus"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"--database", "postgres://nobody@127.0.0.1:1/x?connect_timeout=1", "--id", "t"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "127.0.0.1") {
		t.Errorf("unreachable database: exit %d, log %q", code, errOut.String())
	}
}

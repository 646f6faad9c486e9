package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// root is the repository's root directory; the tests run in deploy/.
var root = func() string {
	dir, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return dir
}()

// path returns the absolute path of a file named relative to the root.
func path(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }

// tool returns the path of a command the tests need, failing (never
// skipping) when it is missing: scripts/test.sh installs it.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install the Debian package %s (scripts/test.sh does)", name, debianPackage)
	}
	return p
}

// result is what a command printed.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("err: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

// run runs a command in dir with env added to a copy of the environment
// without any MERIDIAN_* variable, and gives up after timeout.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: gave up after %s: %w", name, timeout, ctx.Err())
	}
	return result{stdout.String(), stderr.String(), err}
}

// cleanEnv is the environment without the MERIDIAN_* variables a
// developer may have set, which would change what meridian reads.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MERIDIAN_") {
			env = append(env, kv)
		}
	}
	return env
}

// readYAML decodes a YAML file of the repository into v.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(path(rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// binDir holds the binaries the tests build, removed by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meridian-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildRes  result
)

// meridian returns the path of a meridian binary built from this tree,
// for "meridian check".
func meridian(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "meridian")
	buildOnce.Do(func() {
		buildRes = run(t, 5*time.Minute, root, nil, "go", "build", "-o", bin, "./cmd/meridian")
	})
	if buildRes.err != nil {
		t.Fatalf("go build ./cmd/meridian:\n%s", buildRes)
	}
	return bin
}

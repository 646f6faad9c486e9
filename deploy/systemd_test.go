package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// unitFile is a systemd unit: section, key, values in order.
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, rel string) unitFile {
	t.Helper()
	f, err := os.Open(path(rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read %q", rel, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSystemdVerify runs systemd-analyze verify on the units, with their
// executables replaced by stubs (verify checks that they exist), and
// keeps their exposure as "systemd-analyze security" rates it low. Any
// warning fails, not only errors.
func TestSystemdVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"meridian", "meridian-checker"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, unit := range []string{"meridian.service", "meridian-checker.service"} {
		t.Run(unit, func(t *testing.T) {
			b, err := os.ReadFile(path("deploy/systemd/" + unit))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "/usr/local/bin/") {
				t.Fatalf("%s: no /usr/local/bin/ executable to stub", unit)
			}
			stubbed := strings.ReplaceAll(string(b), "/usr/local/bin/", bin+"/")
			f := filepath.Join(dir, unit)
			if err := os.WriteFile(f, []byte(stubbed), 0o644); err != nil {
				t.Fatal(err)
			}
			r := run(t, time.Minute, dir, nil, analyze, "verify", "--man=no", f)
			if r.err != nil || strings.TrimSpace(r.stdout+r.stderr) != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", unit, r)
			}
			// The sandboxing: 1.4 and 1.2 when written; 2 leaves room
			// for systemd's scoring to move, not for a setting to go.
			// The threshold is in tenths of the level printed.
			r = run(t, time.Minute, dir, nil, analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", f)
			if r.err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2:\n%s", unit, r)
			}
		})
	}
}

// TestSystemdUnits checks the settings the units are about, which
// verify accepts either way, and that the files they name are the
// examples beside them.
func TestSystemdUnits(t *testing.T) {
	sandbox := map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"DynamicUser":             "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter":        "@system-service",
		"Restart":                 "on-failure",
	}
	tests := []struct {
		unit string
		want map[string]string
		not  []string
	}{
		{"meridian.service", map[string]string{
			"Type":                   "notify",
			"WatchdogSec":            "30s",
			"ExecReload":             "/bin/kill -HUP $MAINPID",
			"AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
			"CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
			"StateDirectory":         "meridian",
			"ConfigurationDirectory": "meridian",
			"EnvironmentFile":        "-/etc/meridian/meridian.env",
			"ExecStart":              "/usr/local/bin/meridian serve --config /etc/meridian/meridian.yaml",
		}, nil},
		{"meridian-checker.service", map[string]string{
			"Type":                  "simple",
			"CapabilityBoundingSet": "",
			"EnvironmentFile":       "-/etc/meridian/meridian-checker.env",
		}, []string{"AmbientCapabilities", "WatchdogSec"}},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			u := readUnit(t, "deploy/systemd/"+tt.unit)
			svc := u["Service"]
			for k, v := range sandbox {
				if !slices.Contains(svc[k], v) {
					t.Errorf("%s=%q, want %q among them", k, svc[k], v)
				}
			}
			for k, v := range tt.want {
				if !slices.Contains(svc[k], v) {
					t.Errorf("%s=%q, want %q among them", k, svc[k], v)
				}
			}
			for _, k := range tt.not {
				if _, ok := svc[k]; ok {
					t.Errorf("%s is set: %q", k, svc[k])
				}
			}
			if !slices.Contains(u["Install"]["WantedBy"], "multi-user.target") {
				t.Errorf("WantedBy=%q, want multi-user.target", u["Install"]["WantedBy"])
			}
			// Every /etc/meridian file named is an example here.
			for _, values := range svc {
				for _, v := range values {
					for _, word := range strings.Fields(v) {
						word = strings.TrimPrefix(word, "-")
						if rest, ok := strings.CutPrefix(word, "/etc/meridian/"); ok {
							if _, err := os.Stat(path("deploy/systemd/" + rest)); err != nil {
								t.Errorf("%s names %s, but deploy/systemd/%s is missing", tt.unit, word, rest)
							}
						}
					}
				}
			}
		})
	}
}

// TestSystemdConfig runs "meridian check" on the example configuration
// with the environment file beside it, as the unit would start it; a
// small GeoIP database stands in for the one it names.
func TestSystemdConfig(t *testing.T) {
	env := readEnvFile(t, "deploy/systemd/meridian.env")
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "MERIDIAN_STORE_DATABASE=") }) {
		t.Errorf("meridian.env does not set MERIDIAN_STORE_DATABASE: %q", env)
	}
	checkConfig(t, "deploy/systemd/meridian.yaml", env, true)

	opts := readEnvFile(t, "deploy/systemd/meridian-checker.env")
	if len(opts) != 1 || !strings.HasPrefix(opts[0], "CHECKER_OPTS=") || !strings.Contains(opts[0], "--listen ") {
		t.Errorf("meridian-checker.env: %q, want CHECKER_OPTS with --listen", opts)
	}
}

// readEnvFile returns the KEY=VALUE lines of an environment file.
func readEnvFile(t *testing.T, rel string) []string {
	t.Helper()
	b, err := os.ReadFile(path(rel))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if !strings.Contains(line, "=") {
			t.Fatalf("%s: %q is not KEY=VALUE", rel, line)
		}
		env = append(env, line)
	}
	return env
}

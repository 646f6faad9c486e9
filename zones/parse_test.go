package zones

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// update rewrites golden files instead of comparing with them:
// go test ./zones -update.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// zoneFiles returns the zone files of dir in both formats.
func zoneFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.zone", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no zone files in %s", dir)
	}
	return files
}

// dump renders a zone for golden files: the origin, then one record per
// line with the line it came from.
func dump(z *Zone) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin\t%s\n", z.Origin)
	for _, r := range z.Records {
		fmt.Fprintf(&b, "%d\t%s\n", r.Line, r.RR.String())
	}
	return b.String()
}

// TestParseGolden loads each testdata zone and compares it, records and
// lines, with its .golden dump.
func TestParseGolden(t *testing.T) {
	for _, file := range zoneFiles(t, "testdata") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			z, err := Parse(data, file)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got := dump(z)
			golden := file + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./zones -update)", err)
			}
			if got != string(want) {
				t.Errorf("zone differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// expectRE matches the expected errors written at the top of a bad file:
// "; ERROR 7: message" (master files) or "# ERROR 7: message" (YAML), where
// 7 is the line the error must point at and 0 means the whole zone.
var expectRE = regexp.MustCompile(`(?m)^[;#] ERROR (\d+): (.*)$`)

// TestParseBad checks that each file of testdata/bad fails with exactly
// the errors it announces, each naming the file and the line.
func TestParseBad(t *testing.T) {
	for _, file := range zoneFiles(t, filepath.Join("testdata", "bad")) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, m := range expectRE.FindAllStringSubmatch(string(data), -1) {
				if line, _ := strconv.Atoi(m[1]); line > 0 {
					want = append(want, fmt.Sprintf("%s:%d: %s", file, line, m[2]))
				} else {
					want = append(want, fmt.Sprintf("%s: %s", file, m[2]))
				}
			}
			if len(want) == 0 {
				t.Fatal("no ERROR comment in the file")
			}
			_, err = Parse(data, file)
			if err == nil {
				t.Fatal("parse succeeded")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			if len(es) != len(want) {
				t.Errorf("%d errors, want %d:\n%v", len(es), len(want), err)
			}
			for i, w := range want {
				if i < len(es) && !strings.HasPrefix(es[i].Error(), w) {
					t.Errorf("error %d:\n got  %s\n want %s...", i, es[i], w)
				}
			}
		})
	}
}

// TestParseFormat checks the choice of format by extension.
func TestParseFormat(t *testing.T) {
	master := []byte("$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n")
	yamlZone := []byte("origin: example.com.\nsoa: {ns: ns, mbox: hm, serial: 1}\nrecords: [{name: '@', type: NS, data: ns}]\n")
	tests := []struct {
		source string
		data   []byte
		ok     bool
	}{
		{"a.zone", master, true},
		{"example.com", master, true},
		{"dir.yaml/a.db", master, true},
		{"a.yaml", yamlZone, true},
		{"a.YML", yamlZone, true},
		{"a.yaml", master, false},
		{"a.zone", yamlZone, false},
	}
	for _, tc := range tests {
		t.Run(tc.source, func(t *testing.T) {
			z, err := Parse(tc.data, tc.source)
			if (err == nil) != tc.ok {
				t.Fatalf("Parse: %v, want success %v", err, tc.ok)
			}
			if err == nil && (z.Origin != "example.com." || len(z.Records) != 2 || z.Source != tc.source) {
				t.Errorf("got %s", dump(z))
			}
			if err != nil && !strings.HasPrefix(err.Error(), tc.source+":") {
				t.Errorf("error %q does not name the source", err)
			}
		})
	}
}

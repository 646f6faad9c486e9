package update

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the boundaries of docs/architecture.md: the DNS
// server reaches updates through its Updater interface only, and this
// package knows neither the stores nor how the process is configured.
func TestImports(t *testing.T) {
	for _, c := range []struct {
		dir       string
		forbidden []string
	}{
		{"../dnsserver", []string{"/update"}},
		{".", []string{"/dnsserver", "/store", "/transfer", "/cmd/", "spf13/viper", "jackc/pgx"}},
	} {
		p, err := build.ImportDir(c.dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			for _, f := range c.forbidden {
				if strings.Contains(imp, f) {
					t.Errorf("%s imports %s", c.dir, imp)
				}
			}
		}
	}
}

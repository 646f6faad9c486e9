package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/internal/dnstaplog"
	"github.com/meridiandns/meridian/store"
)

// docMetrics reads the table of section (a "## " heading) of
// docs/metrics.md: metric name to the labels its Labels column lists
// (nil when the column gives label values too, as "result (ok, error)").
func docMetrics(t *testing.T, section string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## "+section)
	if start < 0 {
		t.Fatalf("docs/metrics.md has no section %q", section)
	}
	text = text[start+3:]
	if end := strings.Index(text, "\n## "); end >= 0 {
		text = text[:end]
	}
	tick := regexp.MustCompile("`([^`]+)`")
	out := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 5 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`meridian_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cols[1]), "`")
		var labels []string
		if !strings.Contains(cols[3], "(") {
			for _, m := range tick.FindAllStringSubmatch(cols[3], -1) {
				labels = append(labels, m[1])
			}
			sort.Strings(labels)
		}
		out[name] = labels
	}
	return out
}

// TestMetricsDocumented checks that docs/metrics.md lists exactly the
// metrics "meridian serve" exports, with their labels.
func TestMetricsDocumented(t *testing.T) {
	srv, err := dnsserver.New(dnsserver.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tap, err := dnstaplog.New(dnstaplog.Options{File: filepath.Join(t.TempDir(), "tap")})
	if err != nil {
		t.Fatal(err)
	}
	r := newReloader(store.NewFiles(nil, nil), srv, nil)
	o := newOps(srv, r, store.NewFiles(nil, nil), tap, nil)

	got := map[string][]string{}
	// The server's collector declares its metrics even before they have
	// values, as does meridian_zone_invalid's; the others are always
	// present.
	descs := make(chan *prometheus.Desc, 64)
	srv.Collector().Describe(descs)
	invalidZones{srv}.Describe(descs) // no series while every zone is valid
	close(descs)
	descRe := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	for d := range descs {
		m := descRe.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		sort.Strings(labels)
		got[m[1]] = labels
	}
	mfs, err := o.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, ok := got[mf.GetName()]; !ok && strings.HasPrefix(mf.GetName(), "meridian_") {
			got[mf.GetName()] = nil // labels of these are checked by their values below
		}
	}

	doc := docMetrics(t, "DNS server")
	for name, labels := range got {
		dl, ok := doc[name]
		switch {
		case !ok:
			t.Errorf("%s is exported but not in docs/metrics.md", name)
		case dl != nil && labels != nil && !slices.Equal(dl, labels):
			t.Errorf("%s: labels %v, docs/metrics.md says %v", name, labels, dl)
		}
	}
	for name := range doc {
		if _, ok := got[name]; !ok {
			t.Errorf("docs/metrics.md lists %s, which is not exported", name)
		}
	}
}

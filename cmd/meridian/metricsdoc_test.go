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
	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/secondary"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/transfer"
	"github.com/meridiandns/meridian/update"
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

	// The server's collector declares its metrics even before they have
	// values, as does meridian_zone_invalid's; the others are always
	// present.
	got := describedMetrics(t, srv.Collector(), invalidZones{srv}) // no zone_invalid series while every zone is valid
	mfs, err := o.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, ok := got[mf.GetName()]; !ok && strings.HasPrefix(mf.GetName(), "meridian_") {
			got[mf.GetName()] = nil // labels of these are checked by their values below
		}
	}

	compareDoc(t, docMetrics(t, "DNS server"), got)
}

// compareDoc reports the metrics exported (got) that doc does not list,
// with other labels, and those doc lists that are not exported.
func compareDoc(t *testing.T, doc, got map[string][]string) {
	t.Helper()
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

// describedMetrics returns the metrics the collectors describe, with
// their labels, after checking that a pedantic registry takes them.
func describedMetrics(t *testing.T, cs ...prometheus.Collector) map[string][]string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	descs := make(chan *prometheus.Desc, 64)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
		c.Describe(descs)
	}
	close(descs)
	if _, err := reg.Gather(); err != nil {
		t.Error(err)
	}
	descRe := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	got := map[string][]string{}
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
	return got
}

// TestOptionalMetricsDocumented checks the sections of docs/metrics.md
// for what "meridian serve" registers only when configured: each lists
// exactly the metrics of its part, with their labels.
func TestOptionalMetricsDocumented(t *testing.T) {
	xfr, err := transfer.New(transfer.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := secondary.New(secondary.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := update.New(update.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		section string
		c       prometheus.Collector
	}{
		{"Zone transfers", xfr},
		{"Secondary zones", sec},
		{"Dynamic updates", upd},
		{"Management API", mgmtapi.New(mgmtapi.Options{})},
	} {
		t.Run(tc.section, func(t *testing.T) {
			compareDoc(t, docMetrics(t, tc.section), describedMetrics(t, tc.c))
		})
	}
}

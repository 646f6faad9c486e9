package deploy

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestPromtool checks the alert rules and the scrape configuration, and
// runs the rules' unit tests (alerts_test.yml), with promtool.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "prometheus/alerts.yml"}},
		{"test rules", []string{"test", "rules", "prometheus/alerts_test.yml"}},
		{"check config", []string{"check", "config", "prometheus/prometheus.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, 2*time.Minute, path("deploy"), nil, promtool, tt.args...)
			if r.err != nil {
				t.Fatalf("promtool %s:\n%s", strings.Join(tt.args, " "), r)
			}
		})
	}
}

// alertRules is the part of a rules file the tests read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleTests is the part of a promtool test file the tests read.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestAlertsConvention checks what promtool does not: every alert has a
// known severity, a summary and a description, and is unit-tested both
// firing and not firing.
func TestAlertsConvention(t *testing.T) {
	var rules alertRules
	readYAML(t, "deploy/prometheus/alerts.yml", &rules)
	var tests ruleTests
	readYAML(t, "deploy/prometheus/alerts_test.yml", &tests)
	if !slices.Equal(tests.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests rule files %q, want [alerts.yml]", tests.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	seen := map[string]bool{}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			if !fires[r.Alert] {
				t.Errorf("alert %s: no test in alerts_test.yml expects it to fire", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s: no test in alerts_test.yml expects it not to fire", r.Alert)
			}
		}
	}
	for name := range fires {
		if !seen[name] {
			t.Errorf("alerts_test.yml tests alert %s, which alerts.yml does not define", name)
		}
	}
	// The alerts the operations issue asks for, by what they watch.
	for _, want := range []string{
		"meridian_pool_healthy_endpoints", "meridian_store_synced", "meridian_snapshot_version",
		`up{job="meridian-checker"}`, `meridian_checker_checkers{state="expired"}`, `up{job="meridian"}`,
		`rcode="SERVFAIL"`, "meridian_dns_panics_total", "meridian_pool_fail_open_total",
		`meridian_dnstap_messages_total{result="dropped"}`,
	} {
		found := false
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				found = found || (r.Alert != "" && strings.Contains(r.Expr, want))
			}
		}
		if !found {
			t.Errorf("no alert watches %s", want)
		}
	}
	if n < 10 {
		t.Errorf("alerts.yml defines %d alerts; the file was not read as expected", n)
	}
}

// documentedMetrics returns the metrics of docs/metrics.md by name, with
// their type.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path("docs/metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(meridian_[a-z0-9_]+)` \\| ([a-z]+)")
	metrics := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		metrics[m[1]] = m[2]
	}
	if len(metrics) < 20 {
		t.Fatalf("docs/metrics.md: found %d metrics in its tables; the format changed?", len(metrics))
	}
	return metrics
}

// TestMetricNamesDocumented keeps the deployment files on the contract:
// every meridian_* name in the alert rules, their tests, the scrape
// configuration and the dashboard is a metric of docs/metrics.md (a
// histogram's _bucket, _sum and _count series included).
func TestMetricNamesDocumented(t *testing.T) {
	metrics := documentedMetrics(t)
	name := regexp.MustCompile(`\bmeridian_[a-z0-9_]*[a-z0-9]\b`)
	files := []string{
		"deploy/prometheus/alerts.yml",
		"deploy/prometheus/alerts_test.yml",
		"deploy/prometheus/prometheus.yml",
		"deploy/grafana/meridian.json",
	}
	used := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(path(f))
		if err != nil {
			t.Fatal(err)
		}
		var unknown []string
		for _, m := range name.FindAllString(string(b), -1) {
			used[m] = true
			if !documented(metrics, m) && !slices.Contains(unknown, m) {
				unknown = append(unknown, m)
			}
		}
		sort.Strings(unknown)
		for _, m := range unknown {
			t.Errorf("%s: %s is not a metric of docs/metrics.md", f, m)
		}
	}
	if len(used) < 15 {
		t.Errorf("found only %d metric names in the deployment files", len(used))
	}
}

// documented reports whether series name m is a documented metric.
func documented(metrics map[string]string, m string) bool {
	if _, ok := metrics[m]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(m, suffix); ok && metrics[base] == "histogram" {
			return true
		}
	}
	return false
}

package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(path("deploy/grafana/meridian.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("meridian.json: %v", err)
	}
	return d
}

// allPanels returns the panels, those of collapsed rows included.
func (d dashboard) allPanels() []panel {
	var ps []panel
	for _, p := range d.Panels {
		ps = append(ps, p)
		ps = append(ps, p.Panels...)
	}
	return ps
}

// grafanaVar matches a variable reference in a query: $name, ${name} or
// ${name:format}.
var grafanaVar = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// grafanaBuiltins are the variables Grafana defines itself.
var grafanaBuiltins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

// TestDashboardStructure checks the dashboard as Grafana would load it:
// schema version, variables, panel ids and layout, and that every query
// goes to the data source variable and uses only defined variables.
func TestDashboardStructure(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for provisioning", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want 36 or newer (data source references by uid)", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		switch v.Type {
		case "datasource":
			if string(v.Query) != `"prometheus"` {
				t.Errorf("variable %s: data source type %s, want prometheus", v.Name, v.Query)
			}
		case "query":
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable %s: data source %+v, want ${datasource}", v.Name, v.Datasource)
			}
		}
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no variable datasource of type datasource: %v", vars)
	}
	for _, name := range []string{"job", "instance"} {
		if vars[name] != "query" {
			t.Errorf("no query variable %s: %v", name, vars)
		}
	}

	ids := map[int]string{}
	titles := map[string]bool{}
	var boxes []panel
	queries := 0
	for _, p := range d.allPanels() {
		if prev, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Title == "" || titles[p.Title] {
			t.Errorf("panel %d: title %q empty or not unique", p.ID, p.Title)
		}
		titles[p.Title] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range boxes {
			if overlap(p, q) {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q with refId %q: empty or repeated", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %s: data source %+v", p.Title, tg.RefID, tg.Datasource)
			}
			for _, m := range grafanaVar.FindAllStringSubmatch(tg.Expr, -1) {
				if _, ok := vars[m[1]]; !ok && grafanaBuiltins[m[1]] == "" {
					t.Errorf("panel %q: query %s uses $%s, which is not a variable", p.Title, tg.RefID, m[1])
				}
			}
		}
	}
	if queries < 30 {
		t.Errorf("only %d queries found", queries)
	}
}

func overlap(a, b panel) bool {
	ga, gb := a.GridPos, b.GridPos
	return ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H
}

// TestDashboardQueries parses every query of the dashboard with promtool,
// as recording rules with the variables filled in, so that a PromQL
// mistake fails here rather than as an empty panel.
func TestDashboardQueries(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	d := readDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			expr := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(v string) string {
				name := grafanaVar.FindStringSubmatch(v)[1]
				if d, ok := grafanaBuiltins[name]; ok {
					return d
				}
				return "x" // variables appear only in label matchers
			})
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d_%s", p.ID, tg.RefID), Expr: expr})
		}
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, time.Minute, root, nil, promtool, "check", "rules", f); r.err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries (record dashboard:panel_ID_REFID):\n%s", r)
	}
}

// TestGrafanaProvisioning checks that the provisioning files load the
// dashboard from where docker-compose.yml mounts it.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Type, URL, UID string
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("datasources: %+v, want one of type prometheus", ds)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/meridian.yml", &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path == "" {
		t.Errorf("dashboard providers: %+v, want one of type file with a path", dp)
	}
}

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

// baseYAML is the zone most apply tests start from: 9 static records and
// a pool of 4 endpoints in 2 datacenters.
const baseYAML = `origin: example.org.
ttl: 3600
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: [ns1, ns2]}
  - {name: ns1, type: A, data: 192.0.2.1}
  - {name: ns2, type: A, data: 192.0.2.2}
  - {name: "@", type: MX, data: 10 mail}
  - {name: mail, type: A, data: 192.0.2.25}
  - {name: static, type: A, ttl: 300, data: [192.0.2.100, 192.0.2.101]}
  - {name: "@", type: TXT, data: '"v=spf1 -all"'}
datacenters:
  - {name: us-east, lat: 39, lon: -77.5, country: US, continent: NA}
  - {name: eu-west, lat: 51.5, lon: -0.1, country: GB, continent: EU}
pools:
  - name: www
    max_answers: 4
    endpoints:
      - {address: 192.0.2.11, datacenter: us-east}
      - {address: 192.0.2.12, datacenter: us-east}
      - {address: 192.0.2.13, datacenter: eu-west}
      - {address: 192.0.2.14, datacenter: eu-west}
`

// otherYAML is a second, small zone.
const otherYAML = `origin: example.info.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: "@", type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
`

// applyDB returns a connection to a fresh database with the schema.
func applyDB(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// yamlZone parses and validates a YAML zone.
func yamlZone(t *testing.T, text string) *zones.Zone {
	t.Helper()
	z, err := zones.Parse([]byte(text), "test.yaml")
	if err != nil {
		t.Fatalf("test zone: %v", err)
	}
	return z
}

// edit returns text with old replaced by new, failing when old is absent.
func edit(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("edit: %q not in the zone text", old)
	}
	return strings.Replace(text, old, new, 1)
}

func exampleZones(t *testing.T) []*zones.Zone {
	t.Helper()
	var zs []*zones.Zone
	for _, f := range []string{"example.com.zone", "example.net.yaml"} {
		path := filepath.Join("..", "..", "examples", f)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		z, err := zones.Parse(data, path)
		if err != nil {
			t.Fatal(err)
		}
		zs = append(zs, z)
	}
	return zs
}

func mustApply(t *testing.T, conn *pgx.Conn, zs []*zones.Zone, opts postgres.ApplyOptions) *postgres.Diff {
	t.Helper()
	d, err := postgres.Apply(context.Background(), conn, zs, opts)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return d
}

func dataVersion(t *testing.T, conn *pgx.Conn) int64 {
	t.Helper()
	var v int64
	if err := conn.QueryRow(context.Background(), "SELECT version FROM meridian_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// dbDump reads every zone back with ReadZones and dumps it.
func dbDump(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	byID, err := postgres.ReadZones(context.Background(), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var zs []*zones.Zone
	for _, z := range byID {
		zs = append(zs, z)
	}
	return dump(zs...)
}

// dump renders zones as sorted lines, leaving out what does not survive a
// trip through the database (lines, sources, record order).
func dump(zs ...*zones.Zone) []string {
	var out []string
	for _, z := range zs {
		o := z.Origin
		for _, r := range z.Records {
			h := r.RR.Header()
			out = append(out, fmt.Sprintf("%s rr %s %d %d %s", o, zones.CanonicalName(h.Name), h.Ttl, h.Rrtype, postgres.RData(r.RR)))
		}
		for _, dc := range z.Datacenters {
			out = append(out, fmt.Sprintf("%s dc %s %g %g %s %s", o, dc.Name, dc.Lat, dc.Lon, dc.Country, dc.Continent))
		}
		for _, p := range z.Pools {
			out = append(out, fmt.Sprintf("%s pool %s %d %d %s %v %d %v %d %s %v %+v", o, p.Name, p.TTL, p.MaxAnswers, p.Geo,
				p.Sticky, p.Spill, p.UnknownIsUp, p.WhenAllDown, p.FallbackTo, p.Bias, rulesOf(p)))
			for _, e := range p.Endpoints {
				out = append(out, fmt.Sprintf("%s ep %s %s %s %d %s %s", o, p.Name, e.Addr, e.Datacenter, e.Weight, e.Admin, e.Health))
			}
		}
	}
	slices.Sort(out)
	return out
}

func rulesOf(p zones.Pool) []string {
	var out []string
	for _, r := range p.Rules {
		out = append(out, fmt.Sprint(r.CIDRs, r.Countries, r.Continents, r.Datacenters))
	}
	return out
}

func sameDump(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("%s: missing %s", what, l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("%s: unexpected %s", what, l)
		}
	}
}

func endpointID(t *testing.T, conn *pgx.Conn, addr string) int64 {
	t.Helper()
	var id int64
	if err := conn.QueryRow(context.Background(), "SELECT id FROM endpoints WHERE address = $1", addr).Scan(&id); err != nil {
		t.Fatalf("endpoint %s: %v", addr, err)
	}
	return id
}

// TestApplyExamples applies the example zones to an empty database, reads
// them back, and applies them again, which must change nothing.
func TestApplyExamples(t *testing.T) {
	conn := applyDB(t)
	zs := exampleZones(t)
	d := mustApply(t, conn, zs, postgres.ApplyOptions{})
	// One transaction: one version, taken from the clock (migration 007).
	if !d.Applied || d.Version == 0 || dataVersion(t, conn) != d.Version {
		t.Errorf("first apply: applied %v, version %d, database version %d; want one new version", d.Applied, d.Version, dataVersion(t, conn))
	}
	added, removed, changed := d.Counts()
	if added != 2+52+9+6+1+18 || removed != 0 || changed != 0 {
		t.Errorf("first apply counts %d/%d/%d, want 88 added:\n%s", added, removed, changed, d)
	}
	for _, line := range []string{
		"+ zone example.com.\n+ example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024060101 7200 3600 1209600 300\n",
		"+ www.example.com. 3600 IN A 192.0.2.10\n",
		"+ datacenter eu-west (51.5074, -0.1278, GB, EU)\n",
		"+ pool www.example.net. (ttl 30, max_answers 4, geo nearest, sticky false, spill 2, unknown_is_up true, when_all_down fail_open, quorum majority)\n",
		"+ endpoint www.example.net. 198.51.100.42 (eu-central, admin drain)\n",
		"+ endpoint www.example.net. 198.51.100.52 (ap-southeast, health down)\n",
		"88 added, 0 removed, 0 changed\n",
	} {
		if !strings.Contains(d.String(), line) {
			t.Errorf("diff lacks %q:\n%s", line, d)
		}
	}
	sameDump(t, "read back", dbDump(t, conn), dump(zs...))

	again := mustApply(t, conn, exampleZones(t), postgres.ApplyOptions{})
	if !again.Empty() || again.Applied || again.Version != d.Version || dataVersion(t, conn) != d.Version {
		t.Errorf("second apply: %s applied %v, version %d (database %d), want no change at version %d", again, again.Applied, again.Version, dataVersion(t, conn), d.Version)
	}
	if again.String() != "no changes\n" {
		t.Errorf("empty diff renders as %q", again.String())
	}
}

// TestApplyChanges applies one kind of change at a time to the base zone
// and checks the diff, the database and the version.
func TestApplyChanges(t *testing.T) {
	conn := applyDB(t)
	tests := []struct {
		name     string
		old, new string // edit of baseYAML
		diff     string // the exact diff
		audit    bool   // an admin change, logged
	}{
		{"record added",
			"  - {name: mail, type: A, data: 192.0.2.25}\n",
			"  - {name: mail, type: A, data: 192.0.2.25}\n  - {name: new, type: AAAA, data: '2001:db8::1'}\n",
			"~ zone example.org.\n+ new.example.org. 3600 IN AAAA 2001:db8::1\n", false},
		{"record removed",
			"  - {name: \"@\", type: TXT, data: '\"v=spf1 -all\"'}\n", "",
			"~ zone example.org.\n- example.org. 3600 IN TXT \"v=spf1 -all\"\n", false},
		{"record data changed",
			"data: 192.0.2.25}", "data: 192.0.2.26}",
			"~ zone example.org.\n- mail.example.org. 3600 IN A 192.0.2.25\n+ mail.example.org. 3600 IN A 192.0.2.26\n", false},
		{"RRset TTL",
			"ttl: 300, data: [192.0.2.100", "ttl: 60, data: [192.0.2.100",
			"~ zone example.org.\n~ static.example.org. A ttl 300 -> 60\n", false},
		{"datacenter added",
			"datacenters:\n", "datacenters:\n  - {name: ap-south, lat: 19.1, lon: 72.9}\n",
			"~ zone example.org.\n+ datacenter ap-south (19.1, 72.9)\n", false},
		{"datacenter moved",
			"lat: 51.5, lon: -0.1, country: GB", "lat: 53.3, lon: -6.3, country: IE",
			"~ zone example.org.\n~ datacenter eu-west: lat 51.5 -> 53.3\n~ datacenter eu-west: lon -0.1 -> -6.3\n~ datacenter eu-west: country GB -> IE\n", false},
		{"pool setting",
			"max_answers: 4\n", "max_answers: 2\n    when_all_down: empty\n    bias: {eu-west: -300}\n",
			"~ zone example.org.\n~ pool www.example.org.: max_answers 4 -> 2\n~ pool www.example.org.: when_all_down fail_open -> empty\n~ pool www.example.org.: bias {} -> {\"eu-west\":-300}\n", false},
		{"pool rules",
			"max_answers: 4\n", "max_answers: 4\n    geo: rules\n    rules:\n      - {country: [DE], datacenters: [eu-west]}\n",
			"~ zone example.org.\n~ pool www.example.org.: geo nearest -> rules\n~ pool www.example.org.: rules [] -> [{\"country\":[\"DE\"],\"datacenters\":[\"eu-west\"]}]\n", false},
		{"endpoint added",
			"      - {address: 192.0.2.14, datacenter: eu-west}\n",
			"      - {address: 192.0.2.14, datacenter: eu-west}\n      - {address: 192.0.2.19, datacenter: eu-west, weight: 50}\n",
			"~ zone example.org.\n+ endpoint www.example.org. 192.0.2.19 (eu-west, weight 50)\n", false},
		{"endpoint removed",
			"      - {address: 192.0.2.14, datacenter: eu-west}\n", "",
			"~ zone example.org.\n- endpoint www.example.org. 192.0.2.14 (eu-west)\n", false},
		{"endpoint weight and datacenter",
			"{address: 192.0.2.11, datacenter: us-east}", "{address: 192.0.2.11, datacenter: eu-west, weight: 50}",
			"~ zone example.org.\n~ endpoint www.example.org. 192.0.2.11: datacenter us-east -> eu-west\n~ endpoint www.example.org. 192.0.2.11: weight 100 -> 50\n", false},
		{"endpoint admin",
			"{address: 192.0.2.12, datacenter: us-east}", "{address: 192.0.2.12, datacenter: us-east, admin: drain}",
			"~ zone example.org.\n~ endpoint www.example.org. 192.0.2.12: admin active -> drain\n", true},
		{"endpoint health from the file",
			"{address: 192.0.2.13, datacenter: eu-west}", "{address: 192.0.2.13, datacenter: eu-west, health: down}",
			"~ zone example.org.\n~ endpoint www.example.org. 192.0.2.13: health unknown -> down\n", false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := yamlZone(t, baseYAML)
			mustApply(t, conn, []*zones.Zone{base}, postgres.ApplyOptions{Force: true})
			// Reset what the base file leaves alone: health, the log.
			if _, err := conn.Exec(ctx, "UPDATE endpoint_health SET state = 'unknown' WHERE state <> 'unknown'"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "DELETE FROM admin_audit"); err != nil {
				t.Fatal(err)
			}
			ids := map[string]int64{}
			for _, a := range []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"} {
				ids[a] = endpointID(t, conn, a)
			}
			v := dataVersion(t, conn)

			z := yamlZone(t, edit(t, baseYAML, tt.old, tt.new))
			d := mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{})
			a, r, c := d.Counts()
			want := tt.diff + fmt.Sprintf("%d added, %d removed, %d changed\n", a, r, c)
			if d.String() != want {
				t.Errorf("diff:\n%s\nwant:\n%s", d, want)
			}
			if a+r+c != strings.Count(tt.diff, "\n")-1 {
				t.Errorf("counts %d/%d/%d do not match the %d lines of the diff", a, r, c, strings.Count(tt.diff, "\n")-1)
			}
			if !d.Applied || d.Version <= v || dataVersion(t, conn) != d.Version {
				t.Errorf("version %d (database %d) after %d, want a later one", d.Version, dataVersion(t, conn), v)
			}
			sameDump(t, "database", dbDump(t, conn), dump(z))
			for a, id := range ids {
				if tt.name != "endpoint removed" && endpointID(t, conn, a) != id {
					t.Errorf("endpoint %s changed id", a)
				}
			}
			log, err := postgres.AuditLog(ctx, conn, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tt.audit != (len(log) == 1) {
				t.Errorf("audit log %+v, want an entry: %v", log, tt.audit)
			}
			if again := mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{}); !again.Empty() {
				t.Errorf("applying the same zone again: %s", again)
			}
		})
	}
}

// TestApplyKeepsHealth checks that applying never resets a checker's
// verdict: only new endpoints and explicit up/down in a file write health.
func TestApplyKeepsHealth(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{})
	if _, err := conn.Exec(ctx, "UPDATE endpoint_health SET state = 'up', reason = 'checker'"); err != nil {
		t.Fatal(err)
	}
	z := yamlZone(t, edit(t, baseYAML, "{address: 192.0.2.11, datacenter: us-east}", "{address: 192.0.2.11, datacenter: us-east, weight: 7}"))
	mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{})
	es, err := postgres.ListEndpoints(ctx, conn, "www.example.org.")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Health != zones.HealthUp || e.HealthReason != "checker" {
			t.Errorf("endpoint %s: health %s (%s) after apply, want the checker's up", e.Addr, e.Health, e.HealthReason)
		}
	}
	// An explicit state in the file does override it.
	z = yamlZone(t, edit(t, baseYAML, "{address: 192.0.2.11, datacenter: us-east}", "{address: 192.0.2.11, datacenter: us-east, health: down}"))
	d := mustApply(t, conn, []*zones.Zone{z}, postgres.ApplyOptions{})
	if !strings.Contains(d.String(), "192.0.2.11: health up -> down") {
		t.Errorf("diff:\n%s", d)
	}
}

// TestApplyKeepsOperatorDrain checks that files, which mostly leave admin
// state at its default, do not undo an operator's drain unnoticed.
func TestApplyKeepsOperatorDrain(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	base := []*zones.Zone{yamlZone(t, baseYAML)}
	mustApply(t, conn, base, postgres.ApplyOptions{})
	addr := netip.MustParseAddr("192.0.2.11")
	if _, err := postgres.SetAdmin(ctx, conn, "www.example.org.", addr, zones.AdminDrain, "kernel upgrade", "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Apply(ctx, conn, base, postgres.ApplyOptions{})
	var refused *postgres.RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), `undoing an operator's drain ("kernel upgrade")`) {
		t.Fatalf("apply over an operator's drain: %v, want a refusal", err)
	}
	es, err := postgres.ListEndpoints(ctx, conn, "www.example.org.")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Addr == addr && e.Admin != zones.AdminDrain {
			t.Errorf("refused apply changed the drain to %s", e.Admin)
		}
	}
	// Forced, the files win.
	if _, err := postgres.Apply(ctx, conn, base, postgres.ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

// TestApplyDryRun checks that a dry run reports the diff and changes
// nothing.
func TestApplyDryRun(t *testing.T) {
	conn := applyDB(t)
	mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{})
	before, v := dbDump(t, conn), dataVersion(t, conn)
	changed := edit(t, edit(t, baseYAML, "max_answers: 4", "max_answers: 3"), "data: 192.0.2.25", "data: 192.0.2.26")
	zs := []*zones.Zone{yamlZone(t, changed), yamlZone(t, otherYAML)}
	d := mustApply(t, conn, zs, postgres.ApplyOptions{DryRun: true})
	if d.Applied || d.Version != v {
		t.Errorf("dry run: applied %v, version %d, want %d", d.Applied, d.Version, v)
	}
	for _, line := range []string{"+ zone example.info.\n", "~ pool www.example.org.: max_answers 4 -> 3\n", "+ mail.example.org. 3600 IN A 192.0.2.26\n"} {
		if !strings.Contains(d.String(), line) {
			t.Errorf("dry-run diff lacks %q:\n%s", line, d)
		}
	}
	if dataVersion(t, conn) != v {
		t.Errorf("dry run bumped the version to %d", dataVersion(t, conn))
	}
	sameDump(t, "after the dry run", dbDump(t, conn), before)
	// The same diff, applied for real.
	if real := mustApply(t, conn, zs, postgres.ApplyOptions{}); real.String() != d.String() {
		t.Errorf("applied diff:\n%s\ndiffers from the dry run:\n%s", real, d)
	}
}

// TestApplyGuards checks that large deletions and emptied pools are
// refused, changing nothing, and applied with Force.
func TestApplyGuards(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	noPool := baseYAML[:strings.Index(baseYAML, "pools:")]
	// Only the SOA and one NS record left: 8 of 10 records deleted, and
	// the 4 endpoints kept.
	fewRecords := baseYAML[:strings.Index(baseYAML, "records:")] + "records:\n  - {name: \"@\", type: NS, data: ns1}\n" +
		baseYAML[strings.Index(baseYAML, "datacenters:"):]
	drainEast := strings.ReplaceAll(baseYAML, "datacenter: us-east}", "datacenter: us-east, admin: drain}")
	drainAll := strings.ReplaceAll(drainEast, "datacenter: eu-west}", "datacenter: eu-west, admin: disabled}")
	tests := []struct {
		name   string
		zones  []string // to apply
		opts   postgres.ApplyOptions
		refuse string   // what the refusal says; "" when allowed
		after  []string // the zones in the database after applying, when not zones
	}{
		{"most records deleted", []string{fewRecords}, postgres.ApplyOptions{},
			"zone example.org.: deletes 8 of 14 records and endpoints (57%, more than the 50% allowed)", nil},
		{"deleting within a raised share", []string{fewRecords}, postgres.ApplyOptions{MaxDeleteShare: 0.9}, "", nil},
		{"pool deleted", []string{noPool}, postgres.ApplyOptions{}, "zone example.org.: deletes pool www.example.org. (4 endpoints)", nil},
		{"some endpoints drained", []string{drainEast}, postgres.ApplyOptions{}, "", nil},
		{"every endpoint drained or disabled", []string{drainAll}, postgres.ApplyOptions{},
			"zone example.org.: leaves pool www.example.org. without an active endpoint (it has 4)", nil},
		{"zone pruned", []string{otherYAML}, postgres.ApplyOptions{Prune: true}, "zone example.org.: deletes the whole zone (14 records and endpoints)", nil},
		{"zone left alone without prune", []string{otherYAML}, postgres.ApplyOptions{}, "", []string{baseYAML, otherYAML}},
		{"everything pruned", nil, postgres.ApplyOptions{Prune: true}, "zone example.org.: deletes the whole zone", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{Force: true, Prune: true})
			before, v := dbDump(t, conn), dataVersion(t, conn)
			var zs []*zones.Zone
			for _, text := range tt.zones {
				zs = append(zs, yamlZone(t, text))
			}
			want := dump(zs...)
			if tt.after != nil {
				var after []*zones.Zone
				for _, text := range tt.after {
					after = append(after, yamlZone(t, text))
				}
				want = dump(after...)
			}
			d, err := postgres.Apply(ctx, conn, zs, tt.opts)
			if tt.refuse == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				sameDump(t, "database", dbDump(t, conn), want)
				return
			}
			var re *postgres.RefusedError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.refuse) || !strings.Contains(err.Error(), "force") {
				t.Fatalf("error %v, want a refusal saying %q and how to force it", err, tt.refuse)
			}
			if d == nil || d.Empty() || d.Applied {
				t.Errorf("refusal came without the diff: %v", d)
			}
			if dataVersion(t, conn) != v {
				t.Errorf("refused apply bumped the version")
			}
			sameDump(t, "after the refusal", dbDump(t, conn), before)

			opts := tt.opts
			opts.Force = true
			d = mustApply(t, conn, zs, opts)
			if !d.Applied {
				t.Errorf("forced apply not applied")
			}
			sameDump(t, "after forcing", dbDump(t, conn), want)
		})
	}
}

// TestApplyInvalid checks that invalid zones are rejected with nothing
// changed.
func TestApplyInvalid(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	// ParseYAML does not validate, so Apply sees the bad zone.
	unvalidated := func(text string) *zones.Zone {
		z, err := zones.ParseYAML([]byte(text), "bad.yaml")
		if err != nil {
			t.Fatalf("test zone: %v", err)
		}
		return z
	}
	tests := []struct {
		name string
		zs   func() []*zones.Zone
		want string
	}{
		{"CNAME beside data", func() []*zones.Zone {
			return []*zones.Zone{unvalidated(edit(t, baseYAML, "records:\n", "records:\n  - {name: mail, type: CNAME, data: www}\n"))}
		}, "CNAME and other data at mail.example.org."},
		{"unknown datacenter", func() []*zones.Zone {
			return []*zones.Zone{unvalidated(edit(t, baseYAML, "192.0.2.14, datacenter: eu-west", "192.0.2.14, datacenter: mars"))}
		}, `unknown datacenter "mars"`},
		{"no SOA", func() []*zones.Zone {
			return []*zones.Zone{unvalidated(edit(t, baseYAML, "soa: {ns: ns1, mbox: hostmaster, serial: 1}\n", ""))}
		}, "has no SOA record"},
		{"zone twice", func() []*zones.Zone {
			return []*zones.Zone{yamlZone(t, baseYAML), yamlZone(t, baseYAML)}
		}, "defined twice"},
		{"TTL beyond the schema", func() []*zones.Zone {
			return []*zones.Zone{yamlZone(t, edit(t, baseYAML, "ttl: 300, data: [192.0.2.100", "ttl: 3000000000, data: [192.0.2.100"))}
		}, "TTL 3000000000 is above 2147483647"},
	}
	mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{})
	before, v := dbDump(t, conn), dataVersion(t, conn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The valid zone beside the bad one is not applied either.
			zs := append(tt.zs(), yamlZone(t, otherYAML))
			d, err := postgres.Apply(ctx, conn, zs, postgres.ApplyOptions{Force: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if d != nil {
				t.Errorf("a diff for invalid input: %s", d)
			}
			if dataVersion(t, conn) != v {
				t.Error("invalid input bumped the version")
			}
			sameDump(t, "after invalid input", dbDump(t, conn), before)
		})
	}
}

// TestApplyExportRoundTrip exports the applied examples in the YAML
// format and applies the export: nothing may change.
func TestApplyExportRoundTrip(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	mustApply(t, conn, exampleZones(t), postgres.ApplyOptions{})
	byID, err := postgres.ReadZones(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	var zs []*zones.Zone
	for _, z := range byID {
		data, err := zones.FormatYAML(z)
		if err != nil {
			t.Fatal(err)
		}
		back, err := zones.Parse(data, z.Origin+"yaml")
		if err != nil {
			t.Fatalf("export of %s does not parse: %v\n%s", z.Origin, err, data)
		}
		zs = append(zs, back)
	}
	if d := mustApply(t, conn, zs, postgres.ApplyOptions{Prune: true}); !d.Empty() {
		t.Errorf("applying the export changed:\n%s", d)
	}
}

// TestSetAdmin drains and enables an endpoint and checks the audit log,
// the version bump and the errors.
func TestSetAdmin(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	mustApply(t, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{})
	addr := netip.MustParseAddr("192.0.2.12")
	v := dataVersion(t, conn)
	old, err := postgres.SetAdmin(ctx, conn, "WWW.example.org", addr, zones.AdminDrain, "kernel upgrade", "alice")
	if err != nil || old != zones.AdminActive {
		t.Fatalf("drain: %v, %v", old, err)
	}
	vd := dataVersion(t, conn)
	if vd <= v {
		t.Errorf("drain: version %d after %d, want a later one so that servers learn it", vd, v)
	}
	es, err := postgres.ListEndpoints(ctx, conn, "www.example.org.")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Addr == addr && (e.Admin != zones.AdminDrain || e.AdminReason != "kernel upgrade" || e.Eligible) {
			t.Errorf("drained endpoint listed as %+v", e)
		}
	}
	log, err := postgres.AuditLog(ctx, conn, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := postgres.AuditEntry{Actor: "alice", Zone: "example.org.", Pool: "www.example.org.", Addr: addr, Old: "active", New: "drain", Reason: "kernel upgrade"}
	if len(log) != 1 || log[0].At.IsZero() {
		t.Fatalf("audit log %+v", log)
	}
	got := log[0]
	got.ID, got.At = 0, want.At
	if got != want {
		t.Errorf("audit entry %+v, want %+v", got, want)
	}
	// Draining again changes nothing but is logged.
	if _, err := postgres.SetAdmin(ctx, conn, "www.example.org.", addr, zones.AdminDrain, "kernel upgrade", "bob"); err != nil {
		t.Fatal(err)
	}
	if dataVersion(t, conn) != vd {
		t.Error("setting the same state bumped the version")
	}
	old, err = postgres.SetAdmin(ctx, conn, "www.example.org.", addr, zones.AdminActive, "", "alice")
	if err != nil || old != zones.AdminDrain {
		t.Fatalf("enable: %v, %v", old, err)
	}
	if log, _ := postgres.AuditLog(ctx, conn, 0); len(log) != 3 || log[0].New != "active" || log[1].Actor != "bob" {
		t.Errorf("audit log after three changes, newest first: %+v", log)
	}

	v = dataVersion(t, conn)
	errs := []struct {
		name   string
		pool   string
		addr   string
		state  zones.AdminState
		reason string
		is     error
		want   string
	}{
		{"unknown pool", "nope.example.org.", "192.0.2.12", zones.AdminDrain, "x", postgres.ErrUnknownPool, "no pool nope.example.org."},
		{"unknown endpoint", "www.example.org.", "192.0.2.99", zones.AdminDrain, "x", postgres.ErrUnknownEndpoint, "pool www.example.org. has no endpoint 192.0.2.99"},
		{"drain without reason", "www.example.org.", "192.0.2.12", zones.AdminDrain, " ", nil, "give a reason"},
		{"disable without reason", "www.example.org.", "192.0.2.12", zones.AdminDisabled, "", nil, "give a reason"},
	}
	for _, tt := range errs {
		_, err := postgres.SetAdmin(ctx, conn, tt.pool, netip.MustParseAddr(tt.addr), tt.state, tt.reason, "alice")
		if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if dataVersion(t, conn) != v {
		t.Error("a refused admin change bumped the version")
	}
}

// TestListings checks the counts and states the CLI shows.
func TestListings(t *testing.T) {
	conn := applyDB(t)
	ctx := context.Background()
	mustApply(t, conn, exampleZones(t), postgres.ApplyOptions{})
	zs, err := postgres.ListZones(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	want := []postgres.ZoneInfo{
		{Origin: "example.com.", Serial: 2024060101, Records: 52},
		{Origin: "example.net.", Serial: 2024060101, Records: 9, Datacenters: 6, Pools: 1, Endpoints: 18},
	}
	if !slices.Equal(zs, want) {
		t.Errorf("zones %+v, want %+v", zs, want)
	}
	ps, err := postgres.ListPools(ctx, conn, "example.net")
	if err != nil {
		t.Fatal(err)
	}
	// 18 endpoints: one drained, one down; unknown counts as up.
	wantPool := postgres.PoolInfo{Zone: "example.net.", Name: "www.example.net.", TTL: 30, MaxAnswers: 4, Geo: "nearest",
		WhenAllDown: "fail_open", UnknownIsUp: true, Endpoints: 18, Active: 17, Up: 0, Down: 1, Eligible: 16}
	if len(ps) != 1 || ps[0] != wantPool {
		t.Errorf("pools %+v, want %+v", ps, wantPool)
	}
	if ps, err := postgres.ListPools(ctx, conn, "example.com."); err != nil || len(ps) != 0 {
		t.Errorf("pools of a zone without: %v, %v", ps, err)
	}
	if _, err := postgres.ListPools(ctx, conn, "nope.example."); !errors.Is(err, postgres.ErrUnknownZone) {
		t.Errorf("pools of an unknown zone: %v", err)
	}
	es, err := postgres.ListEndpoints(ctx, conn, "")
	if err != nil || len(es) != 18 {
		t.Fatalf("%d endpoints, %v", len(es), err)
	}
	if e := es[0]; e.Addr.String() != "198.51.100.11" || e.Datacenter != "us-east" || e.Weight != 100 || !e.Eligible || e.HealthUpdated.IsZero() {
		t.Errorf("first endpoint %+v", e)
	}
	if _, err := postgres.ListEndpoints(ctx, conn, "nope.example.net."); !errors.Is(err, postgres.ErrUnknownPool) {
		t.Errorf("endpoints of an unknown pool: %v", err)
	}
}

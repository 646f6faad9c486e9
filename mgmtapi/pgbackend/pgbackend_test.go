package pgbackend_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/mgmtapi/pgbackend"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a management API on a real PostgreSQL database, with a
// token per scope.
type fixture struct {
	t      *testing.T
	api    *mgmtapi.API
	db     *pgxpool.Pool
	url    string
	tokens map[string]string // by scope
}

func newFixture(t *testing.T, opts mgmtapi.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	db, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	b, err := pgbackend.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	opts.Backend = b
	api := mgmtapi.New(opts)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, api: api, db: db, url: srv.URL + mgmtapi.Prefix, tokens: map[string]string{}}
	for _, scope := range []string{"admin", "read", "zone:example.com.", "zone:other.example."} {
		tok, _, err := postgres.CreateAPIToken(ctx, db, strings.TrimSuffix(strings.ReplaceAll(scope, ":", "-"), "."), []string{scope})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[scope] = tok
	}
	return f
}

// reply is an answer, its body decoded as JSON.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	list   []any
	raw    string
}

// do sends a request as the token of scope ("" for none) with headers
// given as "Name: value".
func (f *fixture) do(method, path, scope, body string, headers ...string) reply {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if scope != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[scope])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && raw[0] == '{' {
		json.Unmarshal(raw, &r.body)
	} else if len(raw) > 0 && raw[0] == '[' {
		json.Unmarshal(raw, &r.list)
	}
	return r
}

// want fails unless r has status; it returns r.
func (f *fixture) want(r reply, status int, what string) reply {
	f.t.Helper()
	if r.status != status {
		f.t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.raw)
	}
	return r
}

func (f *fixture) version() int64 {
	var v int64
	if err := f.db.QueryRow(context.Background(), "SELECT version FROM meridian_version").Scan(&v); err != nil {
		f.t.Fatal(err)
	}
	return v
}

// fields lists the field names of a problem's errors.
func fields(r reply) []string {
	var out []string
	errs, _ := r.body["errors"].([]any)
	for _, e := range errs {
		out = append(out, fmt.Sprint(e.(map[string]any)["field"]))
	}
	return out
}

const zoneJSON = `{
  "name": "example.com.",
  "rrsets": [
    {"name": "example.com.", "type": "SOA", "ttl": 3600, "records": ["ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"]},
    {"name": "example.com.", "type": "NS", "ttl": 3600, "records": ["ns1.example.com."]},
    {"name": "ns1.example.com.", "type": "A", "ttl": 3600, "records": ["192.0.2.53"]},
    {"name": "www.example.com.", "type": "A", "ttl": 300, "records": ["192.0.2.1", "192.0.2.2"]}
  ],
  "datacenters": [
    {"name": "lon", "latitude": 51.5, "longitude": -0.12, "country": "GB", "continent": "EU"},
    {"name": "fra", "latitude": 50.1, "longitude": 8.68, "country": "DE", "continent": "EU"}
  ],
  "pools": [
    {"name": "app.example.com.", "ttl": 30, "endpoints": [
      {"address": "198.51.100.1", "datacenter": "lon"},
      {"address": "198.51.100.2", "datacenter": "fra"},
      {"address": "198.51.100.3", "datacenter": "fra"}
    ]}
  ]
}`

func (f *fixture) createZone() {
	f.t.Helper()
	r := f.want(f.do("PUT", "/zones/example.com.", "admin", zoneJSON, "If-None-Match: *"), 201, "create zone")
	if r.header.Get("ETag") == "" || r.body["applied"] != true {
		f.t.Fatalf("create zone: %v %s", r.header, r.raw)
	}
}

func TestZoneLifecycle(t *testing.T) {
	f := newFixture(t, mgmtapi.Options{})
	f.createZone()
	// Creating it again with If-None-Match: * fails: it exists.
	f.want(f.do("PUT", "/zones/example.com.", "admin", zoneJSON, "If-None-Match: *"), 412, "create twice")

	// What GET answers is what was written, with the ETag of the PUT.
	g := f.want(f.do("GET", "/zones/example.com", "read", ""), 200, "get zone")
	var z mgmtapi.Zone
	if err := json.Unmarshal([]byte(g.raw), &z); err != nil {
		t.Fatal(err)
	}
	if len(z.RRsets) != 4 || len(z.Pools) != 1 || len(z.Pools[0].Endpoints) != 3 || *z.Pools[0].MaxAnswers != 4 {
		t.Errorf("zone read back: %+v", z)
	}
	// 304 for a matching If-None-Match.
	f.want(f.do("GET", "/zones/example.com.", "read", "", "If-None-Match: "+g.header.Get("ETag")), 304, "conditional get")

	// An RRset: replacing it needs If-Match with the current ETag.
	www := f.want(f.do("GET", "/zones/example.com./rrsets/www/A", "zone:example.com.", ""), 200, "get rrset")
	put := `{"ttl": 60, "records": ["192.0.2.7"]}`
	f.want(f.do("PUT", "/zones/example.com./rrsets/www/A", "zone:example.com.", put), 428, "replace without If-Match")
	f.want(f.do("PUT", "/zones/example.com./rrsets/www/A", "zone:example.com.", put, `If-Match: "stale"`), 412, "replace with a stale ETag")
	before := f.version()
	r := f.want(f.do("PUT", "/zones/example.com./rrsets/www/A", "zone:example.com.", put, "If-Match: "+www.header.Get("ETag")), 200, "replace")
	if f.version() <= before || r.body["applied"] != true {
		t.Errorf("replace: version %d -> %d, %s", before, f.version(), r.raw)
	}
	diff := fmt.Sprint(r.body["diff"])
	if !strings.Contains(diff, "+ www.example.com. 60 IN A 192.0.2.7") || !strings.Contains(diff, "- www.example.com. 300 IN A 192.0.2.1") {
		t.Errorf("diff: %s", diff)
	}
	got := f.want(f.do("GET", "/zones/example.com./rrsets/www.example.com./A", "read", ""), 200, "get rrset")
	if got.header.Get("ETag") != r.header.Get("ETag") {
		t.Errorf("ETag of the PUT %s, of the GET after it %s", r.header.Get("ETag"), got.header.Get("ETag"))
	}

	// A new TXT RRset (an ACME challenge) needs no If-Match.
	f.want(f.do("PUT", "/zones/example.com./rrsets/_acme-challenge/TXT", "zone:example.com.", `{"ttl": 60, "records": ["\"token-1\""]}`), 201, "create TXT")

	// An endpoint is added to the pool, and drained.
	f.want(f.do("PUT", "/zones/example.com./pools/app/endpoints/198.51.100.4", "zone:example.com.", `{"datacenter": "lon", "weight": 50}`), 201, "add endpoint")
	a := f.want(f.do("PUT", "/zones/example.com./pools/app/endpoints/198.51.100.4/admin", "zone:example.com.", `{"state": "drain", "reason": "kernel upgrade"}`), 200, "drain")
	if a.body["old"] != "active" || a.body["new"] != "drain" {
		t.Errorf("drain: %s", a.raw)
	}
	st := f.want(f.do("GET", "/zones/example.com./pools/app/status", "read", ""), 200, "status")
	if !strings.Contains(st.raw, `"address":"198.51.100.4","datacenter":"lon","admin":"drain"`) {
		t.Errorf("status: %s", st.raw)
	}

	// Every write is in the audit log, under the token's label.
	au := f.want(f.do("GET", "/audit?zone=example.com.", "read", ""), 200, "audit")
	var actors []string
	for _, e := range au.list {
		m := e.(map[string]any)
		actors = append(actors, fmt.Sprint(m["actor"], " ", m["kind"]))
	}
	want := []string{"token:zone-example.com admin", "token:zone-example.com change", "token:zone-example.com change", "token:zone-example.com change", "token:admin change"}
	if !slices.Equal(actors, want) {
		t.Errorf("audit log: %q, want %q", actors, want)
	}

	// Deleting a pool is refused by the guard rails until forced.
	pool := f.want(f.do("GET", "/zones/example.com./pools/app", "read", ""), 200, "get pool")
	ref := f.want(f.do("DELETE", "/zones/example.com./pools/app", "zone:example.com.", "", "If-Match: "+pool.header.Get("ETag")), 409, "delete pool")
	if !strings.Contains(ref.raw, "reasons") {
		t.Errorf("refusal without reasons: %s", ref.raw)
	}
	f.want(f.do("DELETE", "/zones/example.com./pools/app?force=true", "zone:example.com.", "", "If-Match: "+pool.header.Get("ETag")), 200, "delete pool, forced")
	f.want(f.do("GET", "/zones/example.com./pools/app", "read", ""), 404, "deleted pool")

	// The zone: only an admin deletes it, forced.
	zt := f.want(f.do("GET", "/zones/example.com.", "read", ""), 200, "get zone").header.Get("ETag")
	f.want(f.do("DELETE", "/zones/example.com.?force=true", "zone:example.com.", "", "If-Match: "+zt), 403, "delete zone without admin")
	f.want(f.do("DELETE", "/zones/example.com.?force=true", "admin", "", "If-Match: "+zt), 200, "delete zone")
	f.want(f.do("GET", "/zones/example.com.", "admin", ""), 404, "deleted zone")
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, mgmtapi.Options{MaxBody: 4096})
	f.createZone()
	before := f.version()
	tests := []struct {
		name, method, path, scope, body string
		headers                         []string
		status                          int
		fields                          []string // named by the problem
	}{
		{"no token", "GET", "/zones", "", "", nil, 401, nil},
		{"read token writes", "PUT", "/zones/example.com./rrsets/x/A", "read", `{"ttl":60,"records":["192.0.2.9"]}`, nil, 403, nil},
		{"other zone's token", "PUT", "/zones/example.com./rrsets/x/A", "zone:other.example.", `{"ttl":60,"records":["192.0.2.9"]}`, nil, 403, nil},
		{"zone token creates a zone", "PUT", "/zones/other.example.", "zone:other.example.", `{"rrsets":[]}`, nil, 403, nil},
		{"other zone's token reads", "GET", "/zones/example.com.", "zone:other.example.", "", nil, 403, nil},
		{"bad rdata", "PUT", "/zones/example.com./rrsets/x/A", "admin", `{"ttl":60,"records":["192.0.2.9","not-an-address"]}`, nil, 400, []string{"records[1]"}},
		{"unknown field", "PUT", "/zones/example.com./rrsets/x/A", "admin", `{"ttl":60,"records":["192.0.2.9"],"colour":"red"}`, nil, 400, []string{"colour"}},
		{"wrong JSON type", "PUT", "/zones/example.com./rrsets/x/A", "admin", `{"ttl":"sixty","records":["192.0.2.9"]}`, nil, 400, []string{"ttl"}},
		{"name outside the zone", "PUT", "/zones/example.com./rrsets/www.example.net./A", "admin", `{"ttl":60,"records":["192.0.2.9"]}`, nil, 400, []string{"name"}},
		{"CNAME beside data", "PUT", "/zones/example.com./rrsets/www/CNAME", "admin", `{"ttl":60,"records":["ns1.example.com."]}`, nil, 400, []string{"records[0]"}},
		{"endpoint in an unknown datacenter", "PUT", "/zones/example.com./pools/app/endpoints/198.51.100.9", "admin", `{"datacenter":"tokyo"}`, nil, 400, []string{""}},
		{"bad endpoint address", "PUT", "/zones/example.com./pools/new", "admin", `{"endpoints":[{"address":"198.51.100.1","datacenter":"lon"},{"address":"300.1.1.1","datacenter":"lon"}]}`, nil, 400, []string{"endpoints[1].address"}},
		{"bad health check", "PUT", "/zones/example.com./pools/new", "admin", `{"health_check":{"type":"http","interval":"soon"},"endpoints":[]}`, nil, 400, []string{"health_check.interval"}},
		{"a bad zone changes nothing", "PUT", "/zones/example.com.", "admin", strings.Replace(zoneJSON, `"192.0.2.2"`, `"192.0.2.999"`, 1), []string{"If-Match: *"}, 400, []string{"rrsets[3].records[1]"}},
		{"oversized", "PUT", "/zones/example.com./rrsets/big/TXT", "admin", `{"ttl":60,"records":["\"` + strings.Repeat("x", 5000) + `\""]}`, nil, 413, nil},
		{"not JSON", "PUT", "/zones/example.com./rrsets/x/A", "admin", `{"ttl":60,`, nil, 400, []string{""}},
		{"bad If-Match on create", "PUT", "/zones/example.com./rrsets/x/A", "admin", `{"ttl":60,"records":["192.0.2.9"]}`, []string{`If-Match: "abc"`}, 412, nil},
		{"delete without If-Match", "DELETE", "/zones/example.com./rrsets/www/A", "admin", "", nil, 428, nil},
		{"delete what is not there", "DELETE", "/zones/example.com./rrsets/nope/A", "admin", "", []string{"If-Match: *"}, 404, nil},
		{"no such zone", "GET", "/zones/nope.example./rrsets", "admin", "", nil, 404, nil},
		{"bad audit limit", "GET", "/audit?limit=0", "read", "", nil, 400, []string{"limit"}},
		{"zone token reads the whole audit log", "GET", "/audit", "zone:example.com.", "", nil, 403, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			r := f.do(tc.method, tc.path, tc.scope, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if r.body["status"] != float64(tc.status) || r.body["type"] == nil || r.body["title"] == nil {
				t.Errorf("not a problem: %s", r.raw)
			}
			if tc.fields != nil && !slices.Equal(fields(r), tc.fields) {
				t.Errorf("fields %q, want %q: %s", fields(r), tc.fields, r.raw)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	f.t = t
	if v := f.version(); v != before {
		t.Errorf("refused requests changed the data version: %d -> %d", before, v)
	}
}

// Two writers that read the same version race to replace it: one wins,
// the other gets 412 and nothing of its change is written.
func TestConcurrentWriters(t *testing.T) {
	f := newFixture(t, mgmtapi.Options{})
	f.createZone()
	tag := f.want(f.do("GET", "/zones/example.com./rrsets/www/A", "admin", ""), 200, "get").header.Get("ETag")
	const writers = 6
	status := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"ttl": 60, "records": ["192.0.2.%d"]}`, 100+i)
			status[i] = f.do("PUT", "/zones/example.com./rrsets/www/A", "admin", body, "If-Match: "+tag).status
		}()
	}
	wg.Wait()
	slices.Sort(status)
	if status[0] != 200 || status[1] != 412 || status[writers-1] != 412 {
		t.Fatalf("statuses %v, want one 200 and the rest 412", status)
	}
	got := f.want(f.do("GET", "/zones/example.com./rrsets/www/A", "admin", ""), 200, "get")
	if n := strings.Count(got.raw, "192.0.2.1"); n != 1 {
		t.Errorf("after the race: %s", got.raw)
	}
	// The race is in the metrics: one 200 and five 412 for the operation.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.api)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "meridian_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == "PUT /api/v1/zones/{zone}/rrsets/{name}/{type}" {
				counts[labels["code"]] = m.GetCounter().GetValue()
			}
		}
	}
	if counts["200"] != 1 || counts["412"] != writers-1 {
		t.Errorf("meridian_api_requests_total of the PUTs: %v", counts)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, mgmtapi.Options{Rate: 1, Burst: 3})
	var codes []int
	for range 5 {
		codes = append(codes, f.do("GET", "/zones", "read", "").status)
	}
	if !slices.Equal(codes[:3], []int{200, 200, 200}) || codes[3] != 429 {
		t.Fatalf("statuses %v, want 3×200 then 429", codes)
	}
	r := f.do("GET", "/zones", "read", "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %d %v", r.status, r.header)
	}
}

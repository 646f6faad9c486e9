package mgmtapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/mgmtapi/pgbackend"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
	"github.com/meridiandns/meridian/zones"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openAPIRoute is the one operation that Routes leaves out: the document
// itself, served without a token.
const openAPIRoute = "GET " + mgmtapi.Prefix + "/openapi.yaml"

// loadDoc loads and validates the document the API serves.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(mgmtapi.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// docOperations lists the document's operations as Routes does.
func docOperations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIValid(t *testing.T) {
	doc := loadDoc(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi: %q, want 3.x", doc.OpenAPI)
	}
}

// TestOpenAPIRoutes checks that the document describes exactly the
// operations the API serves, so that a route added without its
// description, or a description left after its route, fails.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadDoc(t)
	served := append(mgmtapi.New(mgmtapi.Options{}).Routes(), openAPIRoute)
	slices.Sort(served)
	documented := docOperations(doc)
	for _, op := range served {
		if !slices.Contains(documented, op) {
			t.Errorf("%s is served but not in openapi.yaml", op)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("%s is in openapi.yaml but not served", op)
		}
	}
}

// exchanger sends requests to a server of the API and checks each
// request and each answer against the document.
type exchanger struct {
	t      *testing.T
	router routers.Router
	n      int             // exchanges made
	seen   map[string]bool // operations exercised, "METHOD /path"
}

// req is one request of the script.
type req struct {
	method, path string
	token        string
	header       map[string]string
	body         any    // marshalled as JSON, unless a string (sent as it is)
	want         int    // the status expected
	docRejects   bool   // the document rejects the request too (the server must also)
	base         string // the server; the main one when ""
}

// reply is what came back.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem answer.
func (r *reply) problem(t *testing.T) mgmtapi.Problem {
	t.Helper()
	var p mgmtapi.Problem
	r.decode(t, &p)
	return p
}

// bearer is the document's security check: a bearer token is present
// (whether it is valid is the server's to say).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errors.New("no bearer token")
	}
	return nil
}

func (x *exchanger) do(base string, q req) *reply {
	x.t.Helper()
	if q.base != "" {
		base = q.base
	}
	var body []byte
	switch b := q.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			x.t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		r, err := http.NewRequest(q.method, base+q.path, rd)
		if err != nil {
			x.t.Fatal(err)
		}
		if body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		if q.token != "" {
			r.Header.Set("Authorization", "Bearer "+q.token)
		}
		for k, v := range q.header {
			r.Header.Set(k, v)
		}
		return r
	}
	what := q.method + " " + q.path

	// The request, against the document.
	vr := newReq()
	route, params, err := x.router.FindRoute(vr)
	if err != nil {
		x.t.Fatalf("%s: not in the document: %v", what, err)
	}
	x.seen[route.Method+" "+route.Path] = true
	opts := &openapi3filter.Options{AuthenticationFunc: bearer, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	err = openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case q.docRejects && err == nil:
		x.t.Errorf("%s: the document accepts a request it should reject", what)
	case !q.docRejects && err != nil:
		x.t.Errorf("%s: the request does not match the document: %v", what, err)
	}

	// The exchange.
	resp, err := http.DefaultClient.Do(newReq())
	if err != nil {
		x.t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		x.t.Fatalf("%s: read the answer: %v", what, err)
	}
	x.n++
	if resp.StatusCode != q.want {
		x.t.Errorf("%s: status %d, want %d: %s", what, resp.StatusCode, q.want, rb)
	}

	// The answer, against the document.
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	out.SetBodyBytes(rb)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		x.t.Errorf("%s: the answer (%d) does not match the document: %v\n%s", what, resp.StatusCode, err, rb)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: rb}
}

// limited wraps a Backend to play a server that fails or cannot do
// something.
type limited struct {
	mgmtapi.Backend
	failCheckers bool // Checkers fails: 500
	noChange     bool // Change is not supported: 409 unsupported
}

func (l limited) Checkers(ctx context.Context) ([]mgmtapi.Checker, error) {
	if l.failCheckers {
		return nil, errors.New("the store is gone")
	}
	return l.Backend.Checkers(ctx)
}

func (l limited) Change(ctx context.Context, origin string, change func(*zones.Zone) (*zones.Zone, error), w mgmtapi.Write) (*mgmtapi.Result, error) {
	if l.noChange {
		return nil, fmt.Errorf("%w: zone %s is a zone file, which cannot have pools", mgmtapi.ErrUnsupported, origin)
	}
	return l.Backend.Change(ctx, origin, change, w)
}

// The zone the script creates.
var exampleZone = mgmtapi.Zone{
	Name: "example.com.",
	RRsets: []mgmtapi.RRset{
		{Name: "@", Type: "SOA", TTL: 3600, Records: []string{"ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"}},
		{Name: "example.com.", Type: "NS", TTL: 3600, Records: []string{"ns1.example.com.", "ns2.example.com."}},
		{Name: "ns1.example.com.", Type: "A", TTL: 3600, Records: []string{"192.0.2.1"}},
		{Name: "ns2.example.com", Type: "A", TTL: 3600, Records: []string{"192.0.2.2"}},
		{Name: "example.com.", Type: "MX", TTL: 3600, Records: []string{"10 mail.example.com."}},
		{Name: "mail.example.com.", Type: "A", TTL: 3600, Records: []string{"192.0.2.25"}},
	},
	Datacenters: []mgmtapi.Datacenter{{Name: "eu-west", Latitude: 51.5, Longitude: -0.13, Country: "GB", Continent: "EU"}},
	Pools:       []mgmtapi.Pool{},
}

// TestOpenAPIExchanges runs a script of requests, covering every
// operation and the main errors, against the API on a real PostgreSQL
// store, and checks every request and every answer against the document.
func TestOpenAPIExchanges(t *testing.T) {
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
	token := func(label string, scopes ...string) string {
		tok, _, err := postgres.CreateAPIToken(ctx, db, label, scopes)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin, reader, zoneTok, otherTok := token("admin", "admin"), token("reader", "read"), token("ci", "zone:example.com."), token("other", "zone:example.org.")
	if err := postgres.RegisterChecker(ctx, db, "checker-1", "eu", time.Minute); err != nil {
		t.Fatal(err)
	}
	backend, err := pgbackend.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	const maxBody = 64 << 10
	serve := func(b mgmtapi.Backend, rate float64, burst int) string {
		srv := httptest.NewServer(mgmtapi.New(mgmtapi.Options{Backend: b, MaxBody: maxBody, Rate: rate, Burst: burst}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	base := serve(backend, 1000, 1000)
	slow := serve(backend, 0.01, 1)
	failing := serve(limited{Backend: backend, failCheckers: true}, 1000, 1000)
	zoneFiles := serve(limited{Backend: backend, noChange: true}, 1000, 1000)

	doc := loadDoc(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	x := &exchanger{t: t, router: router, seen: map[string]bool{}}
	do := func(q req) *reply { t.Helper(); return x.do(base, q) }
	etagOf := func(r *reply) string {
		t.Helper()
		tag := r.header.Get("ETag")
		if tag == "" {
			t.Fatalf("no ETag in the answer %d %s", r.status, r.body)
		}
		return tag
	}
	wantProblem := func(r *reply, typ string) mgmtapi.Problem {
		t.Helper()
		p := r.problem(t)
		if p.Type != "urn:meridian:problem:"+typ || p.Status != r.status {
			t.Errorf("problem %+v, want type %s and status %d", p, typ, r.status)
		}
		return p
	}
	wantField := func(r *reply, field string) {
		t.Helper()
		p := wantProblem(r, "validation")
		if !slices.ContainsFunc(p.Errors, func(e mgmtapi.FieldError) bool { return e.Field == field }) {
			t.Errorf("400 names fields %+v, want %q", p.Errors, field)
		}
	}

	const (
		zone     = "/api/v1/zones/example.com."
		acme     = zone + "/rrsets/_acme-challenge.www.example.com./TXT"
		pool     = zone + "/pools/www.example.com."
		endpoint = pool + "/endpoints/192.0.2.13"
	)

	// The document, without a token.
	r := do(req{method: "GET", path: "/api/v1/openapi.yaml", want: 200})
	if !bytes.Equal(r.body, mgmtapi.OpenAPI) {
		t.Error("GET openapi.yaml does not answer the embedded document")
	}

	// Tokens.
	r = do(req{method: "GET", path: "/api/v1/zones", want: 401, docRejects: true})
	wantProblem(r, "unauthorized")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="meridian"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	r = do(req{method: "GET", path: "/api/v1/zones", token: "mrd_not-a-token", want: 401})
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate %q, want invalid_token", got)
	}
	r = do(req{method: "GET", path: "/api/v1/zones", token: admin, want: 200})
	if string(bytes.TrimSpace(r.body)) != "[]" {
		t.Errorf("zones %s, want []", r.body)
	}

	// A zone: only an admin creates one, and If-None-Match: * only creates.
	r = do(req{method: "PUT", path: zone, token: zoneTok, header: map[string]string{"If-None-Match": "*"}, body: exampleZone, want: 403})
	wantProblem(r, "forbidden")
	r = do(req{method: "PUT", path: zone, token: admin, header: map[string]string{"If-None-Match": "*"}, body: exampleZone, want: 201})
	if loc := r.header.Get("Location"); loc != zone {
		t.Errorf("Location %q, want %q", loc, zone)
	}
	var cr mgmtapi.ChangeResult
	r.decode(t, &cr)
	if !cr.Applied || cr.ETag != etagOf(r) || len(cr.Diff) == 0 {
		t.Errorf("create: %+v", cr)
	}
	wantProblem(do(req{method: "PUT", path: zone, token: admin, header: map[string]string{"If-None-Match": "*"}, body: exampleZone, want: 412}), "precondition-failed")
	r = do(req{method: "GET", path: zone, token: zoneTok, want: 200})
	zoneTag := etagOf(r)
	if cr.ETag != zoneTag {
		t.Errorf("ETag of GET %s, of the PUT %s", zoneTag, cr.ETag)
	}
	do(req{method: "GET", path: zone, token: reader, header: map[string]string{"If-None-Match": zoneTag}, want: 304})
	wantProblem(do(req{method: "GET", path: zone, token: otherTok, want: 403}), "forbidden")
	wantProblem(do(req{method: "GET", path: "/api/v1/zones/example.net.", token: admin, want: 404}), "not-found")
	wantField(do(req{method: "GET", path: "/api/v1/zones/a..b", token: admin, want: 400}), "zone")
	r = do(req{method: "GET", path: "/api/v1/zones", token: reader, want: 200})
	var list []mgmtapi.ZoneSummary
	r.decode(t, &list)
	if len(list) != 1 || list[0].Name != "example.com." || list[0].Serial != 1 {
		t.Errorf("zones %+v", list)
	}
	r = do(req{method: "GET", path: "/api/v1/zones", token: otherTok, want: 200})
	if string(bytes.TrimSpace(r.body)) != "[]" {
		t.Errorf("zones of a token of another zone %s, want []", r.body)
	}

	// An RRset, the ACME DNS-01 way.
	txt := mgmtapi.RRset{TTL: 60, Records: []string{`"first-token"`}}
	r = do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-None-Match": "*"}, body: txt, want: 201})
	first := etagOf(r)
	do(req{method: "GET", path: zone + "/rrsets", token: zoneTok, want: 200})
	r = do(req{method: "GET", path: acme, token: zoneTok, want: 200})
	if etagOf(r) != first {
		t.Errorf("GET ETag %s, PUT's %s", etagOf(r), first)
	}
	txt.Records = []string{`"second-token"`, `"first-token"`}
	wantProblem(do(req{method: "PUT", path: acme, token: zoneTok, body: txt, want: 428}), "precondition-required")
	r = do(req{method: "PUT", path: acme + "?dry_run=true", token: zoneTok, header: map[string]string{"If-Match": first}, body: txt, want: 200})
	r.decode(t, &cr)
	if cr.Applied || !cr.DryRun || len(cr.Diff) == 0 || r.header.Get("ETag") != "" {
		t.Errorf("dry run: %+v, ETag %q", cr, r.header.Get("ETag"))
	}
	r = do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-Match": first}, body: txt, want: 200})
	second := etagOf(r)
	wantProblem(do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-Match": first}, body: txt, want: 412}), "precondition-failed")
	wantProblem(do(req{method: "PUT", path: acme, token: reader, header: map[string]string{"If-Match": second}, body: txt, want: 403}), "forbidden")
	wantField(do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-Match": second},
		body: `{"ttl": 60, "records": ["\"x\""], "comment": "no such field"}`, want: 400, docRejects: true}), "comment")
	wantField(do(req{method: "PUT", path: zone + "/rrsets/www.example.com./A", token: zoneTok,
		body: mgmtapi.RRset{TTL: 300, Records: []string{"192.0.2.80", "not-an-address"}}, want: 400}), "records[1]")
	wantField(do(req{method: "PUT", path: zone + "/rrsets/www.example.org./A", token: zoneTok,
		body: mgmtapi.RRset{TTL: 300, Records: []string{"192.0.2.80"}}, want: 400}), "name")
	wantProblem(do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-Match": second, "Content-Type": "text/plain"},
		body: `"x"`, want: 415, docRejects: true}), "media-type")
	big := mgmtapi.RRset{TTL: 60}
	for len(big.Records)*40 < 2*maxBody {
		big.Records = append(big.Records, fmt.Sprintf(`"%038d"`, len(big.Records)))
	}
	wantProblem(do(req{method: "PUT", path: acme, token: zoneTok, header: map[string]string{"If-Match": second}, body: big, want: 413}), "too-large")
	wantProblem(do(req{method: "GET", path: zone + "/rrsets/nothing.example.com./A", token: zoneTok, want: 404}), "not-found")

	// A datacenter, a pool, an endpoint.
	r = do(req{method: "PUT", path: zone + "/datacenters/us-east", token: zoneTok, header: map[string]string{"If-None-Match": "*"},
		body: mgmtapi.Datacenter{Latitude: 39.04, Longitude: -77.49, Country: "US", Continent: "NA"}, want: 201})
	dcTag := etagOf(r)
	do(req{method: "GET", path: zone + "/datacenters", token: reader, want: 200})
	do(req{method: "GET", path: zone + "/datacenters/us-east", token: reader, want: 200})
	wantProblem(do(req{method: "GET", path: zone + "/datacenters/ap-south", token: reader, want: 404}), "not-found")
	ttl, maxAnswers := uint32(30), 2
	wwwPool := mgmtapi.Pool{TTL: &ttl, MaxAnswers: &maxAnswers, Geo: "nearest", WhenAllDown: "fail_open",
		Endpoints: []mgmtapi.Endpoint{{Address: "192.0.2.11", Datacenter: "eu-west"}, {Address: "192.0.2.12", Datacenter: "us-east"}}}
	r = do(req{method: "PUT", path: pool, token: zoneTok, header: map[string]string{"If-None-Match": "*"}, body: wwwPool, want: 201})
	do(req{method: "GET", path: zone + "/pools", token: zoneTok, want: 200})
	r = do(req{method: "GET", path: pool, token: zoneTok, want: 200})
	var gotPool mgmtapi.Pool
	r.decode(t, &gotPool)
	if gotPool.Name != "www.example.com." || gotPool.Quorum != "majority" || len(gotPool.Endpoints) != 2 {
		t.Errorf("pool %+v", gotPool)
	}
	wantField(do(req{method: "PUT", path: pool, token: zoneTok, header: map[string]string{"If-Match": etagOf(r)},
		body: mgmtapi.Pool{Endpoints: []mgmtapi.Endpoint{{Address: "192.0.2.11", Datacenter: "eu-west"}, {Address: "192.0.2.300", Datacenter: "eu-west"}}},
		want: 400}), "endpoints[1].address")
	wantField(do(req{method: "PUT", path: pool, token: zoneTok, header: map[string]string{"If-Match": etagOf(r)},
		body: mgmtapi.Pool{Endpoints: []mgmtapi.Endpoint{{Address: "192.0.2.11", Datacenter: "mars"}}}, want: 400}), "endpoints[0]")
	weight := uint32(50)
	r = do(req{method: "PUT", path: endpoint, token: zoneTok, header: map[string]string{"If-None-Match": "*"},
		body: mgmtapi.Endpoint{Datacenter: "us-east", Weight: &weight, HealthCheck: &mgmtapi.HealthCheck{Type: "http", Port: 80, Path: "/healthz",
			Interval: "10s", Timeout: "2s"}}, want: 201})
	epTag := etagOf(r)
	do(req{method: "GET", path: pool + "/endpoints", token: zoneTok, want: 200})
	r = do(req{method: "GET", path: endpoint, token: zoneTok, want: 200})
	if etagOf(r) != epTag {
		t.Errorf("endpoint ETag %s, PUT's %s", etagOf(r), epTag)
	}
	wantField(do(req{method: "PUT", path: endpoint, token: zoneTok, header: map[string]string{"If-Match": epTag},
		body: `{"datacenter": "us-east", "health_check": {"type": "http", "port": 80, "interval": 10}}`, want: 400, docRejects: true}), "health_check.interval")
	wantProblem(do(req{method: "GET", path: pool + "/endpoints/192.0.2.99", token: zoneTok, want: 404}), "not-found")
	wantField(do(req{method: "GET", path: pool + "/endpoints/not-an-ip", token: zoneTok, want: 400}), "address")
	wantProblem(do(req{method: "GET", path: zone + "/pools/ftp.example.com./endpoints", token: zoneTok, want: 404}), "not-found")

	// Admin states: drain, with a reason; the pool's status.
	r = do(req{method: "PUT", path: endpoint + "/admin", token: zoneTok, body: mgmtapi.AdminRequest{State: "drain", Reason: "kernel upgrade"}, want: 200})
	var ar mgmtapi.AdminResult
	r.decode(t, &ar)
	if ar != (mgmtapi.AdminResult{Old: "active", New: "drain"}) {
		t.Errorf("admin: %+v", ar)
	}
	wantField(do(req{method: "PUT", path: endpoint + "/admin", token: zoneTok, body: mgmtapi.AdminRequest{State: "asleep", Reason: "x"}, want: 400, docRejects: true}), "state")
	wantField(do(req{method: "PUT", path: endpoint + "/admin", token: zoneTok, body: mgmtapi.AdminRequest{State: "drain", Reason: " "}, want: 400, docRejects: true}), "reason")
	wantProblem(do(req{method: "PUT", path: pool + "/endpoints/192.0.2.99/admin", token: zoneTok, body: mgmtapi.AdminRequest{State: "drain", Reason: "x"}, want: 404}), "not-found")
	wantProblem(do(req{method: "PUT", path: endpoint + "/admin", token: reader, body: mgmtapi.AdminRequest{State: "active", Reason: "x"}, want: 403}), "forbidden")
	r = do(req{method: "GET", path: pool + "/status", token: reader, want: 200})
	var st mgmtapi.PoolStatus
	r.decode(t, &st)
	if len(st.Endpoints) != 3 || st.Endpoints[2].Address != "192.0.2.13" || st.Endpoints[2].Admin != "drain" || st.Endpoints[2].Eligible {
		t.Errorf("status %+v", st)
	}
	wantProblem(do(req{method: "GET", path: zone + "/pools/ftp.example.com./status", token: reader, want: 404}), "not-found")
	r = do(req{method: "GET", path: endpoint, token: zoneTok, want: 200})
	epTag = etagOf(r)

	// The checkers and the audit log.
	r = do(req{method: "GET", path: "/api/v1/checkers", token: reader, want: 200})
	var cs []mgmtapi.Checker
	r.decode(t, &cs)
	if len(cs) != 1 || cs[0].ID != "checker-1" || !cs[0].Live {
		t.Errorf("checkers %+v", cs)
	}
	wantProblem(do(req{method: "GET", path: "/api/v1/checkers", token: zoneTok, want: 403}), "forbidden")
	r = do(req{method: "GET", path: "/api/v1/audit", token: reader, want: 200})
	var audit []mgmtapi.AuditEntry
	r.decode(t, &audit)
	if len(audit) < 5 || audit[0].Kind != "admin" || audit[0].Actor != "token:ci" || audit[0].Reason != "kernel upgrade" {
		t.Errorf("audit %+v", audit)
	}
	r = do(req{method: "GET", path: "/api/v1/audit?zone=example.com.&limit=2&before=" + audit[0].At.Add(time.Microsecond).Format(time.RFC3339Nano), token: zoneTok, want: 200})
	r.decode(t, &audit)
	if len(audit) != 2 {
		t.Errorf("audit with limit=2: %d entries", len(audit))
	}
	wantProblem(do(req{method: "GET", path: "/api/v1/audit", token: zoneTok, want: 403}), "forbidden")
	wantField(do(req{method: "GET", path: "/api/v1/audit?limit=0", token: reader, want: 400, docRejects: true}), "limit")
	wantField(do(req{method: "GET", path: "/api/v1/audit?before=yesterday", token: reader, want: 400, docRejects: true}), "before")

	// Deletes: If-Match required; the guard rails want force=true to
	// delete a pool or the zone.
	wantProblem(do(req{method: "DELETE", path: endpoint, token: zoneTok, want: 428}), "precondition-required")
	do(req{method: "DELETE", path: endpoint, token: zoneTok, header: map[string]string{"If-Match": epTag}, want: 200})
	r = do(req{method: "GET", path: pool, token: zoneTok, want: 200})
	poolTag := etagOf(r)
	r = do(req{method: "DELETE", path: pool, token: zoneTok, header: map[string]string{"If-Match": poolTag}, want: 409})
	if p := wantProblem(r, "refused"); len(p.Reasons) == 0 {
		t.Errorf("refusal without reasons: %+v", p)
	}
	do(req{method: "DELETE", path: pool + "?force=true", token: zoneTok, header: map[string]string{"If-Match": poolTag}, want: 200})
	wantProblem(do(req{method: "DELETE", path: zone + "/datacenters/us-east", token: zoneTok, header: map[string]string{"If-Match": `"stale"`}, want: 412}), "precondition-failed")
	do(req{method: "DELETE", path: zone + "/datacenters/us-east", token: zoneTok, header: map[string]string{"If-Match": dcTag}, want: 200})
	do(req{method: "DELETE", path: acme, token: zoneTok, header: map[string]string{"If-Match": "*"}, want: 200})
	wantProblem(do(req{method: "DELETE", path: acme, token: zoneTok, header: map[string]string{"If-Match": "*"}, want: 404}), "not-found")
	wantProblem(do(req{method: "DELETE", path: zone, token: zoneTok, header: map[string]string{"If-Match": "*"}, want: 403}), "forbidden")
	wantProblem(do(req{method: "DELETE", path: zone, token: admin, want: 428}), "precondition-required")
	r = do(req{method: "GET", path: zone, token: admin, want: 200})
	zoneTag = etagOf(r)
	r = do(req{method: "PUT", path: zone, token: admin, header: map[string]string{"If-Match": zoneTag}, body: exampleZone, want: 200})
	r.decode(t, &cr)
	if cr.Applied || len(cr.Diff) != 0 || cr.ETag != zoneTag {
		t.Errorf("a PUT of the zone as it is: %+v, want nothing changed", cr)
	}
	wantProblem(do(req{method: "DELETE", path: zone, token: admin, header: map[string]string{"If-Match": zoneTag}, want: 409}), "refused")
	do(req{method: "DELETE", path: zone + "?force=true", token: admin, header: map[string]string{"If-Match": zoneTag}, want: 200})
	wantProblem(do(req{method: "GET", path: zone, token: admin, want: 404}), "not-found")

	// Rate limits, a failing store, a server that cannot make a change.
	do(req{base: slow, method: "GET", path: "/api/v1/zones", token: reader, want: 200})
	r = do(req{base: slow, method: "GET", path: "/api/v1/zones", token: reader, want: 429})
	wantProblem(r, "rate-limited")
	wantProblem(do(req{base: failing, method: "GET", path: "/api/v1/checkers", token: reader, want: 500}), "internal")
	wantProblem(do(req{base: zoneFiles, method: "PUT", path: zone, token: admin, body: exampleZone, want: 409}), "unsupported")

	// Every operation was exercised.
	for _, op := range docOperations(doc) {
		if !x.seen[op] {
			t.Errorf("the script does not exercise %s", op)
		}
	}
	t.Logf("%d exchanges, each request and answer checked against openapi.yaml", x.n)
}

package mgmtapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// Prefix is the path of every resource of this version of the API.
const Prefix = "/api/v1"

// OpenAPI is the API's description, served at Prefix/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Defaults of Options.
const (
	DefaultMaxBody = 1 << 20
	DefaultRate    = 20 // requests per second per token
	DefaultBurst   = 40
)

// Options configure the API.
type Options struct {
	Backend Backend
	Logger  *slog.Logger
	// MaxBody bounds a request's body; a longer one gets 413.
	MaxBody int64
	// Rate and Burst bound the requests of one client address (every
	// request, checked before its token, so that guessing tokens is
	// slow) and of one token (wherever it comes from); beyond them, 429.
	Rate  float64
	Burst int
	// Timeout bounds the time a request spends in the Backend.
	Timeout time.Duration
}

// API is the management API's HTTP handler.
type API struct {
	ops     []string // "METHOD /path", for Routes
	b       Backend
	log     *slog.Logger
	maxBody int64
	timeout time.Duration
	limit   *limiter
	mux     *http.ServeMux
	metrics *apiMetrics
}

// New returns the API over o.Backend.
func New(o Options) *API {
	a := &API{b: o.Backend, log: o.Logger, maxBody: o.MaxBody, timeout: o.Timeout, mux: http.NewServeMux(), metrics: newAPIMetrics()}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	if a.timeout <= 0 {
		a.timeout = 30 * time.Second
	}
	rate, burst := o.Rate, o.Burst
	if rate <= 0 {
		rate = DefaultRate
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	a.limit = newLimiter(rate, burst)
	a.routes()
	return a
}

// handler is an authenticated request's handler; an error it returns is
// answered as a problem.
type handler func(w http.ResponseWriter, r *http.Request, p Principal) error

func (a *API) routes() {
	a.mux.HandleFunc("GET "+Prefix+"/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(OpenAPI)
	})
	for pattern, h := range map[string]handler{
		"GET /zones":                                               a.listZones,
		"GET /zones/{zone}/rrsets":                                 a.listRRsets,
		"GET /zones/{zone}/datacenters":                            a.listDatacenters,
		"GET /zones/{zone}/pools":                                  a.listPools,
		"GET /zones/{zone}/pools/{pool}/endpoints":                 a.listEndpoints,
		"GET /zones/{zone}/pools/{pool}/status":                    a.poolStatus,
		"PUT /zones/{zone}/pools/{pool}/endpoints/{address}/admin": a.setAdmin,
		"GET /checkers":                                            a.listCheckers,
		"GET /audit":                                               a.audit,
	} {
		a.handle(pattern, h)
	}
	for path, k := range map[string]*kind{
		"/zones/{zone}":                                  zoneKind,
		"/zones/{zone}/rrsets/{name}/{type}":             rrsetKind,
		"/zones/{zone}/datacenters/{datacenter}":         datacenterKind,
		"/zones/{zone}/pools/{pool}":                     poolKind,
		"/zones/{zone}/pools/{pool}/endpoints/{address}": endpointKind,
	} {
		a.handle("GET "+path, a.getOne(k))
		a.handle("PUT "+path, a.putOne(k))
		a.handle("DELETE "+path, a.deleteOne(k))
	}
	a.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, notFound("no resource %s %s", r.Method, r.URL.Path))
	})
}

// handle registers h under pattern ("METHOD /path"), behind the rate
// limit and authentication.
func (a *API) handle(pattern string, h handler) {
	method, path, _ := strings.Cut(pattern, " ")
	a.ops = append(a.ops, method+" "+Prefix+path)
	operation := method + " " + Prefix + path
	a.mux.HandleFunc(operation, func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() { a.metrics.observe(operation, w.code, time.Since(start)) }()
		client := clientAddr(r)
		if ok, retry := a.limit.allow("addr:" + client); !ok {
			writeProblem(w, tooMany(retry))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
		defer cancel()
		r = r.WithContext(ctx)
		p, prob := a.authenticate(r)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		if ok, retry := a.limit.allow("token:" + p.Name); !ok {
			writeProblem(w, tooMany(retry))
			return
		}
		if err := h(w, r, p); err != nil {
			prob, ok := asProblem(err)
			if !ok {
				a.log.Error("management API: request failed", "method", r.Method, "path", r.URL.Path, "actor", p.Name, "err", err)
			}
			writeProblem(w, prob)
		}
	})
}

// Routes lists the API's operations, "METHOD /api/v1/path/{param}",
// sorted, but for the unauthenticated GET of the OpenAPI document.
func (a *API) Routes() []string {
	out := slices.Clone(a.ops)
	slices.Sort(out)
	return out
}

// ServeHTTP serves the API; a panic in a handler is logged and answered
// 500, and the server goes on.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("management API: panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeProblem(w, internal())
		}
	}()
	a.mux.ServeHTTP(w, r)
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate checks the bearer token (RFC 6750).
func (a *API) authenticate(r *http.Request) (Principal, *Problem) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, unauthorized("send Authorization: Bearer <token>", false)
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, unauthorized("send Authorization: Bearer <token>", true)
	}
	p, err := a.b.Authenticate(r.Context(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, ErrBadToken):
		a.log.Info("management API: bad token", "client", clientAddr(r), "path", r.URL.Path)
		return Principal{}, unauthorized("the token is not valid", true)
	case err != nil:
		a.log.Error("management API: authenticate", "err", err)
		return Principal{}, internal()
	}
	return p, nil
}

// zoneParam returns the request's zone, canonical.
func zoneParam(r *http.Request) (string, *Problem) {
	z := r.PathValue("zone")
	if _, ok := dns.IsDomainName(z); !ok || z == "" {
		return "", invalidField("zone", "%q is not a zone name", z)
	}
	return zones.CanonicalName(z), nil
}

func writeJSON(w http.ResponseWriter, status int, tag string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if tag != "" {
		w.Header().Set("ETag", tag)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads the request's JSON body into v, strictly: unknown
// fields and trailing data are errors, which name the field.
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, v any) *Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem(http.StatusUnsupportedMediaType, "media-type", "The body must be JSON", "Content-Type: application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(a.maxBody)
	case err != nil:
		return invalidField("", "reading the body: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return invalidField("", "the body holds more than one JSON value")
	}
	return nil
}

// jsonProblem names the field of a JSON decoding error.
func jsonProblem(err error) *Problem {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return invalidField(te.Field, "want %s, got JSON %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return invalidField("", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF):
		return invalidField("", "the body is empty")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		f, _ = strconv.Unquote(f)
		return invalidField(f, "unknown field")
	}
	var field string
	if i := strings.Index(msg, "Go struct field "); i >= 0 {
		rest := msg[i+len("Go struct field "):]
		if j := strings.Index(rest, " "); j >= 0 {
			if _, after, ok := strings.Cut(rest[:j], "."); ok {
				field = after
			}
		}
	}
	return invalidField(field, "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// writeOptions reads a write's force and dry_run query parameters.
func writeOptions(r *http.Request, p Principal) (Write, *Problem) {
	w := Write{Actor: p.Name}
	for name, dst := range map[string]*bool{"force": &w.Force, "dry_run": &w.DryRun} {
		if v := r.URL.Query().Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return w, invalidField(name, "want true or false, got %q", v)
			}
			*dst = b
		}
	}
	return w, nil
}

// ChangeResult answers a write.
type ChangeResult struct {
	Applied bool     `json:"applied"`
	DryRun  bool     `json:"dry_run,omitempty"`
	Version int64    `json:"version,omitempty"`
	Diff    []string `json:"diff"`
	// ETag is the resource's after the write; "" when it was deleted.
	ETag string `json:"etag,omitempty"`
}

func result(res *Result, w Write, tag string) ChangeResult {
	out := ChangeResult{DryRun: w.DryRun, Diff: []string{}, ETag: tag}
	if res != nil {
		out.Applied, out.Version = res.Applied, res.Version
		if res.Diff != nil {
			out.Diff = res.Diff
		}
	}
	return out
}

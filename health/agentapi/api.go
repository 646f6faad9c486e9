// Package agentapi is Meridian's health-agent HTTP API: agents on the
// endpoints push their status (up, down, drain, or HAProxy agent-check
// words), load and capacity; operators drain and enable endpoints and
// read the effective state. Every request but GET /healthz needs a bearer
// token (meridianctl token create): an agent token acts on its own pool
// only, an operator token on any pool.
//
//	POST /v1/pools/{pool}/endpoints/{address}/report  {"status": "up 75%", "load": 0.3, "ttl": "30s", ...}
//	POST /v1/pools/{pool}/endpoints/{address}/admin   {"state": "drain", "reason": "..."} (operator tokens)
//	GET  /v1/pools
//	GET  /v1/pools/{pool}/endpoints
//	GET  /healthz
//
// Errors are JSON, {"error": "..."}: 400 for a bad request, 401 for a
// missing or invalid token (which of them is not said), 403 for a token
// that may not do it, 404 for an unknown pool or endpoint, 408 for a body
// sent too slowly, 413 for a body over 64 KiB, and 500 "internal error"
// for a store failure or a panic, whose details go to the log only. A
// request that fails changes nothing. Serve it with NewServer, whose
// timeouts and header limit are meant for the open network.
package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// MaxBody bounds request bodies.
const MaxBody = 64 << 10

// DefaultTTL is how long a report holds when it gives no ttl.
const DefaultTTL = 30 * time.Second

// Store is what the API needs of the store; PG implements it.
type Store interface {
	CheckToken(ctx context.Context, token string) (postgres.TokenInfo, error)
	ReportAgent(ctx context.Context, pool string, addr netip.Addr, r postgres.Report) (zones.HealthState, bool, error)
	SetAdmin(ctx context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error)
	ListPools(ctx context.Context) ([]postgres.PoolInfo, error)
	ListEndpoints(ctx context.Context, pool string) ([]postgres.EndpointInfo, error)
}

// Handler serves the API.
type Handler struct {
	store    Store
	logger   *slog.Logger
	mux      *http.ServeMux
	serve    http.Handler // route, under Recover
	onReport func(accepted bool)
}

// New returns the API's handler over store; logger (nil: none) gets the
// internal errors that clients are not shown.
func New(store Store, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: store, logger: logger, mux: http.NewServeMux()}
	h.serve = Recover(http.HandlerFunc(h.route), logger, func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusInternalServerError, "internal error")
	})
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	h.mux.HandleFunc("POST /v1/pools/{pool}/endpoints/{address}/report", h.report)
	h.mux.HandleFunc("POST /v1/pools/{pool}/endpoints/{address}/admin", h.admin)
	h.mux.HandleFunc("GET /v1/pools", h.pools)
	h.mux.HandleFunc("GET /v1/pools/{pool}/endpoints", h.endpoints)
	return h
}

// OnReport makes the handler call fn once for every request to the
// report route: accepted when the report was stored, not when it was
// refused for any reason (token, body, unknown endpoint, store failure).
// It is meant for metrics; set it before serving.
func (h *Handler) OnReport(fn func(accepted bool)) {
	h.onReport = fn
}

// ErrNeedOperator is MayAdmin's refusal: admin actions take operator
// tokens only.
var ErrNeedOperator = errors.New("this needs an operator token")

// MayAdmin says whether token t may set the admin state of pool's
// endpoints: only operator tokens may, since an agent's token must not
// undo what an operator decided. Every admin path (this API, the status
// page) asks it, so that they cannot drift apart.
func MayAdmin(t postgres.TokenInfo, pool string) error {
	if t.Kind != postgres.TokenOperator || !t.MayAct(pool) {
		return ErrNeedOperator
	}
	return nil
}

// ServeHTTP serves r; requests no route takes get JSON errors too. Every
// body is limited to MaxBody, and a panic answers 500 "internal error",
// its details only in the log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The limit gets the server's own writer, so that the server closes
	// the connection of a request that was too large.
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	h.serve.ServeHTTP(w, r)
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		w = &jsonErrorWriter{ResponseWriter: w}
	}
	h.mux.ServeHTTP(w, r)
}

// jsonErrorWriter turns the mux's plain-text 404 and 405 into JSON.
type jsonErrorWriter struct {
	http.ResponseWriter
	done bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if w.done {
		return
	}
	w.done = true
	w.Header().Del("X-Content-Type-Options")
	writeJSON(w.ResponseWriter, code, errorBody{strings.ToLower(http.StatusText(code))})
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meridian"`)
	}
	writeJSON(w, code, errorBody{fmt.Sprintf(format, args...)})
}

// storeError answers a store error: 404 for an unknown pool or endpoint,
// 400 for a bad report, else 500 with the details only in the log.
func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, postgres.ErrUnknownPool):
		writeError(w, http.StatusNotFound, "unknown pool %s", zones.CanonicalName(r.PathValue("pool")))
	case errors.Is(err, postgres.ErrUnknownEndpoint):
		writeError(w, http.StatusNotFound, "pool %s has no endpoint %s", zones.CanonicalName(r.PathValue("pool")), r.PathValue("address"))
	case errors.Is(err, postgres.ErrBadReport):
		// What is wrong with the report, from ErrBadReport on: whatever
		// wrapped it (the store's name for its operation) stays out.
		msg := err.Error()
		if i := strings.Index(msg, postgres.ErrBadReport.Error()); i >= 0 {
			msg = msg[i:]
		} else {
			msg = postgres.ErrBadReport.Error()
		}
		writeError(w, http.StatusBadRequest, "%s", msg)
	default:
		h.logger.Error("Agent API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

const badToken = "missing or invalid token"

// authenticate returns the request's token, or answers 401.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (postgres.TokenInfo, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		writeError(w, http.StatusUnauthorized, badToken)
		return postgres.TokenInfo{}, false
	}
	t, err := h.store.CheckToken(r.Context(), strings.TrimSpace(token))
	if errors.Is(err, postgres.ErrBadToken) {
		writeError(w, http.StatusUnauthorized, badToken)
		return postgres.TokenInfo{}, false
	}
	if err != nil {
		h.storeError(w, r, err)
		return postgres.TokenInfo{}, false
	}
	return t, true
}

// target authenticates and authorises a request on {pool}/{address}:
// operatorOnly refuses agent tokens.
func (h *Handler) target(w http.ResponseWriter, r *http.Request, operatorOnly bool) (t postgres.TokenInfo, pool string, addr netip.Addr, ok bool) {
	if t, ok = h.authenticate(w, r); !ok {
		return
	}
	pool = zones.CanonicalName(r.PathValue("pool"))
	if operatorOnly && MayAdmin(t, pool) != nil {
		writeError(w, http.StatusForbidden, "%s", ErrNeedOperator)
		return t, "", addr, false
	}
	if !t.MayAct(pool) {
		writeError(w, http.StatusForbidden, "this token is not for pool %s", pool)
		return t, "", addr, false
	}
	addr, err := netip.ParseAddr(r.PathValue("address"))
	if err != nil || addr.Zone() != "" {
		writeError(w, http.StatusBadRequest, "bad endpoint address %q", r.PathValue("address"))
		return t, "", addr, false
	}
	return t, pool, addr.Unmap(), true
}

// decode reads the JSON body (limited by ServeHTTP) into v, strictly, or
// answers 400, 408 or 413. Its messages name JSON's types and the
// request's fields, never Go's.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var tooBig *http.MaxBytesError
	var netErr net.Error
	err := dec.Decode(v)
	if err == nil {
		// Only the end of the body may follow; reading to it may still
		// find the body too large or too slow.
		switch more := dec.Decode(&struct{}{}); {
		case more == io.EOF:
		case errors.As(more, &tooBig) || errors.As(more, &netErr):
			err = more
		default:
			err = errors.New("more than one JSON value")
		}
	}
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", MaxBody)
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(w, http.StatusRequestTimeout, "request body too slow")
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "bad JSON: empty body")
	default:
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		msg := "bad JSON"
		switch {
		case errors.As(err, &syntax):
			msg = fmt.Sprintf("bad JSON at byte %d", syntax.Offset)
		case errors.As(err, &typ) && typ.Field == "":
			msg = "bad JSON: want an object"
		case errors.As(err, &typ):
			msg = fmt.Sprintf("bad JSON: field %q: want %s", typ.Field, jsonType(typ.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			msg = "bad JSON: " + strings.TrimPrefix(err.Error(), "json: ")
		case err.Error() == "more than one JSON value":
			msg = "bad JSON: more than one value"
		}
		writeError(w, http.StatusBadRequest, "%s", msg)
	}
	return false
}

// jsonType names what JSON value a field of Go type t takes.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// ReportRequest is the body of POST .../report.
type ReportRequest struct {
	Status        string   `json:"status"` // see ParseStatus
	Load          *float64 `json:"load,omitempty"`
	Connections   *int     `json:"connections,omitempty"`
	Capacity      *int     `json:"capacity,omitempty"`
	WeightPercent *int     `json:"weight_percent,omitempty"`
	Message       string   `json:"message,omitempty"`
	TTL           string   `json:"ttl,omitempty"` // a Go duration, default DefaultTTL
}

// Report turns the request into the store's report, or says what is
// wrong with it.
func (q *ReportRequest) Report() (postgres.Report, error) {
	st, err := ParseStatus(q.Status)
	if err != nil {
		return postgres.Report{}, err
	}
	rep := postgres.Report{Status: st.State, Load: q.Load, Connections: q.Connections, Capacity: q.Capacity,
		WeightPercent: q.WeightPercent, Message: q.Message, TTL: DefaultTTL}
	if st.WeightPercent != nil {
		if q.WeightPercent != nil && *q.WeightPercent != *st.WeightPercent {
			return postgres.Report{}, errors.New("weight_percent and the status's N% differ")
		}
		rep.WeightPercent = st.WeightPercent
	}
	if st.MaxConn != nil {
		if q.Capacity != nil && *q.Capacity != *st.MaxConn {
			return postgres.Report{}, errors.New("capacity and the status's maxconn:N differ")
		}
		rep.Capacity = st.MaxConn
	}
	if rep.Message == "" {
		rep.Message = st.Note
	}
	if q.TTL != "" {
		if rep.TTL, err = time.ParseDuration(q.TTL); err != nil {
			return postgres.Report{}, fmt.Errorf("ttl %q: want a duration such as 30s", q.TTL)
		}
	}
	if err := rep.Validate(); err != nil {
		return postgres.Report{}, err
	}
	return rep, nil
}

// ReportResponse answers a report.
type ReportResponse struct {
	Pool    string `json:"pool"`
	Address string `json:"address"`
	Health  string `json:"health"`  // effective, after the report
	Changed bool   `json:"changed"` // whether the report changed it
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	accepted := false
	if h.onReport != nil {
		defer func() { h.onReport(accepted) }()
	}
	_, pool, addr, ok := h.target(w, r, false)
	if !ok {
		return
	}
	var req ReportRequest
	if !decode(w, r, &req) {
		return
	}
	rep, err := req.Report()
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s", err)
		return
	}
	state, changed, err := h.store.ReportAgent(r.Context(), pool, addr, rep)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	accepted = true
	writeJSON(w, http.StatusOK, ReportResponse{Pool: pool, Address: addr.String(), Health: state.String(), Changed: changed})
}

// AdminRequest is the body of POST .../admin.
type AdminRequest struct {
	State  string `json:"state"` // active, drain or disabled
	Reason string `json:"reason"`
}

// AdminResponse answers an admin request.
type AdminResponse struct {
	Pool    string `json:"pool"`
	Address string `json:"address"`
	Old     string `json:"old"`
	State   string `json:"state"`
}

func (h *Handler) admin(w http.ResponseWriter, r *http.Request) {
	t, pool, addr, ok := h.target(w, r, true)
	if !ok {
		return
	}
	var req AdminRequest
	if !decode(w, r, &req) {
		return
	}
	state, err := zones.ParseAdminState(req.State)
	if err != nil {
		writeError(w, http.StatusBadRequest, "state %q: want active, drain or disabled", req.State)
		return
	}
	if state != zones.AdminActive && strings.TrimSpace(req.Reason) == "" {
		writeError(w, http.StatusBadRequest, "give a reason to %s, for the audit log", state)
		return
	}
	if len(req.Reason) > 1024 {
		writeError(w, http.StatusBadRequest, "reason of %d bytes: want at most 1024", len(req.Reason))
		return
	}
	old, err := h.store.SetAdmin(r.Context(), pool, addr, state, req.Reason, t.Actor())
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AdminResponse{Pool: pool, Address: addr.String(), Old: old.String(), State: state.String()})
}

// Pool is an element of GET /v1/pools.
type Pool struct {
	Zone      string `json:"zone"`
	Name      string `json:"name"`
	Endpoints int    `json:"endpoints"`
	Active    int    `json:"active"`
	Up        int    `json:"up"`
	Down      int    `json:"down"`
	Eligible  int    `json:"eligible"`
}

func (h *Handler) pools(w http.ResponseWriter, r *http.Request) {
	t, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	ps, err := h.store.ListPools(r.Context())
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	out := []Pool{}
	for _, p := range ps {
		if t.MayAct(p.Name) {
			out = append(out, Pool{Zone: p.Zone, Name: p.Name, Endpoints: p.Endpoints, Active: p.Active, Up: p.Up, Down: p.Down, Eligible: p.Eligible})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Endpoint is an element of GET /v1/pools/{pool}/endpoints.
type Endpoint struct {
	Zone          string     `json:"zone"`
	Pool          string     `json:"pool"`
	Address       string     `json:"address"`
	Datacenter    string     `json:"datacenter"`
	Weight        uint32     `json:"weight"`
	Admin         string     `json:"admin"`
	AdminReason   string     `json:"admin_reason,omitempty"`
	Health        string     `json:"health"`
	HealthReason  string     `json:"health_reason,omitempty"`
	HealthUpdated *time.Time `json:"health_updated,omitempty"`
	Eligible      bool       `json:"eligible"`
}

func (h *Handler) endpoints(w http.ResponseWriter, r *http.Request) {
	t, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	pool := zones.CanonicalName(r.PathValue("pool"))
	if !t.MayAct(pool) {
		writeError(w, http.StatusForbidden, "this token is not for pool %s", pool)
		return
	}
	es, err := h.store.ListEndpoints(r.Context(), pool)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	out := []Endpoint{}
	for _, e := range es {
		x := Endpoint{Zone: e.Zone, Pool: e.Pool, Address: e.Addr.String(), Datacenter: e.Datacenter, Weight: e.Weight,
			Admin: e.Admin.String(), AdminReason: e.AdminReason, Health: e.Health.String(), HealthReason: e.HealthReason, Eligible: e.Eligible}
		if !e.HealthUpdated.IsZero() {
			u := e.HealthUpdated
			x.HealthUpdated = &u
		}
		out = append(out, x)
	}
	writeJSON(w, http.StatusOK, out)
}

// Package statuspage is the health checker's status page: server-rendered
// HTML, without JavaScript, showing every pool's endpoints with their
// effective state and why, what their agents report, each live checker's
// verdict and the latest changes, and a world map of the datacenters.
//
//	GET  /status          the page (?refresh=N reloads it every N seconds)
//	POST /status/login    token=...: check an API token, keep it in a cookie
//	POST /status/logout   forget it
//	POST /status/admin    pool, address, action (drain, enable), reason
//
// Reading the page needs no token, like /metrics beside it: bind the
// checker's --listen address to a private network. Drain and enable need
// an operator token, as in the health-agent API (agentapi.MayAdmin), and
// go through the same SetAdmin, audited with the token's label as actor.
//
// The token is kept in an HttpOnly, SameSite=Strict cookie (Secure when
// the request came over TLS, or through a TLS-ending proxy that sets
// X-Forwarded-Proto) for /status only, and checked against the
// store again on every action, so a revoked token stops working at once.
// It is never compared in Go: the store looks it up by its SHA-256 hash
// (agentapi.PG.CheckToken says why that needs no constant-time
// comparison). Forms are refused unless the browser says they come from
// this page's origin (Sec-Fetch-Site, Origin or Referer against Host),
// which with the SameSite cookie keeps other sites from posting them;
// there is no CSRF token, so no other secret to compare. The origin is
// checked before the body is read, the body (8 KiB at most, else 413)
// before the token. Refused requests change nothing, and errors show no
// internal details: those, and panics (500), go to the log.
package statuspage

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meridiandns/meridian/health/agentapi"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Source is what the page reads and does. Implementations must be safe
// for concurrent use; PG is the PostgreSQL one.
type Source interface {
	// Overview returns every pool's health, in one consistent read.
	Overview(ctx context.Context) (*postgres.Overview, error)
	// CheckToken returns a token's description, or postgres.ErrBadToken.
	CheckToken(ctx context.Context, token string) (postgres.TokenInfo, error)
	// SetAdmin sets an endpoint's admin state and audits it, returning the
	// old state; postgres.ErrUnknownPool or ErrUnknownEndpoint when there
	// is no such endpoint.
	SetAdmin(ctx context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error)
}

// Events is how many of its latest changes the page shows per endpoint.
const Events = 5

// PG is the Source of a PostgreSQL database. Tokens and admin actions are
// the health-agent API's own (agentapi.PG), so they behave as there.
type PG struct{ agentapi.PG }

// Overview reads the overview with the last Events changes per endpoint.
func (s PG) Overview(ctx context.Context) (*postgres.Overview, error) {
	return postgres.ReadOverview(ctx, s.DB, Events)
}

// CookieName is the cookie that keeps the operator's token.
const CookieName = "meridian_status_token"

// cookieAge bounds how long a browser keeps the token.
const cookieAge = 12 * time.Hour

// maxForm bounds the body of a form post: a reason of 1024 bytes,
// percent-encoded, and the rest fits.
const maxForm = 8 << 10

// maxReason is the longest reason accepted, as in the agent API.
const maxReason = 1024

var (
	//go:embed page.html
	pageHTML string
	//go:embed style.css
	styleCSS string

	tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"css": func() template.CSS { return template.CSS(styleCSS) },
	}).Parse(pageHTML))

	// csp allows the page's one stylesheet (by hash) and nothing else to
	// load, run or be framed; forms may only post back here.
	csp = func() string {
		h := sha256.Sum256([]byte(styleCSS))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) +
			"'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	}()
)

// Handler serves the status page.
type Handler struct {
	src     Source
	checker string
	logger  *slog.Logger
	mux     *http.ServeMux
	serve   http.Handler // route, under agentapi.Recover
}

var _ http.Handler = (*Handler)(nil)

// New returns the page over src for the checker named checker; logger
// (nil: none) gets the errors users are not shown, and the admin actions.
func New(src Source, checker string, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{src: src, checker: checker, logger: logger, mux: http.NewServeMux()}
	h.serve = agentapi.Recover(http.HandlerFunc(h.route), logger, func(w http.ResponseWriter, _ *http.Request) {
		securityHeaders(w)
		h.fail(w, http.StatusInternalServerError, "internal error: the checker's log says more")
	})
	h.mux.HandleFunc("GET /status", h.page)
	h.mux.HandleFunc("POST /status/login", h.login)
	h.mux.HandleFunc("POST /status/logout", h.logout)
	h.mux.HandleFunc("POST /status/admin", h.admin)
	return h
}

// ServeHTTP serves r with the page's security headers. Every body is
// limited to maxForm, and a panic answers 500 "internal error", its
// details only in the log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The limit gets the server's own writer, so that the server closes
	// the connection of a request that was too large.
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	h.serve.ServeHTTP(w, r)
}

// securityHeaders sets the headers every answer carries.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Same-origin requests keep their Referer, which the CSRF check may
	// need; no other site learns our URLs.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if _, pattern := h.mux.Handler(r); pattern == "" {
		code := http.StatusNotFound
		switch r.URL.Path {
		case "/status", "/status/login", "/status/logout", "/status/admin":
			code = http.StatusMethodNotAllowed
		}
		h.fail(w, code, "%s", strings.ToLower(http.StatusText(code)))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// fail answers an error page. Messages never carry internal details.
func (h *Handler) fail(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = tmpl.ExecuteTemplate(w, "error", struct{ Status, Message string }{
		Status: fmt.Sprintf("%d %s", code, http.StatusText(code)), Message: fmt.Sprintf(format, args...)})
}

// internal logs err and answers 500 without it.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.Error("Status page request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	h.fail(w, http.StatusInternalServerError, "internal error: the checker's log says more")
}

// token returns the token in the request's cookie: nil without one, or
// when the store no longer knows it (then the cookie is dropped).
func (h *Handler) token(w http.ResponseWriter, r *http.Request) (*postgres.TokenInfo, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	t, err := h.src.CheckToken(r.Context(), c.Value)
	if errors.Is(err, postgres.ErrBadToken) {
		clearCookie(w, r)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// overTLS reports whether the browser reached us over TLS: directly, or
// through a proxy that ended TLS and says so (X-Forwarded-Proto). The
// header only ever adds Secure to the cookie, which a client cannot turn
// to its advantage.
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/status", MaxAge: int(cookieAge / time.Second),
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/status", MaxAge: -1,
		HttpOnly: true, Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	ov, err := h.src.Overview(r.Context())
	if err != nil {
		h.logger.Error("Status page: reading the store failed", "err", err)
		h.fail(w, http.StatusServiceUnavailable, "internal error: the store does not answer; this checker's log says more")
		return
	}
	tok, err := h.token(w, r)
	var problem string
	switch {
	case errors.Is(err, postgres.ErrBadToken):
		problem = "Your token is no longer valid (revoked?); sign in again."
	case err != nil:
		h.logger.Error("Status page: checking a token failed", "err", err)
		problem = "Your token could not be checked just now."
	}
	q := r.URL.Query()
	pg := build(ov, h.checker, tok, parseFilter(q.Get("q"), q.Get("state")))
	if n, err := strconv.Atoi(q.Get("refresh")); err == nil && n >= 5 && n <= 3600 {
		pg.Refresh = n
	}
	pg.Notice = noticeOf(q)
	pg.Error = problem
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := tmpl.ExecuteTemplate(w, "page", pg); err != nil {
		h.logger.Error("Status page: rendering failed", "err", err)
	}
}

// noticeOf says what the action that redirected here did, from the
// query it set; anything else shows nothing.
func noticeOf(q url.Values) string {
	addr, err := netip.ParseAddr(q.Get("address"))
	pool := zones.CanonicalName(q.Get("pool"))
	switch q.Get("done") {
	case "signin":
		return "Signed in."
	case "signout":
		return "Signed out; the token is forgotten."
	case "drain":
		if err == nil && pool != "." {
			return fmt.Sprintf("Drained %s of %s: DNS servers stop answering it shortly.", addr, pool)
		}
	case "enable":
		if err == nil && pool != "." {
			return fmt.Sprintf("Enabled %s of %s.", addr, pool)
		}
	}
	return ""
}

// sameOrigin reports whether a form post comes from a page of this very
// origin, as the browser says: Sec-Fetch-Site when it sends it, and
// Origin, else Referer, against Host. A post that says nothing is
// refused: every browser sends Origin with a POST.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	if from == "" || r.Host == "" {
		return false
	}
	u, err := url.Parse(from)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// form checks a post's origin and parses its bounded body; it answers
// the error itself.
func (h *Handler) form(w http.ResponseWriter, r *http.Request) bool {
	if !sameOrigin(r) {
		h.fail(w, http.StatusForbidden, "cross-origin request refused: use the form on the status page")
		return false
	}
	// ServeHTTP limited the body to maxForm.
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", maxForm)
		} else {
			h.fail(w, http.StatusBadRequest, "bad form")
		}
		return false
	}
	return true
}

// redirect sends the browser back to the page, which says what happened.
func redirect(w http.ResponseWriter, r *http.Request, q url.Values) {
	http.Redirect(w, r, "/status?"+q.Encode(), http.StatusSeeOther)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.form(w, r) {
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		h.fail(w, http.StatusBadRequest, "give a token")
		return
	}
	t, err := h.src.CheckToken(r.Context(), token)
	if errors.Is(err, postgres.ErrBadToken) {
		h.fail(w, http.StatusUnauthorized, "missing or invalid token")
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	setCookie(w, r, token)
	h.logger.Info("Status page: signed in", "actor", t.Actor(), "kind", t.Kind)
	redirect(w, r, url.Values{"done": {"signin"}})
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.form(w, r) {
		return
	}
	clearCookie(w, r)
	redirect(w, r, url.Values{"done": {"signout"}})
}

// actions are the admin actions the page offers.
var actions = map[string]zones.AdminState{"drain": zones.AdminDrain, "enable": zones.AdminActive}

func (h *Handler) admin(w http.ResponseWriter, r *http.Request) {
	if !h.form(w, r) {
		return
	}
	t, err := h.token(w, r)
	switch {
	case errors.Is(err, postgres.ErrBadToken):
		h.fail(w, http.StatusUnauthorized, "missing or invalid token: sign in again")
		return
	case err != nil:
		h.internal(w, r, err)
		return
	case t == nil:
		h.fail(w, http.StatusUnauthorized, "sign in with an operator token first")
		return
	}
	f := r.PostForm
	action := f.Get("action")
	state, ok := actions[action]
	if !ok {
		h.fail(w, http.StatusBadRequest, "action %q: want drain or enable", action)
		return
	}
	if strings.TrimSpace(f.Get("pool")) == "" {
		h.fail(w, http.StatusBadRequest, "no pool")
		return
	}
	pool := zones.CanonicalName(f.Get("pool"))
	addr, err := netip.ParseAddr(f.Get("address"))
	if err != nil || addr.Zone() != "" {
		h.fail(w, http.StatusBadRequest, "bad endpoint address %q", f.Get("address"))
		return
	}
	addr = addr.Unmap()
	if err := agentapi.MayAdmin(*t, pool); err != nil {
		h.fail(w, http.StatusForbidden, "%s", err)
		return
	}
	reason := strings.TrimSpace(f.Get("reason"))
	switch {
	case state != zones.AdminActive && reason == "":
		h.fail(w, http.StatusBadRequest, "give a reason to %s, for the audit log", action)
		return
	case len(reason) > maxReason:
		h.fail(w, http.StatusBadRequest, "reason of %d bytes: want at most %d", len(reason), maxReason)
		return
	}
	old, err := h.src.SetAdmin(r.Context(), pool, addr, state, reason, t.Actor())
	switch {
	case errors.Is(err, postgres.ErrUnknownPool):
		h.fail(w, http.StatusNotFound, "unknown pool %s", pool)
		return
	case errors.Is(err, postgres.ErrUnknownEndpoint):
		h.fail(w, http.StatusNotFound, "pool %s has no endpoint %s", pool, addr)
		return
	case err != nil:
		h.internal(w, r, err)
		return
	}
	h.logger.Info("Admin state changed", "pool", pool, "address", addr, "old", old.String(), "new", state.String(),
		"actor", t.Actor(), "reason", reason, "via", "status page")
	redirect(w, r, url.Values{"done": {action}, "pool": {pool}, "address": {addr.String()}})
}

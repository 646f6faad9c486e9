package mgmtapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Problem is an error answer, as application/problem+json (RFC 9457).
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors names each field at fault, as a path into the request's
	// body ("endpoints[1].address"), or "" for the request as a whole.
	Errors []FieldError `json:"errors,omitempty"`
	// Reasons are the guard rails' reasons of a refusal.
	Reasons []string `json:"reasons,omitempty"`
	// header is set on the answer (WWW-Authenticate, Retry-After).
	header http.Header
}

// FieldError is one problem with one field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", e.Field, e.Detail)
	}
	return b.String()
}

// problemType makes the type URI of a kind of problem.
func problemType(kind string) string { return "urn:meridian:problem:" + kind }

func problem(status int, kind, title, detail string) *Problem {
	return &Problem{Type: problemType(kind), Title: title, Status: status, Detail: detail}
}

// Problems of the API, by kind.
func invalid(errs ...FieldError) *Problem {
	p := problem(http.StatusBadRequest, "validation", "The request is not valid", "")
	p.Errors = errs
	return p
}

func invalidField(field, format string, args ...any) *Problem {
	return invalid(FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func notFound(format string, args ...any) *Problem {
	return problem(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf(format, args...))
}

func forbidden(format string, args ...any) *Problem {
	return problem(http.StatusForbidden, "forbidden", "The token may not do this", fmt.Sprintf(format, args...))
}

func unauthorized(detail string, bad bool) *Problem {
	p := problem(http.StatusUnauthorized, "unauthorized", "A valid bearer token is required", detail)
	v := `Bearer realm="meridian"`
	if bad {
		v += `, error="invalid_token"`
	}
	p.header = http.Header{"WWW-Authenticate": {v}}
	return p
}

func preconditionFailed(detail string) *Problem {
	return problem(http.StatusPreconditionFailed, "precondition-failed", "The resource is not as the request expects", detail)
}

func preconditionRequired(detail string) *Problem {
	return problem(http.StatusPreconditionRequired, "precondition-required", "If-Match is required", detail)
}

func tooLarge(limit int64) *Problem {
	return problem(http.StatusRequestEntityTooLarge, "too-large", "The request body is too large", fmt.Sprintf("at most %d bytes", limit))
}

func tooMany(retry int) *Problem {
	p := problem(http.StatusTooManyRequests, "rate-limited", "Too many requests", "slow down")
	p.header = http.Header{"Retry-After": {strconv.Itoa(retry)}}
	return p
}

func refused(e *RefusedError) *Problem {
	p := problem(http.StatusConflict, "refused", "The change is refused by the guard rails", "repeat with force=true to make it anyway")
	p.Reasons = e.Reasons
	return p
}

func unsupported(err error) *Problem {
	return problem(http.StatusConflict, "unsupported", "This server cannot make this change", err.Error())
}

func internal() *Problem {
	return problem(http.StatusInternalServerError, "internal", "Internal error", "see the server's log")
}

// writeProblem writes p; a Problem in err's chain, else an internal
// error whose details stay in the log.
func writeProblem(w http.ResponseWriter, p *Problem) {
	for k, v := range p.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// asProblem turns a backend or handler error into a Problem; ok is false
// for an error the client cannot act on (logged, answered 500).
func asProblem(err error) (p *Problem, ok bool) {
	var re *RefusedError
	switch {
	case errors.As(err, &p):
		return p, true
	case errors.As(err, &re):
		return refused(re), true
	case errors.Is(err, ErrNotFound):
		return notFound("%v", err), true
	case errors.Is(err, ErrUnsupported):
		return unsupported(err), true
	}
	return internal(), false
}

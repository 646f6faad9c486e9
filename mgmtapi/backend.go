// Package mgmtapi is Meridian's management API (docs/api.md): zones,
// their records, datacenters, pools, endpoints and admin states, the
// checkers and the audit log, as JSON under /api/v1, described by the
// OpenAPI 3 document it serves (openapi.yaml).
//
// Writes are read-modify-write of one zone inside the Backend's
// transaction (Backend.Change): the zone is read under the store's write
// lock, the request's preconditions (If-Match, RFC 9110 section 13.1.1)
// are checked against it, the change is made and validated by the zones
// package, and the store applies the difference through its one write
// path, audited. So two writers never overwrite each other unseen, and a
// request that fails changes nothing. The package knows no store: the
// server wires a Backend (PostgreSQL, or the zone files' journal).
package mgmtapi

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/meridiandns/meridian/zones"
)

// Backend is where the API reads and writes.
type Backend interface {
	// Zones lists every zone.
	Zones(ctx context.Context) ([]ZoneSummary, error)
	// Zone reads one zone as it is now, with its endpoints' health;
	// ErrNotFound when there is none. The caller may change what it gets.
	Zone(ctx context.Context, origin string) (*zones.Zone, error)
	// Change reads zone origin under the store's write lock (nil when
	// there is none), calls change with it, which the caller may change
	// and return, and makes the store hold the zone change returns, or
	// deletes the zone when it returns nil; all or nothing, audited as
	// w.Actor's. An error of change is returned as it is. A change the
	// store's guard rails refuse returns a *RefusedError.
	Change(ctx context.Context, origin string, change func(cur *zones.Zone) (*zones.Zone, error), w Write) (*Result, error)
	// SetAdmin sets the admin state of the endpoint addr of pool in zone
	// origin, audited, and returns the state before; ErrNotFound when
	// there is no such endpoint.
	SetAdmin(ctx context.Context, origin, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error)
	// Checkers lists the health checkers that report to the store.
	Checkers(ctx context.Context) ([]Checker, error)
	// Audit returns the newest entries of the audit log.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// Authenticate returns who a bearer token is, or ErrBadToken.
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Errors a Backend returns, for errors.Is.
var (
	// ErrNotFound: no such zone or endpoint.
	ErrNotFound = errors.New("not found")
	// ErrBadToken: the token is malformed, unknown or revoked.
	ErrBadToken = errors.New("invalid token")
	// ErrUnsupported: the backend cannot do this at all (a zone-file
	// server cannot create a zone); the error says why.
	ErrUnsupported = errors.New("not supported by this server")
)

// RefusedError is the store's refusal of a change by its guard rails
// (deleting a pool, most of a zone, a whole zone). The request may repeat
// it with force=true.
type RefusedError struct{ Reasons []string }

func (e *RefusedError) Error() string { return "refused: " + strings.Join(e.Reasons, "; ") }

// Write says who writes and how.
type Write struct {
	Actor  string // for the audit log
	Force  bool   // past the guard rails
	DryRun bool   // compute the diff, change nothing
}

// Result is what a write changed.
type Result struct {
	Applied bool     // committed (false: a dry run, or nothing to change)
	Version int64    // the store's data version after it (0 when it has none)
	Diff    []string // one change per line: "+ www.example.com. 300 IN A 192.0.2.1"
}

// ZoneSummary is one zone of the list.
type ZoneSummary struct {
	Name        string `json:"name"`
	Serial      uint32 `json:"serial"`
	Records     int    `json:"records"`
	Datacenters int    `json:"datacenters"`
	Pools       int    `json:"pools"`
	Endpoints   int    `json:"endpoints"`
}

// Checker is a health checker as the store knows it.
type Checker struct {
	ID       string    `json:"id"`
	Region   string    `json:"region"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Live     bool      `json:"live"`
}

// AuditQuery selects audit entries: of one zone or all, before a time,
// at most Limit of them, newest first.
type AuditQuery struct {
	Zone   string
	Before time.Time
	Limit  int
}

// AuditEntry is one entry of the audit log: a change of a zone (Diff) or
// of an endpoint's admin state.
type AuditEntry struct {
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	Zone     string    `json:"zone"`
	Kind     string    `json:"kind"`              // "change" or "admin"
	Version  int64     `json:"version,omitempty"` // of a change
	Diff     []string  `json:"diff,omitempty"`
	Pool     string    `json:"pool,omitempty"` // of an admin state change
	Address  string    `json:"address,omitempty"`
	OldState string    `json:"old_state,omitempty"`
	NewState string    `json:"new_state,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

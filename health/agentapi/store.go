package agentapi

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// PG is the Store of a PostgreSQL database: a *pgxpool.Pool (or, for one
// request at a time, a *pgx.Conn).
type PG struct {
	DB interface {
		postgres.DB
		postgres.Querier
	}
}

// CheckToken looks the token up by its SHA-256 hash (postgres.CheckToken).
// No secret is compared in Go, and that is acceptable without a
// constant-time comparison: the database's index lookup compares hashes,
// so its timing could tell at most how much of a guess's hash matched a
// stored one, which does not help find a token with that hash.
func (s PG) CheckToken(ctx context.Context, token string) (postgres.TokenInfo, error) {
	return postgres.CheckToken(ctx, s.DB, token)
}

func (s PG) ReportAgent(ctx context.Context, pool string, addr netip.Addr, r postgres.Report) (zones.HealthState, bool, error) {
	return postgres.ReportAgent(ctx, s.DB, pool, addr, r)
}

func (s PG) SetAdmin(ctx context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error) {
	return postgres.SetAdmin(ctx, s.DB, pool, addr, state, reason, actor)
}

func (s PG) ListPools(ctx context.Context) ([]postgres.PoolInfo, error) {
	return postgres.ListPools(ctx, s.DB, "")
}

func (s PG) ListEndpoints(ctx context.Context, pool string) ([]postgres.EndpointInfo, error) {
	return postgres.ListEndpoints(ctx, s.DB, pool)
}

// NewServer returns a server of handler on addr with limits fit for the
// open network: 5 s to read the headers (a client that sends them slowly
// is cut off then), 10 s the whole request, 10 s to write the response,
// 60 s idle between requests, and 16 KiB of headers (431 beyond). The
// handlers limit bodies themselves (Handler: MaxBody).
func NewServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

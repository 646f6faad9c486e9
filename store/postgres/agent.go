package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meridiandns/meridian/zones"
)

// The health-agent API's store: bearer tokens, and agent reports that
// override the probe quorum while they are fresh.
//
// Tokens are 32 random bytes, base64url without padding, prefixed
// TokenPrefix; only their SHA-256 is stored. CheckToken hashes what it is
// given and looks the hash up, so the lookup's timing depends on the hash,
// never on how much of the secret was right.
//
// An agent report (ReportAgent) decides an endpoint's effective health
// until it expires: up is up, down is down, drain is down with the reason
// "agent: drain: <message>". Then the quorum of the checkers decides again
// (ExpireReports, which checkers call with each heartbeat, or any later
// recomputation). Both go through recomputeHealth (health.go), which
// writes endpoint_health only when the effective state or the category of
// its reason (agent or quorum) changes.

// TokenPrefix starts every token.
const TokenPrefix = "mrd_"

// Token kinds.
const (
	TokenAgent    = "agent"    // reports on the endpoints of one pool
	TokenOperator = "operator" // any pool, admin states too
	TokenAPI      = "api"      // the management API, with scopes (mgmtapi)
)

// Errors of the token and agent functions, for errors.Is.
var (
	// ErrBadToken: the token is malformed, unknown or revoked. Which of
	// them is deliberately not said.
	ErrBadToken = errors.New("invalid token")
	// ErrUnknownToken: no token has the id given.
	ErrUnknownToken = errors.New("unknown token")
	// ErrBadReport: an agent report with a bad status or an out of range
	// value.
	ErrBadReport = errors.New("bad agent report")
)

// MaxReportTTL bounds how long an agent report is trusted.
const MaxReportTTL = time.Hour

// TokenInfo describes a token, never its secret.
type TokenInfo struct {
	ID      int64
	Kind    string // TokenAgent or TokenOperator
	PoolID  int64  // 0 for operator tokens
	Pool    string // the pool's name; "" for operator tokens
	Label   string
	Scopes  []string // of an api token; nil for the other kinds
	Created time.Time
	Revoked time.Time // zero while valid
}

// Actor is who a token acts as in the audit log: "token:<label>", or
// "token:#<id>" for a token without a label.
func (t TokenInfo) Actor() string {
	if t.Label != "" {
		return "token:" + t.Label
	}
	return fmt.Sprintf("token:#%d", t.ID)
}

// MayAct reports whether the token may act on pool: an operator token on
// any, an agent token on its own.
func (t TokenInfo) MayAct(pool string) bool {
	return t.Kind == TokenOperator || (t.Kind == TokenAgent && t.Pool == zones.CanonicalName(pool))
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewToken makes a new random token and returns it with its SHA-256, the
// only form in which it is kept.
func NewToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("new token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

// CreateToken creates a token of kind (TokenAgent, for pool, or
// TokenOperator, with pool "") and returns it, to be shown once, and its
// id.
func CreateToken(ctx context.Context, db DB, kind, pool, label string) (token string, id int64, err error) {
	switch kind {
	case TokenAgent:
		if strings.TrimSpace(pool) == "" {
			return "", 0, errors.New("postgres: create token: an agent token needs a pool")
		}
		pool = zones.CanonicalName(pool)
	case TokenOperator:
		if pool != "" {
			return "", 0, errors.New("postgres: create token: an operator token is for every pool; give no pool")
		}
	default:
		return "", 0, fmt.Errorf("postgres: create token: kind %q, want agent or operator", kind)
	}
	return insertToken(ctx, db, kind, pool, label, nil)
}

// CreateAPIToken creates a token of the management API with scopes, which
// the caller has checked (mgmtapi.ParseScope), and returns it, to be shown
// once, and its id.
func CreateAPIToken(ctx context.Context, db DB, label string, scopes []string) (token string, id int64, err error) {
	if len(scopes) == 0 {
		return "", 0, errors.New("postgres: create token: an api token needs a scope")
	}
	return insertToken(ctx, db, TokenAPI, "", label, scopes)
}

// insertToken makes a token and stores its hash, with the id of pool for
// an agent token.
func insertToken(ctx context.Context, db DB, kind, pool, label string, scopes []string) (token string, id int64, err error) {
	token, _, err = NewToken()
	if err != nil {
		return "", 0, fmt.Errorf("postgres: create token: %w", err)
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return "", 0, fmt.Errorf("postgres: create token: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	var poolID *int64
	if kind == TokenAgent {
		rows, err := tx.Query(ctx, "SELECT id FROM pools WHERE name = $1", pool)
		if err != nil {
			return "", 0, fmt.Errorf("postgres: create token: find pool %s: %w", pool, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return "", 0, fmt.Errorf("postgres: create token: find pool %s: %w", pool, err)
		}
		switch len(ids) {
		case 0:
			return "", 0, fmt.Errorf("postgres: create token: no pool %s: %w", pool, ErrUnknownPool)
		case 1:
			poolID = &ids[0]
		default:
			return "", 0, fmt.Errorf("postgres: create token: pool %s is in several zones; refusing to guess", pool)
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	if err := tx.QueryRow(ctx, "INSERT INTO api_tokens (kind, pool_id, label, hash, scopes) VALUES ($1, $2, $3, $4, $5) RETURNING id",
		kind, poolID, label, hashToken(token), scopes).Scan(&id); err != nil {
		return "", 0, fmt.Errorf("postgres: create token: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", 0, fmt.Errorf("postgres: create token: commit: %w", err)
	}
	return token, id, nil
}

const tokenColumns = `t.id, t.kind, coalesce(t.pool_id, 0), coalesce(p.name, ''), t.label, t.scopes, t.created_at, t.revoked_at
	FROM api_tokens t LEFT JOIN pools p ON p.id = t.pool_id`

func scanToken(r pgx.CollectableRow) (TokenInfo, error) {
	var t TokenInfo
	var revoked *time.Time
	err := r.Scan(&t.ID, &t.Kind, &t.PoolID, &t.Pool, &t.Label, &t.Scopes, &t.Created, &revoked)
	if len(t.Scopes) == 0 {
		t.Scopes = nil
	}
	if revoked != nil {
		t.Revoked = *revoked
	}
	return t, err
}

// ListTokens lists every token, revoked ones too, by id.
func ListTokens(ctx context.Context, q Querier) ([]TokenInfo, error) {
	rows, err := q.Query(ctx, "SELECT "+tokenColumns+" ORDER BY t.id")
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes token id for good. Revoking a revoked token changes
// nothing.
func RevokeToken(ctx context.Context, db DB, id int64) error {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return fmt.Errorf("postgres: revoke token: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	tag, err := tx.Exec(ctx, "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("postgres: revoke token %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke token %d: %w", id, ErrUnknownToken)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: revoke token %d: commit: %w", id, err)
	}
	return nil
}

// CheckToken returns the token's description, or ErrBadToken when it is
// malformed, unknown or revoked.
func CheckToken(ctx context.Context, q Querier, token string) (TokenInfo, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 128 {
		return TokenInfo{}, ErrBadToken
	}
	rows, err := q.Query(ctx, "SELECT "+tokenColumns+" WHERE t.hash = $1 AND t.revoked_at IS NULL", hashToken(token))
	if err != nil {
		return TokenInfo{}, fmt.Errorf("postgres: check token: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanToken)
	if err != nil {
		return TokenInfo{}, fmt.Errorf("postgres: check token: %w", err)
	}
	if len(ts) != 1 {
		return TokenInfo{}, ErrBadToken
	}
	return ts[0], nil
}

// Agent report statuses.
const (
	AgentUp    = "up"
	AgentDown  = "down"
	AgentDrain = "drain" // down, for maintenance: "agent: drain: <message>"
)

// Report is what an agent says of its endpoint. The optional values are
// nil when not reported.
type Report struct {
	Status        string   // AgentUp, AgentDown or AgentDrain
	Load          *float64 // 0 to 1
	Connections   *int     // >= 0
	Capacity      *int     // >= 0, e.g. HAProxy's maxconn:N
	WeightPercent *int     // >= 0, e.g. HAProxy's 75%
	Message       string
	TTL           time.Duration // how long the report holds: more than 0, at most MaxReportTTL
}

// Validate returns an ErrBadReport error saying what is wrong with r.
func (r *Report) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadReport, fmt.Sprintf(format, args...))
	}
	nonNeg := func(name string, v *int) error {
		if v != nil && *v < 0 {
			return bad("%s %d: want 0 or more", name, *v)
		}
		return nil
	}
	switch {
	case !slices.Contains([]string{AgentUp, AgentDown, AgentDrain}, r.Status):
		return bad("status %q: want up, down or drain", r.Status)
	case r.Load != nil && !(*r.Load >= 0 && *r.Load <= 1): // NaN too
		return bad("load %v: want 0 to 1", *r.Load)
	case r.TTL <= 0 || r.TTL > MaxReportTTL:
		return bad("ttl %s: want more than 0 and at most %s", r.TTL, MaxReportTTL)
	case len(r.Message) > 1024:
		return bad("message of %d bytes: want at most 1024", len(r.Message))
	}
	for _, v := range []struct {
		name string
		v    *int
	}{{"connections", r.Connections}, {"capacity", r.Capacity}, {"weight percent", r.WeightPercent}} {
		if err := nonNeg(v.name, v.v); err != nil {
			return err
		}
		if v.v != nil && *v.v > 1<<31-1 {
			return bad("%s %d: too large", v.name, *v.v)
		}
	}
	return nil
}

// ReportAgent stores an agent's report on the endpoint addr of pool and
// recomputes the endpoint's effective health, which the report decides
// until it expires. It returns the effective state and whether it
// changed. A bad report changes nothing.
func ReportAgent(ctx context.Context, db DB, pool string, addr netip.Addr, r Report) (effective zones.HealthState, changed bool, err error) {
	if !addr.IsValid() {
		return 0, false, errors.New("postgres: agent report: no endpoint address")
	}
	if err := r.Validate(); err != nil {
		return 0, false, fmt.Errorf("postgres: agent report: %w", err)
	}
	pool = zones.CanonicalName(pool)
	what := fmt.Sprintf("postgres: agent report on pool %s endpoint %s", pool, addr)
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, false, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback(context.Background())
	if err := lockVersion(ctx, tx); err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	id, _, _, _, err := findEndpoint(ctx, tx, pool, addr)
	if err != nil {
		return 0, false, err
	}
	var load *float32
	if r.Load != nil {
		l := float32(*r.Load)
		load = &l
	}
	// What the last fresh report said that shapes answers: a change of it
	// must reach the DNS servers even when the health does not change.
	var oldLoad *float32
	var oldPct *int32
	var shed float32
	err = tx.QueryRow(ctx, `SELECT a.load, a.weight_percent, p.shed_load FROM endpoints e JOIN pools p ON p.id = e.pool_id
		LEFT JOIN agent_reports a ON a.endpoint_id = e.id AND a.expires_at > now() WHERE e.id = $1`, id).Scan(&oldLoad, &oldPct, &shed)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO agent_reports (endpoint_id, status, load, connections, capacity, weight_percent, message, reported_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + $8 * interval '1 microsecond')
		ON CONFLICT (endpoint_id) DO UPDATE SET status = excluded.status, load = excluded.load, connections = excluded.connections,
			capacity = excluded.capacity, weight_percent = excluded.weight_percent, message = excluded.message,
			reported_at = excluded.reported_at, expires_at = excluded.expires_at`,
		id, r.Status, load, r.Connections, r.Capacity, r.WeightPercent, r.Message, r.TTL.Microseconds()); err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if weightMoved(oldPct, r.WeightPercent) || (shed > 0 && loadMoved(oldLoad, load, shed)) {
		// Touching the health row fires the change trigger: the DNS
		// servers reload the zone and pick up the new weight.
		if _, err := tx.Exec(ctx, `INSERT INTO endpoint_health (endpoint_id) VALUES ($1)
			ON CONFLICT (endpoint_id) DO UPDATE SET updated_at = now()`, id); err != nil {
			return 0, false, fmt.Errorf("%s: %w", what, err)
		}
	}
	return recomputeAndCommit(ctx, tx, what, id)
}

// expiredSQL finds the endpoints whose agent report has expired but whose
// stored health still comes from an agent: once recomputed, the reason is
// the quorum's, so each expiry is handled once.
const expiredSQL = `SELECT a.endpoint_id FROM agent_reports a JOIN endpoint_health h ON h.endpoint_id = a.endpoint_id
	WHERE a.expires_at <= now() AND h.reason LIKE 'agent:%' ORDER BY 1`

// ExpireReports recomputes the endpoints whose agent reports have expired,
// so that the quorum of the checkers decides their health again, and
// returns how many it recomputed. With nothing expired it takes no lock
// and writes nothing.
func ExpireReports(ctx context.Context, db DB) (int, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	var due bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS ("+expiredSQL+")").Scan(&due); err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: %w", err)
	}
	if !due {
		return 0, nil
	}
	// The version row first, as every writer of endpoint_health; then
	// look again, under the lock.
	if err := lockVersion(ctx, tx); err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: %w", err)
	}
	rows, err := tx.Query(ctx, expiredSQL)
	if err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: %w", err)
	}
	if _, err := recomputeHealth(ctx, tx, ids); err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: expire agent reports: commit: %w", err)
	}
	return len(ids), nil
}

// weightMoved reports whether an agent's weight percentage changed.
func weightMoved(old *int32, now *int) bool {
	switch {
	case old == nil && now == nil:
		return false
	case old == nil || now == nil:
		return true
	}
	return int(*old) != *now
}

// loadBucket places a load in tenths of the shedding range above
// threshold (0 below it), so that answers follow load in steps rather
// than reloading every DNS server on every report.
func loadBucket(l *float32, threshold float32) int {
	if l == nil || *l <= threshold {
		return 0
	}
	return 1 + int(10*(*l-threshold)/(1-threshold))
}

func loadMoved(old, now *float32, threshold float32) bool {
	return loadBucket(old, threshold) != loadBucket(now, threshold)
}

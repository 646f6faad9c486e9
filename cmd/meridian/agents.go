package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// agentToken is one token of the health.agent_tokens setting: its SHA-256
// (never the token itself) and what it may do.
type agentToken struct {
	// Pool is the pool an agent token may report for; empty with Operator.
	Pool string `mapstructure:"pool"`
	// Operator tokens act on any pool and may drain and enable.
	Operator bool `mapstructure:"operator"`
	// SHA256 is the hex SHA-256 of the token ("meridian agent-token"
	// prints both).
	SHA256 string `mapstructure:"sha256"`
	Label  string `mapstructure:"label"`
}

// memAgents is the health-agent API's store when "meridian serve" runs
// without a database: tokens from the configuration, reports and admin
// states in memory (store.Health), laid over the zone files.
type memAgents struct {
	tokens []agentToken
	hashes [][]byte
	health *store.Health
	logger *slog.Logger
}

func newMemAgents(tokens []agentToken, h *store.Health, logger *slog.Logger) (*memAgents, error) {
	m := &memAgents{tokens: tokens, health: h, logger: logger}
	for i, t := range tokens {
		b, ok := tokenHash(t.SHA256)
		if !ok {
			return nil, fmt.Errorf("health.agent_tokens[%d]: sha256 must be 64 hex digits", i)
		}
		if t.Operator == (t.Pool != "") {
			return nil, fmt.Errorf("health.agent_tokens[%d]: give either pool or operator: true", i)
		}
		m.hashes = append(m.hashes, b)
	}
	return m, nil
}

// tokenHash decodes the hex SHA-256 of a token in the configuration
// (health.agent_tokens, api.tokens).
func tokenHash(s string) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	return b, err == nil && len(b) == sha256.Size
}

// matchToken returns the index of the hash of token among hashes, or -1.
// It compares the token's hash with every one in constant time, all of
// them whichever matches and without a branch on the comparisons, so that
// timing says nothing of which came close, or of which matched.
func matchToken(hashes [][]byte, token string) int {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, h := range hashes {
		found = subtle.ConstantTimeSelect(subtle.ConstantTimeCompare(sum[:], h), i, found)
	}
	return found
}

// CheckToken finds the token among the configured ones (matchToken).
func (m *memAgents) CheckToken(_ context.Context, token string) (postgres.TokenInfo, error) {
	found := matchToken(m.hashes, token)
	if found < 0 {
		return postgres.TokenInfo{}, postgres.ErrBadToken
	}
	t := m.tokens[found]
	info := postgres.TokenInfo{ID: int64(found + 1), Kind: postgres.TokenAgent, Pool: zones.CanonicalName(t.Pool), Label: t.Label}
	if t.Operator {
		info.Kind, info.Pool = postgres.TokenOperator, ""
	}
	return info, nil
}

// endpoint finds an endpoint in the data served now.
func (m *memAgents) endpoint(pool string, addr netip.Addr) (*zones.Endpoint, error) {
	pool = zones.CanonicalName(pool)
	d := m.health.Last()
	if d == nil {
		return nil, fmt.Errorf("%w: %s", postgres.ErrUnknownPool, pool)
	}
	for _, z := range d.Zones {
		for pi := range z.Pools {
			if z.Pools[pi].Name != pool {
				continue
			}
			for ei := range z.Pools[pi].Endpoints {
				if z.Pools[pi].Endpoints[ei].Addr == addr {
					return &z.Pools[pi].Endpoints[ei], nil
				}
			}
			return nil, fmt.Errorf("%w: %s in %s", postgres.ErrUnknownEndpoint, addr, pool)
		}
	}
	return nil, fmt.Errorf("%w: %s", postgres.ErrUnknownPool, pool)
}

func (m *memAgents) ReportAgent(_ context.Context, pool string, addr netip.Addr, r postgres.Report) (zones.HealthState, bool, error) {
	if err := r.Validate(); err != nil {
		return 0, false, fmt.Errorf("postgres: agent report: %w", err)
	}
	e, err := m.endpoint(pool, addr)
	if err != nil {
		return 0, false, err
	}
	up := r.Status == postgres.AgentUp
	m.health.SetAgent(pool, addr, up, r.TTL)
	state := zones.HealthDown
	if up {
		state = zones.HealthUp
	}
	return state, state != e.Health, nil
}

func (m *memAgents) SetAdmin(_ context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error) {
	e, err := m.endpoint(pool, addr)
	if err != nil {
		return 0, err
	}
	old := m.health.SetAdmin(pool, addr, state, e.Admin)
	// Without a database the audit trail is the log.
	m.logger.Info("Admin state changed", "pool", zones.CanonicalName(pool), "address", addr, "old", old.String(),
		"state", state.String(), "reason", reason, "actor", actor)
	return old, nil
}

func (m *memAgents) ListPools(context.Context) ([]postgres.PoolInfo, error) {
	var out []postgres.PoolInfo
	for _, z := range m.zones() {
		for pi := range z.Pools {
			p := &z.Pools[pi]
			info := postgres.PoolInfo{Zone: z.Origin, Name: p.Name, TTL: p.TTL, MaxAnswers: p.MaxAnswers, Geo: p.Geo.String(),
				UnknownIsUp: p.UnknownIsUp, Endpoints: len(p.Endpoints)}
			for ei := range p.Endpoints {
				e := &p.Endpoints[ei]
				info.Active += b2i(e.Admin == zones.AdminActive)
				info.Up += b2i(e.Health == zones.HealthUp)
				info.Down += b2i(e.Health == zones.HealthDown)
				info.Eligible += b2i(p.Eligible(e))
			}
			out = append(out, info)
		}
	}
	return out, nil
}

func (m *memAgents) ListEndpoints(_ context.Context, pool string) ([]postgres.EndpointInfo, error) {
	pool = zones.CanonicalName(pool)
	var out []postgres.EndpointInfo
	for _, z := range m.zones() {
		for pi := range z.Pools {
			p := &z.Pools[pi]
			if pool != "." && p.Name != pool {
				continue
			}
			for ei := range p.Endpoints {
				e := &p.Endpoints[ei]
				out = append(out, postgres.EndpointInfo{Zone: z.Origin, Pool: p.Name, Addr: e.Addr, Datacenter: e.Datacenter,
					Weight: e.Weight, Admin: e.Admin, Health: e.Health, Eligible: p.Eligible(e)})
			}
		}
	}
	return out, nil
}

func (m *memAgents) zones() []*zones.Zone {
	if d := m.health.Last(); d != nil {
		return d.Zones
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// agentTokenCmd implements "meridian agent-token": it makes a token for
// the agent API of a server without a database and prints it with the
// health.agent_tokens entry (holding only its hash) to configure.
func agentTokenCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("agent-token", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	pool := fs.String("pool", "", "the pool an agent token may report for")
	operator := fs.Bool("operator", false, "an operator token: any pool, and drain/enable")
	label := fs.String("label", "", "a name for the token, shown in the log")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian agent-token (--pool POOL | --operator) [--label L]\n\nMake a token for the health-agent API of \"meridian serve\" without a database.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian agent-token", args, stderr); !ok {
		return code
	}
	if *operator == (*pool != "") || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	token, sum, err := postgres.NewToken()
	if err != nil {
		fmt.Fprintf(stderr, "meridian agent-token: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "token: %s\n\n# Add to health.agent_tokens in the configuration (the token itself is not kept):\n", token)
	entry := fmt.Sprintf("- {pool: %q, sha256: %s, label: %q}", zones.CanonicalName(*pool), hex.EncodeToString(sum), *label)
	if *operator {
		entry = fmt.Sprintf("- {operator: true, sha256: %s, label: %q}", hex.EncodeToString(sum), *label)
	}
	fmt.Fprintln(stdout, entry)
	return 0
}

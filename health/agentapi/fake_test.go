package agentapi_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// Tokens of fakeStore.
const (
	fakeAgent    = "mrd_fake-agent-www"
	fakeOther    = "mrd_fake-agent-other"
	fakeOperator = "mrd_fake-operator"
)

// secret is what fakeStore's internal errors carry: no response may
// show it.
const secret = `SECRET-7f3a: ERROR: relation "agent_reports" violates constraint (SQLSTATE 23514) at /srv/meridian/store/postgres/agent.go:301`

// fakeStore is the API's Store in memory, as PG behaves: two pools of
// apiYAML's shape, three tokens, and a record of what changed. With fail
// set, every method after CheckToken fails with an internal error
// holding secret; with failToken, CheckToken does too.
type fakeStore struct {
	mu              sync.Mutex
	fail, failToken bool
	reports         []fakeReport
	admins          []fakeAdmin
	tokenChecks     int
}

type fakeReport struct {
	pool string
	addr netip.Addr
	rep  postgres.Report
}

type fakeAdmin struct {
	pool          string
	addr          netip.Addr
	state         zones.AdminState
	reason, actor string
}

var fakePools = map[string][]netip.Addr{
	"www.api.example.":   {netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("2001:db8::11")},
	"other.api.example.": {netip.MustParseAddr("192.0.2.21")},
}

func (s *fakeStore) internal(what string) error {
	return fmt.Errorf("postgres: %s: %s", what, secret)
}

// reset empties the record and sets the failures, for a store reused
// from one request to the next.
func (s *fakeStore) reset(fail, failToken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failToken = fail, failToken
	s.reports, s.admins, s.tokenChecks = nil, nil, 0
}

// changes returns how many reports and admin actions were stored.
func (s *fakeStore) changes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports) + len(s.admins)
}

func (s *fakeStore) CheckToken(_ context.Context, token string) (postgres.TokenInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenChecks++
	if s.failToken {
		return postgres.TokenInfo{}, s.internal("check token")
	}
	switch token {
	case fakeAgent:
		return postgres.TokenInfo{ID: 1, Kind: postgres.TokenAgent, Pool: "www.api.example.", Label: "www-agent"}, nil
	case fakeOther:
		return postgres.TokenInfo{ID: 2, Kind: postgres.TokenAgent, Pool: "other.api.example.", Label: "other-agent"}, nil
	case fakeOperator:
		return postgres.TokenInfo{ID: 3, Kind: postgres.TokenOperator, Label: "ops"}, nil
	}
	return postgres.TokenInfo{}, postgres.ErrBadToken
}

func (s *fakeStore) find(pool string, addr netip.Addr) error {
	addrs, ok := fakePools[pool]
	if !ok {
		return fmt.Errorf("postgres: no pool %s: %w", pool, postgres.ErrUnknownPool)
	}
	for _, a := range addrs {
		if a == addr {
			return nil
		}
	}
	return fmt.Errorf("postgres: pool %s has no endpoint %s: %w", pool, addr, postgres.ErrUnknownEndpoint)
}

func (s *fakeStore) ReportAgent(_ context.Context, pool string, addr netip.Addr, r postgres.Report) (zones.HealthState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, false, s.internal("agent report")
	}
	if err := r.Validate(); err != nil {
		return 0, false, fmt.Errorf("postgres: agent report: %w", err)
	}
	if err := s.find(pool, addr); err != nil {
		return 0, false, err
	}
	s.reports = append(s.reports, fakeReport{pool, addr, r})
	if r.Status == postgres.AgentUp {
		return zones.HealthUp, true, nil
	}
	return zones.HealthDown, true, nil
}

func (s *fakeStore) SetAdmin(_ context.Context, pool string, addr netip.Addr, state zones.AdminState, reason, actor string) (zones.AdminState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return 0, s.internal("set admin")
	}
	if err := s.find(pool, addr); err != nil {
		return 0, err
	}
	s.admins = append(s.admins, fakeAdmin{pool, addr, state, reason, actor})
	return zones.AdminActive, nil
}

func (s *fakeStore) ListPools(context.Context) ([]postgres.PoolInfo, error) {
	if s.fail {
		return nil, s.internal("list pools")
	}
	return []postgres.PoolInfo{
		{Zone: "api.example.", Name: "www.api.example.", Endpoints: 2},
		{Zone: "api.example.", Name: "other.api.example.", Endpoints: 1},
	}, nil
}

func (s *fakeStore) ListEndpoints(_ context.Context, pool string) ([]postgres.EndpointInfo, error) {
	if s.fail {
		return nil, s.internal("list endpoints")
	}
	addrs, ok := fakePools[pool]
	if !ok {
		return nil, fmt.Errorf("postgres: no pool %s: %w", pool, postgres.ErrUnknownPool)
	}
	var out []postgres.EndpointInfo
	for _, a := range addrs {
		out = append(out, postgres.EndpointInfo{Zone: "api.example.", Pool: pool, Addr: a, Datacenter: "dc1", Weight: 100})
	}
	return out, nil
}

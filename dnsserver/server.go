package dnsserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/meridiandns/meridian/zones"
)

// Server is an authoritative DNS server answering from an immutable
// zones.Snapshot. Publish may be called at any time from any goroutine.
type Server struct {
	cfg    Config
	logger *slog.Logger
	snap   atomic.Pointer[zones.Snapshot]
}

// New returns a Server for cfg. It does not open sockets; see Listen.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, logger: logger}, nil
}

// Publish makes snap the snapshot every following query is answered from.
func (s *Server) Publish(snap *zones.Snapshot) { s.snap.Store(snap) }

// Snapshot returns the snapshot currently served, or nil before the first
// Publish.
func (s *Server) Snapshot() *zones.Snapshot { return s.snap.Load() }

// Listen binds the UDP and TCP sockets of every configured address.
func (s *Server) Listen() error { return errors.New("dnsserver: not implemented yet") }

// Addrs returns the bound UDP addresses (the TCP ones share the ports).
func (s *Server) Addrs() []net.Addr { return nil }

// Serve answers queries until ctx is cancelled, then stops accepting,
// finishes queries in flight and closes the sockets.
func (s *Server) Serve(ctx context.Context) error { <-ctx.Done(); return nil }

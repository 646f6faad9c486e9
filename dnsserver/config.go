package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Config holds the settings of a Server. The zero value is not usable;
// start from DefaultConfig and override fields.
type Config struct {
	// Listen lists host:port addresses; each is served over UDP and TCP.
	Listen []string
	// NSID is the server identity returned to clients that ask for it
	// (RFC 5001). Empty disables NSID.
	NSID string
	// UDPWorkers is the number of goroutines reading each UDP socket.
	// 0 means one per CPU.
	UDPWorkers int
	// TCPIdleTimeout closes a TCP connection that sends no query for this
	// long (RFC 7766 section 6.2.3).
	TCPIdleTimeout time.Duration
	// TCPMaxConns caps concurrent TCP connections; further connections are
	// closed at once.
	TCPMaxConns int
	// TCPMaxConnsPerClient caps concurrent TCP connections from one client
	// address, so that one host cannot hold all TCPMaxConns; 0 means no
	// cap beyond TCPMaxConns.
	TCPMaxConnsPerClient int
	// TCPMaxQueries caps queries per TCP connection; 0 means unlimited.
	TCPMaxQueries int
	// RRL limits UDP replies per client network; the zero value is off.
	RRL RRLConfig
	// Cookies configures DNS cookies (RFC 7873); the zero value answers
	// them with a random secret.
	Cookies CookieConfig
	// SignatureCache is how many signatures made on the query path (pool
	// choices, names that do not exist, wildcards of signed zones) are
	// kept; 0 means 131072.
	SignatureCache int
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:         []string{"127.0.0.1:5353"},
		TCPIdleTimeout: 10 * time.Second,
		TCPMaxConns:    1000,
	}
}

// Validate reports the first problem with c, if any.
func (c *Config) Validate() error {
	if len(c.Listen) == 0 {
		return errors.New("dnsserver: no listen address")
	}
	for _, l := range c.Listen {
		if err := checkListen(l); err != nil {
			return fmt.Errorf("dnsserver: listen address %q: %w", l, err)
		}
	}
	if len(c.NSID) > 512 {
		return errors.New("dnsserver: nsid longer than 512 bytes")
	}
	if c.UDPWorkers < 0 {
		return errors.New("dnsserver: udp workers must not be negative")
	}
	if c.TCPIdleTimeout <= 0 {
		return errors.New("dnsserver: tcp idle timeout must be positive")
	}
	if c.TCPMaxConns <= 0 {
		return errors.New("dnsserver: tcp max connections must be positive")
	}
	if c.TCPMaxConnsPerClient < 0 {
		return errors.New("dnsserver: tcp max connections per client must not be negative")
	}
	if c.TCPMaxQueries < 0 {
		return errors.New("dnsserver: tcp max queries must not be negative")
	}
	if c.SignatureCache < 0 || c.SignatureCache > 1<<26 {
		return errors.New("dnsserver: signature cache size must be between 0 and 67108864")
	}
	return c.RRL.validate()
}

// checkListen accepts "IP:port" and ":port" (all addresses).
func checkListen(l string) error {
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return err
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host must be an IP address: %w", err)
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

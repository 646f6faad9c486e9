package pgtest

import (
	"fmt"
	"path/filepath"
	"testing"
)

// Options places a cluster somewhere other than the loopback of the test
// process: in a network namespace, on an address of its own, as the
// fleet simulation (internal/fleetsim) puts a primary and its standbys
// in regions joined by an emulated WAN. The zero Options is what
// OwnCluster and OwnPair use.
type Options struct {
	// Netns is a network namespace (ip netns add) to run every
	// PostgreSQL program in, through "ip netns exec", which needs root.
	// The test process must be able to reach Host from where it runs.
	Netns string
	// Host is the address the server listens on, 127.0.0.1 when empty.
	// Any other address is trusted for connections and replication from
	// everywhere (pg_hba.conf): it is meant for a namespace of the test's
	// own.
	Host string
	// Port is the port to listen on; 0 picks a free one (on the
	// loopback) or, with Host set, 5432.
	Port int
	// Conf is appended to postgresql.conf, after pgtest's own settings.
	Conf string
}

// OwnClusterWith is OwnCluster placed by opts: a durable cluster of t's
// own, removed when t ends.
func OwnClusterWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := newClusterOpts(true, opts)
	return owned(t, c, err, "server")
}

// owned fails t on err, else removes c when t ends, after showing the end
// of its log (that of the what) if t failed.
func owned(t testing.TB, c *Cluster, err error, what string) *Cluster {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: last lines of the %s's log %s:\n%s", what, c.logPath, c.logTail(40))
		}
		if err := c.destroy(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// StandbyWith starts a hot standby of c placed by opts, made with
// pg_basebackup -R and streaming from c (run where opts says: the copy
// and the stream cross whatever lies between them), and removes it when
// t ends. With a Pair of it and c, WaitReplayed and WaitStreaming work as
// for OwnPair.
func (c *Cluster) StandbyWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	s, err := newStandbyOpts(c, opts)
	return owned(t, s, err, "standby")
}

// Host returns the address the cluster listens on.
func (c *Cluster) Host() string { return c.host() }

// Port returns the port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// LogTail returns the last n lines of the server's log.
func (c *Cluster) LogTail(n int) string { return c.logTail(n) }

func (c *Cluster) host() string {
	if c.opts.Host != "" {
		return c.opts.Host
	}
	return "127.0.0.1"
}

// pickPort returns the port to start on: Options.Port, 5432 on an
// address of the cluster's own, else a free loopback port.
func (c *Cluster) pickPort() (int, error) {
	switch {
	case c.opts.Port != 0:
		return c.opts.Port, nil
	case c.opts.Host != "":
		return 5432, nil
	}
	return freePort()
}

// trustAddress lets everyone connect and replicate without a password
// when the cluster listens on an address other than the loopback's
// (initdb --auth=trust trusts only the loopback). Nothing is changed for
// a cluster on the loopback.
func (c *Cluster) trustAddress() error {
	if c.opts.Host == "" {
		return nil
	}
	hba := fmt.Sprintf("\n# pgtest: listening on %s, in a namespace of the test's own.\n"+
		"host all all 0.0.0.0/0 trust\nhost replication all 0.0.0.0/0 trust\n", c.opts.Host)
	return appendFile(filepath.Join(c.data, "pg_hba.conf"), hba)
}

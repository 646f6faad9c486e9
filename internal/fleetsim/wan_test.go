package fleetsim

import (
	"net"
	"os"
	"testing"
	"time"
)

// newWAN builds a WAN for t, removed when t ends (also when it fails).
// Without root it skips: namespaces and TUN devices cannot be made, and
// no script can grant that.
func newWAN(t *testing.T, names []string, delay func(from, to string) time.Duration) *WAN {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("fleetsim: needs root for network namespaces and TUN devices")
	}
	w, err := New(names, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

// rtt returns the time a TCP handshake from region from to addr takes:
// one round trip.
func rtt(t *testing.T, w *WAN, from, addr string) time.Duration {
	t.Helper()
	var d time.Duration
	if err := w.Do(from, func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		d = time.Since(start)
		return c.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFleetWAN: a round trip between two regions takes the two one-way
// delays, the observer reaches both at once, and a partitioned region is
// unreachable until joined again.
func TestFleetWAN(t *testing.T) {
	w := newWAN(t, []string{"a", "b"}, func(from, to string) time.Duration {
		if from == "a" {
			return 30 * time.Millisecond
		}
		return 20 * time.Millisecond
	})
	var ln net.Listener
	if err := w.Do("a", func() (err error) {
		ln, err = net.Listen("tcp", w.Region("a").Addr(5)+":7000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := w.Region("a").Addr(5) + ":7000"
	best := time.Hour
	for range 5 {
		best = min(best, rtt(t, w, "b", addr))
	}
	if best < 50*time.Millisecond || best > 100*time.Millisecond {
		t.Errorf("b -> a round trip %v, want 50ms (20ms + 30ms) and little more", best)
	}
	if d := rtt(t, w, "observer", addr); d > 20*time.Millisecond {
		t.Errorf("observer -> a round trip %v, want about 0", d)
	}
	w.Partition("a", true)
	if err := w.Do("b", func() error {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	}); err == nil {
		t.Error("reached a partitioned region")
	}
	w.Partition("a", false)
	if d := rtt(t, w, "b", addr); d > 150*time.Millisecond {
		t.Errorf("after the partition: round trip %v", d)
	}
	t.Logf("b -> a round trip %v (one way 20ms + 30ms)", best.Round(100*time.Microsecond))
}

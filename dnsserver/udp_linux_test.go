package dnsserver

import (
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSpareP checks that serving leaves a P beside the UDP loops, which
// keep theirs while they wait for datagrams, and that servers made one
// after the other in one process do not raise GOMAXPROCS each time: the
// default number of workers is the GOMAXPROCS the process started with.
func TestSpareP(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	runtime.GOMAXPROCS(startProcs)
	for i := range 3 {
		// One address and the default workers: startProcs UDP loops.
		s, addr := startServerWith(t, Config{UDPWorkers: startProcs}, testSnapshot(t, 1), nil)
		// A UDP answer means the loops run, so Serve has made its P spare.
		if r := exchange(t, "udp", addr, newQuery("ns1.example.com.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("server %d: UDP rcode %s", i, dns.RcodeToString[r.Rcode])
		}
		if got, want := runtime.GOMAXPROCS(0), startProcs+1; got != want {
			t.Fatalf("server %d: GOMAXPROCS %d with %d UDP loops, want %d", i, got, startProcs, want)
		}
		if s.cfg.UDPWorkers != startProcs {
			t.Fatalf("server %d: %d UDP workers, want %d", i, s.cfg.UDPWorkers, startProcs)
		}
		// TCP is served by the spare P while the UDP loops wait.
		if r := exchange(t, "tcp", addr, newQuery("ns1.example.com.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
			t.Fatalf("server %d: TCP rcode %s", i, dns.RcodeToString[r.Rcode])
		}
	}
	if s, err := New(Config{Listen: []string{"127.0.0.1:0"}, TCPIdleTimeout: time.Second, TCPMaxConns: 10}, nil); err != nil {
		t.Fatal(err)
	} else if s.cfg.UDPWorkers != startProcs {
		t.Errorf("default UDP workers %d after GOMAXPROCS was raised to %d, want %d", s.cfg.UDPWorkers, runtime.GOMAXPROCS(0), startProcs)
	}
}

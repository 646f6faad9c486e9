package zones

import (
	"strings"
	"testing"
	"time"
)

// TestSlowStart checks that a recovered endpoint's weight ramps up with
// time and that rebuilds recompile a ramping zone until the ramp ends.
func TestSlowStart(t *testing.T) {
	text := poolHead + `datacenters: [{name: dc, lat: 1, lon: 2}]
pools:
  - name: www
    health_check: {type: tcp, port: 80, slow_start: 100s}
    endpoints: [{address: 192.0.2.1, datacenter: dc, health: up}, {address: 192.0.2.2, datacenter: dc, health: up}]
`
	z, err := Parse([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if z.Pools[0].Check.SlowStart != 100*time.Second {
		t.Fatalf("slow_start %v", z.Pools[0].Check.SlowStart)
	}
	if out, err := FormatYAML(z); err != nil || !strings.Contains(string(out), "slow_start: '1m40s'") {
		t.Errorf("format: %v\n%s", err, out)
	}
	weights := func(s *Snapshot) []uint32 {
		w, _ := WireName("www.example.com.")
		var out []uint32
		for _, e := range s.Lookup(w, 1).Pool.Family[0].Eligible[0].Endpoints {
			out = append(out, e.Weight)
		}
		return out
	}
	// The first endpoint came up 50 s ago, the second long ago.
	z.Pools[0].Endpoints[0].UpSince = time.Now().Add(-50 * time.Second)
	z.Pools[0].Endpoints[1].UpSince = time.Now().Add(-time.Hour)
	s1, err := Build([]*Zone{z}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w := weights(s1); w[0] < 45 || w[0] > 55 || w[1] != 100 {
		t.Errorf("weights %v, want about 50 (half way through its slow start) and 100", w)
	}
	if ttl := s1.Lookup(mustWire(t, "www.example.com."), 1).Pool.TTL; ttl != DefaultDegradedTTL {
		t.Errorf("TTL %d while ramping, want %d", ttl, DefaultDegradedTTL)
	}
	if ru := s1.RampUntil(); ru.IsZero() || ru.Before(time.Now().Add(45*time.Second)) {
		t.Errorf("RampUntil %v, want about 50 s from now", ru)
	}
	// A rebuild with the very same zone compiles it again while it ramps.
	s2, err := Rebuild(s1, []*Zone{z}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s2.builtOf(z) == s1.builtOf(z) {
		t.Error("a ramping zone was reused without recompiling")
	}
	// Just up: a tenth of the weight. Ramp over: full weight, reused after.
	z.Pools[0].Endpoints[0].UpSince = time.Now()
	s3, _ := Rebuild(s2, []*Zone{z}, 3)
	if w := weights(s3); w[0] != 10 {
		t.Errorf("just recovered: weight %d, want 10", w[0])
	}
	z.Pools[0].Endpoints[0].UpSince = time.Now().Add(-2 * time.Minute)
	s4, _ := Rebuild(s3, []*Zone{z}, 4)
	if w := weights(s4); w[0] != 100 || !s4.RampUntil().IsZero() {
		t.Errorf("after the ramp: weight %d, RampUntil %v", w[0], s4.RampUntil())
	}
	s5, _ := Rebuild(s4, []*Zone{z}, 5)
	if s5.builtOf(z) != s4.builtOf(z) {
		t.Error("a zone no longer ramping was compiled again")
	}
}

func mustWire(t *testing.T, name string) []byte {
	t.Helper()
	w, err := WireName(name)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

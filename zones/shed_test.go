package zones

import "testing"

func TestEffectiveWeight(t *testing.T) {
	tests := []struct {
		name  string
		agent *AgentState
		shed  float64
		want  uint32
	}{
		{"no agent", nil, 0.8, 100},
		{"weight percent", &AgentState{WeightPercent: 75}, 0, 75},
		{"load below threshold", &AgentState{Load: 0.5, HasLoad: true}, 0.8, 100},
		{"load above threshold", &AgentState{Load: 0.9, HasLoad: true}, 0.8, 50},
		{"load 1 sheds all", &AgentState{Load: 1, HasLoad: true}, 0.8, 0},
		{"shedding off", &AgentState{Load: 0.99, HasLoad: true}, 0, 100},
		{"both", &AgentState{Load: 0.9, HasLoad: true, WeightPercent: 50}, 0.8, 25},
	}
	for _, tc := range tests {
		e := Endpoint{Weight: 100, Agent: tc.agent}
		if got := e.EffectiveWeight(tc.shed); got != tc.want {
			t.Errorf("%s: weight %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestShedLoadEligibility checks that a fully shed endpoint leaves the
// answers but stays for fail-open, and that shed_load is read and written.
func TestShedLoadEligibility(t *testing.T) {
	const text = poolHead + `datacenters: [{name: dc, lat: 1, lon: 2}]
pools:
  - name: www
    shed_load: 0.8
    endpoints: [{address: 192.0.2.1, datacenter: dc}, {address: 192.0.2.2, datacenter: dc}]
`
	z, err := Parse([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if z.Pools[0].ShedLoad != 0.8 {
		t.Fatalf("shed_load %g", z.Pools[0].ShedLoad)
	}
	z.Pools[0].Endpoints[1].Agent = &AgentState{Load: 1, HasLoad: true}
	snap, err := Build([]*Zone{z}, 1)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := WireName("www.example.com.")
	p := snap.Lookup(w, 1).Pool
	if n := len(p.Family[0].Eligible[0].Endpoints); n != 1 {
		t.Errorf("%d eligible endpoints, want 1 (the other is shed)", n)
	}
	if n := len(p.Family[0].Active[0].Endpoints); n != 2 {
		t.Errorf("%d active endpoints, want 2", n)
	}
	out, err := FormatYAML(z)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "back.yaml")
	if err != nil || back.Pools[0].ShedLoad != 0.8 {
		t.Errorf("round trip: %v, shed_load %g", err, back.Pools[0].ShedLoad)
	}
	if _, err := ParseYAML([]byte(poolHead+"datacenters: [{name: dc, lat: 1, lon: 2}]\npools:\n  - {name: www, shed_load: 1, endpoints: [{address: 192.0.2.1, datacenter: dc}]}\n"), "t.yaml"); err == nil {
		t.Error("shed_load 1 accepted")
	}
}

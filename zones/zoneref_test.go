package zones

import (
	"testing"

	"github.com/miekg/dns"
)

// TestZoneRef checks that every answer and pool points to its zone, and
// that slots are unique, kept by zones Rebuild takes over and renewed for
// zones compiled again.
func TestZoneRef(t *testing.T) {
	zs := scaleZones(t, 3, 2, 4)
	s1, err := Build(zs, 1)
	if err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		name   string
		qtype  uint16
		origin string
	}{
		{"p0.z0.example.", dns.TypeA, "z0.example."},
		{"p1.z1.example.", dns.TypeAAAA, "z1.example."},
		{"z2.example.", dns.TypeSOA, "z2.example."},
		{"nowhere.z2.example.", dns.TypeA, "z2.example."}, // NXDOMAIN
		{"z1.example.", dns.TypeMX, "z1.example."},        // NODATA
	}
	for _, l := range lookups {
		w, _ := WireName(l.name)
		a := s1.Lookup(w, l.qtype)
		if a == nil || a.Zone == nil || a.Zone.Origin != l.origin {
			t.Errorf("%s %s: answer zone %+v, want %s", l.name, dns.TypeToString[l.qtype], a, l.origin)
		}
	}
	for _, p := range s1.Pools() {
		if p.Zone == nil || p.Zone.Origin == "" {
			t.Errorf("pool %s has no zone", p.Name)
		}
	}
	slots := func(s *Snapshot) map[string]int {
		m := map[string]int{}
		seen := map[int]bool{}
		for _, r := range s.ZoneRefs() {
			if seen[r.Slot] || r.Slot >= s.ZoneSlots() {
				t.Errorf("zone %s slot %d (of %d) not unique or out of range", r.Origin, r.Slot, s.ZoneSlots())
			}
			seen[r.Slot] = true
			m[r.Origin] = r.Slot
		}
		return m
	}
	before := slots(s1)
	c := *zs[1]
	c.Pools = append([]Pool(nil), c.Pools...)
	c.Pools[0].MaxAnswers = 1
	s2, err := Rebuild(s1, []*Zone{zs[0], &c, zs[2]}, 2)
	if err != nil {
		t.Fatal(err)
	}
	after := slots(s2)
	if after["z0.example."] != before["z0.example."] || after["z2.example."] != before["z2.example."] {
		t.Errorf("unchanged zones changed slots: %v then %v", before, after)
	}
	if after["z1.example."] != before["z1.example."] {
		t.Errorf("recompiled zone moved from slot %d to %d", before["z1.example."], after["z1.example."])
	}
	// A zone removed leaves its slot to the next zone added.
	s3, err := Patch(s2, scaleZones(t, 4, 1, 1)[3:], []string{"z0.example."}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := slots(s3); got["z3.example."] != before["z0.example."] || len(got) != 3 {
		t.Errorf("after removing z0 and adding z3: %v (z0 had %d)", got, before["z0.example."])
	}
}

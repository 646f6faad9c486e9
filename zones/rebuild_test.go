package zones

import (
	"strings"
	"testing"
)

// TestRebuild checks that Rebuild takes over the zones it was given
// unchanged, compiles the new ones, drops the missing ones, and keeps
// pool indices unique.
func TestRebuild(t *testing.T) {
	zs := scaleZones(t, 3, 2, 4)
	s1, err := Build(zs, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Zone 1 changes (a new *Zone), zone 2 goes, zone 0 stays as it was.
	c := *zs[1]
	c.Pools = append([]Pool(nil), c.Pools...)
	c.Pools[0].MaxAnswers = 1
	s2, err := Rebuild(s1, []*Zone{zs[0], &c}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s2.built[zs[0]] != s1.built[zs[0]] {
		t.Error("unchanged zone was compiled again")
	}
	if s2.built[&c] == s1.built[zs[1]] {
		t.Error("changed zone was not compiled again")
	}
	if got := strings.Join(s2.Zones(), " "); got != "z0.example. z1.example." {
		t.Errorf("zones %q", got)
	}
	if w, _ := WireName("p0.z2.example."); s2.Lookup(w, 1) != nil {
		t.Error("removed zone still answers")
	}
	if w, _ := WireName("p0.z1.example."); s2.Lookup(w, 1).Pool.MaxAnswers != 1 {
		t.Error("changed pool not served")
	}
	seen := map[int]bool{}
	for _, p := range s2.Pools() {
		if seen[p.Index] || p.Index >= s2.PoolSlots() {
			t.Errorf("pool %s index %d (slots %d) not unique or out of range", p.Name, p.Index, s2.PoolSlots())
		}
		seen[p.Index] = true
	}
	if len(s2.Pools()) != 4 {
		t.Errorf("%d pools, want 4", len(s2.Pools()))
	}
	// An invalid changed zone fails the rebuild; a duplicate origin too.
	bad := *zs[0]
	bad.Records = bad.Records[1:] // no SOA
	if _, err := Rebuild(s2, []*Zone{&bad}, 3); err == nil {
		t.Error("zone without SOA accepted")
	}
	dup := *zs[0]
	if _, err := Rebuild(s2, []*Zone{zs[0], &dup}, 3); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate zone: %v", err)
	}
}

// TestRebuildRenumbers checks that pool indices left unused by many
// rebuilds are reclaimed by a full build.
func TestRebuildRenumbers(t *testing.T) {
	zs := scaleZones(t, 1, 1, 1)
	s, err := Build(zs, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		c := *zs[0]
		zs[0] = &c
		if s, err = Rebuild(s, zs, uint64(i+2)); err != nil {
			t.Fatal(err)
		}
	}
	if s.PoolSlots() > 2*len(s.Pools())+1025 {
		t.Errorf("%d slots for %d pools", s.PoolSlots(), len(s.Pools()))
	}
}

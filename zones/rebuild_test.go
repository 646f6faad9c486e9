package zones

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
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
	if s2.builtOf(zs[0]) != s1.builtOf(zs[0]) {
		t.Error("unchanged zone was compiled again")
	}
	if s2.builtOf(&c) == s1.builtOf(zs[1]) {
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
	// An invalid changed zone is kept at its last good version; a
	// duplicate origin too.
	bad := *zs[0]
	bad.Records = bad.Records[1:] // no SOA
	s3, err := Rebuild(s2, []*Zone{&bad}, 3)
	if err != nil || s3.Lookup(mustWire(t, "p0.z0.example."), dns.TypeA) == nil || len(s3.Invalid()) != 1 {
		t.Errorf("zone without SOA: %v, invalid %v", err, s3.Invalid())
	}
	dup := *zs[0]
	if _, err := Build([]*Zone{zs[0], &dup}, 3); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate zone: %v", err)
	}
}

// TestRebuildSlots checks that a zone compiled again keeps its pools'
// indices and its zone slot, and that the indices of pools removed are
// given to new pools: many rebuilds never grow the slots.
func TestRebuildSlots(t *testing.T) {
	zs := scaleZones(t, 2, 3, 1)
	s, err := Build(zs, 1)
	if err != nil {
		t.Fatal(err)
	}
	index := func(s *Snapshot) map[string]int {
		m := map[string]int{}
		for _, p := range s.Pools() {
			m[p.Name] = p.Index
		}
		return m
	}
	before := index(s)
	for i := 0; i < 2000; i++ {
		c := *zs[0]
		c.Pools = slices.Clone(c.Pools)
		if i%2 == 1 {
			c.Pools = c.Pools[:2] // one pool goes, and comes back next time
		}
		zs[0] = &c
		if s, err = Rebuild(s, zs, uint64(i+2)); err != nil {
			t.Fatal(err)
		}
		ch := s.Change()
		if len(ch.Added) != 1 || len(ch.Removed) != 1 || ch.Added[0].Slot != ch.Removed[0].Slot {
			t.Fatalf("rebuild %d: change %+v", i, ch)
		}
	}
	after := index(s)
	for name, i := range before {
		if name != "p2.z0.example." && after[name] != i {
			t.Errorf("pool %s: index %d, was %d", name, after[name], i)
		}
	}
	if s.PoolSlots() != 6 || s.ZoneSlots() != 2 || s.PoolCount() != 5 || len(s.Pools()) != 5 {
		t.Errorf("%d pool slots, %d zone slots, %d pools after 2000 rebuilds; want 6, 2, 5", s.PoolSlots(), s.ZoneSlots(), s.PoolCount())
	}
}

// TestRebuildInvalid checks that a zone that cannot be compiled (marked
// Invalid by its store, failing validation, defined twice, or losing its
// keys) is served at its last good version while the others update, is
// left out when it never was valid, and comes back once fixed.
func TestRebuildInvalid(t *testing.T) {
	keys := testKeyset(t, "a.test.")
	// v1 is every zone as first built: a.test. (signed), b.test.
	v1 := map[string]*Zone{"a.test.": zoneGen(t, "a.test.", 1), "b.test.": zoneGen(t, "b.test.", 1)}
	v1["a.test."].Keys = keys
	broken := func(z *Zone) *Zone { z.Invalid = errors.New("record x.a.test. A \"nope\": bad A"); return z }
	cnameBeside := func(z *Zone) *Zone {
		z.Records = append(z.Records, Record{RR: mustRR(t, "v.b.test. 60 IN CNAME elsewhere.example."), Line: 9})
		return z
	}
	signed := func(z *Zone) *Zone { z.Keys = keys; return z }
	tests := []struct {
		name string
		zs   func() []*Zone // given to the second rebuild, after v1
		// served: the generation of v.<origin> served per zone (0: not served)
		served map[string]int
		// invalid: the invalid zones with their kept version, and a part
		// of their reason
		invalid map[string]uint64
		reason  string
	}{
		{"all valid: both updated",
			func() []*Zone { return []*Zone{signed(zoneGen(t, "a.test.", 2)), zoneGen(t, "b.test.", 2)} },
			map[string]int{"a.test.": 2, "b.test.": 2}, nil, ""},
		{"marked invalid by the store: kept at v1, the other updated",
			func() []*Zone { return []*Zone{signed(zoneGen(t, "a.test.", 2)), broken(zoneGen(t, "b.test.", 2))} },
			map[string]int{"a.test.": 2, "b.test.": 1}, map[string]uint64{"b.test.": 1}, "bad A"},
		{"fails validation: kept at v1",
			func() []*Zone {
				return []*Zone{signed(zoneGen(t, "a.test.", 2)), cnameBeside(zoneGen(t, "b.test.", 2))}
			},
			map[string]int{"a.test.": 2, "b.test.": 1}, map[string]uint64{"b.test.": 1}, "line 9"},
		{"a new zone never valid: left out",
			func() []*Zone { return []*Zone{v1["a.test."], v1["b.test."], broken(zoneGen(t, "c.test.", 2))} },
			map[string]int{"a.test.": 1, "b.test.": 1, "c.test.": 0}, map[string]uint64{"c.test.": 0}, "bad A"},
		{"signed zone without keys: kept signed",
			func() []*Zone { return []*Zone{zoneGen(t, "a.test.", 2), zoneGen(t, "b.test.", 2)} },
			map[string]int{"a.test.": 1, "b.test.": 2}, map[string]uint64{"a.test.": 1}, ErrUnsigned.Error()},
		{"defined twice: kept at v1",
			func() []*Zone {
				return []*Zone{signed(zoneGen(t, "a.test.", 2)), zoneGen(t, "b.test.", 2), zoneGen(t, "b.test.", 3)}
			},
			map[string]int{"a.test.": 2, "b.test.": 1}, map[string]uint64{"b.test.": 1}, "defined twice"},
		{"an invalid zone deleted: gone",
			func() []*Zone { return []*Zone{v1["a.test."]} },
			map[string]int{"a.test.": 1, "b.test.": 0}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s1, err := Build([]*Zone{v1["a.test."], v1["b.test."]}, 1)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := Rebuild(s1, tc.zs(), 2)
			if err != nil {
				t.Fatal(err)
			}
			for origin, gen := range tc.served {
				if got := servedGen(t, s2, origin); got != gen {
					t.Errorf("%s: generation %d served, want %d", origin, got, gen)
				}
			}
			got := map[string]uint64{}
			for _, iz := range s2.Invalid() {
				got[iz.Origin] = iz.KeptVersion
				if !strings.Contains(iz.Err.Error(), tc.reason) {
					t.Errorf("%s: reason %q, want it to say %q", iz.Origin, iz.Err, tc.reason)
				}
			}
			if len(got) != len(tc.invalid) {
				t.Errorf("invalid %v, want %v", got, tc.invalid)
			}
			for origin, kept := range tc.invalid {
				if k, ok := got[origin]; !ok || k != kept {
					t.Errorf("%s: invalid %v, kept version %d; want invalid, kept version %d", origin, ok, k, kept)
				}
			}
			if tc.reason == ErrUnsigned.Error() {
				if !errors.Is(s2.Invalid()[0].Err, ErrUnsigned) {
					t.Errorf("%v is not ErrUnsigned", s2.Invalid()[0].Err)
				}
				if a := s2.Lookup(mustWire(t, "a.test."), dns.TypeDNSKEY); a == nil || len(a.Answer) == 0 || a.DO == nil {
					t.Error("the zone kept does not publish its keys and sign")
				}
			}
		})
	}
}

// TestRebuildInvalidRecovers follows one zone through being broken, staying
// broken over rebuilds (the same reason, since kept), a ramp that compiles
// its last good version again, and being fixed.
func TestRebuildInvalidRecovers(t *testing.T) {
	a1, b1 := zoneGen(t, "a.test.", 1), zoneGen(t, "b.test.", 1)
	s1, err := Build([]*Zone{a1, b1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := zoneGen(t, "b.test.", 2)
	bad.Invalid = errors.New("broken")
	s2, _ := Rebuild(s1, []*Zone{a1, bad}, 2)
	s3, _ := Rebuild(s2, []*Zone{a1, bad}, 3)
	if len(s3.Invalid()) != 1 || s3.Invalid()[0].Since != s2.Invalid()[0].Since || s3.Invalid()[0].KeptVersion != 1 {
		t.Fatalf("still invalid: %+v after %+v", s3.Invalid(), s2.Invalid())
	}
	if s3.builtOf(b1) != s1.builtOf(b1) {
		t.Error("the zone kept was compiled again without need")
	}
	if servedGen(t, s3, "b.test.") != 1 {
		t.Error("last good version not served")
	}
	// Patch, given the broken zone again, keeps it as it is.
	s4, _ := Patch(s3, []*Zone{bad}, nil, 4)
	if servedGen(t, s4, "b.test.") != 1 || s4.builtOf(b1) != s3.builtOf(b1) || len(s4.Invalid()) != 1 || s4.Invalid()[0].Since != s2.Invalid()[0].Since {
		t.Errorf("after a patch: generation %d, invalid %v", servedGen(t, s4, "b.test."), s4.Invalid())
	}
	fixed := zoneGen(t, "b.test.", 5)
	s5, _ := Rebuild(s4, []*Zone{a1, fixed}, 5)
	if len(s5.Invalid()) != 0 || servedGen(t, s5, "b.test.") != 5 {
		t.Errorf("fixed: invalid %v, generation %d", s5.Invalid(), servedGen(t, s5, "b.test."))
	}
	// A server starting with nothing but broken zones says so.
	if _, err := Rebuild(nil, []*Zone{bad}, 1); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("first build of broken zones only: %v", err)
	}
	if err := Check(bad); err == nil {
		t.Error("Check passed a broken zone")
	}
	if err := Check(fixed); err != nil {
		t.Error(err)
	}
}

// zoneGen returns a zone whose name v.<origin> holds 192.0.2.<gen>, to
// tell which generation of it a snapshot serves.
func zoneGen(t *testing.T, origin string, gen int) *Zone {
	t.Helper()
	z := &Zone{Origin: origin, Source: "test:" + origin}
	for i, s := range []string{
		origin + " 300 IN SOA ns1." + origin + " hostmaster." + origin + " " + strconv.Itoa(gen) + " 7200 3600 1209600 60",
		origin + " 300 IN NS ns1." + origin,
		"ns1." + origin + " 300 IN A 192.0.2.53",
		"v." + origin + " 300 IN A 192.0.2." + strconv.Itoa(gen),
	} {
		z.Records = append(z.Records, Record{RR: mustRR(t, s), Line: i + 1})
	}
	return z
}

// servedGen returns the generation of v.<origin> that s serves, 0 when
// it does not serve the zone.
func servedGen(t *testing.T, s *Snapshot, origin string) int {
	t.Helper()
	a := s.Lookup(mustWire(t, "v."+origin), dns.TypeA)
	if a == nil {
		return 0
	}
	if len(a.Answer) != 1 {
		t.Fatalf("v.%s: answer %v", origin, a.Answer)
	}
	return int(a.Answer[0].(*dns.A).A.To4()[3])
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func testKeyset(t *testing.T, zone string) *signing.Keyset {
	t.Helper()
	k, err := signing.Generate(zone, dns.ECDSAP256SHA256, signing.FlagKSK)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := signing.NewKeyset(zone, []*signing.Key{k}, signing.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// builtOf returns the tree s serves for z when it was compiled from that
// very *Zone, else nil.
func (s *Snapshot) builtOf(z *Zone) *zoneTree {
	k, err := wireKey(CanonicalName(z.Origin))
	if err != nil {
		return nil
	}
	if t := s.tree(k); t != nil && t.src == z {
		return t
	}
	return nil
}

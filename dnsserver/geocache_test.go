package dnsserver

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestGeoCache checks that a loop's GeoIP cache answers what the database
// does, for addresses asked again, neighbours in and out of the cached
// network, slots shared by several /24s, IPv6, and a new database.
func TestGeoCache(t *testing.T) {
	db1, db2 := worldDB(t), worldDB(t)
	st1 := buildState(nil, db1, nil)
	st1again := buildState(nil, db1, st1)
	st2 := buildState(nil, db2, st1again)
	if st1.geoID == 0 || st1again.geoID != st1.geoID || st2.geoID == st1.geoID {
		t.Fatalf("geoIDs %d, %d (same database), %d (another): want equal, then different", st1.geoID, st1again.geoID, st2.geoID)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var addrs []netip.Addr
	for _, s := range []string{"193.99.144.1", "193.99.144.200", "193.99.145.1", "81.2.69.1", "128.30.2.7", "10.0.0.1", "2a00:1450:4001::1", "2a00:1450:4001:ffff::1", "::1"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	for range 5000 {
		var a [4]byte
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		addrs = append(addrs, netip.AddrFrom4(a))
	}
	for range 500 {
		var a [16]byte
		a[0] = 0x2a
		for i := 1; i < 8; i++ {
			a[i] = byte(r.Uint32())
		}
		addrs = append(addrs, netip.AddrFrom16(a))
	}
	var c geoCache
	for round := range 3 {
		for _, st := range []*state{st1, st1again, st2} {
			for _, i := range r.Perm(len(addrs)) {
				a := addrs[i]
				wantIdx, wantNet := st.db.Lookup(a)
				idx, network := c.lookup(st, a)
				if idx != wantIdx || network != wantNet {
					t.Fatalf("round %d, %s: cache says %d %s, database %d %s", round, a, idx, network, wantIdx, wantNet)
				}
			}
		}
	}
	var nilCache *geoCache
	if idx, network := nilCache.lookup(st1, addrs[0]); network == (netip.Prefix{}) || idx != func() int32 { i, _ := db1.Lookup(addrs[0]); return i }() {
		t.Errorf("nil cache: %d %s", idx, network)
	}
}

package signing

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustKey(t testing.TB, zone string, alg uint8, flags uint16) *Key {
	t.Helper()
	k, err := Generate(zone, alg, flags)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyRoundTrip(t *testing.T) {
	for name, alg := range Algorithms {
		t.Run(name, func(t *testing.T) {
			k := mustKey(t, "Example.COM", alg, FlagKSK)
			if k.DNSKEY.Hdr.Name != "example.com." || !k.KSK() {
				t.Fatalf("key %s: owner %s, KSK %v", k, k.DNSKEY.Hdr.Name, k.KSK())
			}
			back, err := ParseKey(k.DNSKEY.String(), k.PrivateString(), "k")
			if err != nil {
				t.Fatal(err)
			}
			if back.Tag() != k.Tag() || back.DNSKEY.PublicKey != k.DNSKEY.PublicKey {
				t.Errorf("read back tag %d key %s, want %d %s", back.Tag(), back.DNSKEY.PublicKey, k.Tag(), k.DNSKEY.PublicKey)
			}
			if !strings.HasPrefix(k.FileBase(), "Kexample.com.+0") {
				t.Errorf("file base %s", k.FileBase())
			}
			other := mustKey(t, "example.com.", alg, FlagKSK)
			if _, err := ParseKey(k.DNSKEY.String(), other.PrivateString(), "k"); err == nil || !strings.Contains(err.Error(), "not the one of the DNSKEY") {
				t.Errorf("another key's private half: %v, want refused", err)
			}
		})
	}
	for _, tc := range []struct{ public, want string }{
		{"example.com. 3600 IN A 192.0.2.1", "not DNSKEY"},
		{"example.com. 3600 IN DNSKEY 257 3 8 AwEAAa==", "algorithm 8 is not supported"},
		{"example.com. 3600 IN DNSKEY 1 3 13 " + strings.Repeat("A", 88), "flags 1"},
		{"not a record", "public key"},
	} {
		if _, err := ParseKey(tc.public, "Private-key-format: v1.3\n", "bad"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%q): %v, want an error with %q", tc.public, err, tc.want)
		}
	}
	if _, err := Generate("example.com.", dns.RSASHA256, FlagKSK); err == nil {
		t.Error("RSA key generated, want refused")
	}
}

func TestKeysetChecks(t *testing.T) {
	ksk := mustKey(t, "example.com.", dns.ECDSAP256SHA256, FlagKSK)
	zsk := mustKey(t, "example.com.", dns.ECDSAP256SHA256, FlagZSK)
	other := mustKey(t, "example.net.", dns.ECDSAP256SHA256, FlagKSK)
	for _, tc := range []struct {
		name string
		keys []*Key
		want string
	}{
		{"no keys", nil, "has no keys"},
		{"ZSK alone", []*Key{zsk}, "no key signing key"},
		{"another zone's key", []*Key{ksk, other}, "belongs to example.net."},
		{"the same key twice", []*Key{ksk, ksk}, "two keys with tag"},
	} {
		if _, err := NewKeyset("example.com.", tc.keys, DefaultPolicy()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := NewKeyset("example.com.", []*Key{ksk}, Policy{Validity: time.Hour, Refresh: 2 * time.Hour}); err == nil {
		t.Error("refresh longer than validity accepted")
	}
}

// TestSignVerifies signs with a KSK and a ZSK and with one combined key,
// and checks each RRSIG with miekg/dns's validator: the DNSKEY RRset is
// signed by the key signing key only, other RRsets by the zone signing
// key only, or by the combined key.
func TestSignVerifies(t *testing.T) {
	ksk := mustKey(t, "example.com.", dns.ECDSAP256SHA256, FlagKSK)
	zsk := mustKey(t, "example.com.", dns.ECDSAP256SHA256, FlagZSK)
	csk := mustKey(t, "example.com.", dns.ED25519, FlagKSK)
	now := time.Now()
	a1, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.1")
	a2, _ := dns.NewRR("www.example.com. 300 IN A 192.0.2.2")
	for _, tc := range []struct {
		name      string
		keys      []*Key
		dnskeyBy  []uint16
		othersBy  []uint16
		algorithm uint8
	}{
		{"KSK and ZSK", []*Key{ksk, zsk}, []uint16{ksk.Tag()}, []uint16{zsk.Tag()}, dns.ECDSAP256SHA256},
		{"combined key", []*Key{csk}, []uint16{csk.Tag()}, []uint16{csk.Tag()}, dns.ED25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := NewKeyset("example.com.", tc.keys, DefaultPolicy())
			if err != nil {
				t.Fatal(err)
			}
			inc, exp := ks.Policy.Window(now)
			if got := time.Unix(int64(inc), 0); now.Sub(got) < 59*time.Minute {
				t.Errorf("inception %s is not backdated an hour", got)
			}
			for _, rrset := range [][]dns.RR{ks.DNSKEYs(3600), {a2, a1}} {
				sigs, err := ks.Sign(rrset, inc, exp)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.othersBy
				if rrset[0].Header().Rrtype == dns.TypeDNSKEY {
					want = tc.dnskeyBy
				}
				if len(sigs) != len(want) {
					t.Fatalf("%d signatures over %s, want %d", len(sigs), dns.TypeToString[rrset[0].Header().Rrtype], len(want))
				}
				for i, s := range sigs {
					sig := s.(*dns.RRSIG)
					var key *dns.DNSKEY
					for _, k := range tc.keys {
						if k.Tag() == sig.KeyTag {
							key = k.DNSKEY
						}
					}
					if sig.KeyTag != want[i] || key == nil {
						t.Fatalf("signed by %d, want %v", sig.KeyTag, want)
					}
					if err := sig.Verify(key, rrset); err != nil {
						t.Errorf("RRSIG over %s does not verify: %v", dns.TypeToString[sig.TypeCovered], err)
					}
					if !sig.ValidityPeriod(now) || sig.Algorithm != tc.algorithm || sig.SignerName != "example.com." {
						t.Errorf("RRSIG %s", sig)
					}
				}
			}
		})
	}
}

func TestCompactNSEC(t *testing.T) {
	for _, tc := range []struct {
		types       []uint16
		nonexistent bool
		want        string
	}{
		{nil, true, `nx.example.com. 300 IN NSEC \000.nx.example.com. RRSIG NSEC NXNAME`},
		{[]uint16{dns.TypeAAAA, dns.TypeA}, false, `nx.example.com. 300 IN NSEC \000.nx.example.com. A AAAA RRSIG NSEC`},
		{nil, false, `nx.example.com. 300 IN NSEC \000.nx.example.com. RRSIG NSEC`}, // an empty non-terminal
	} {
		got := strings.Join(strings.Fields(CompactNSEC("nx.example.com.", 300, tc.types, tc.nonexistent).String()), " ")
		if got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestCache(t *testing.T) {
	c := NewCache(8)
	if _, ok := c.Get([]byte("a"), 100); ok {
		t.Fatal("hit in an empty cache")
	}
	c.Put([]byte("a"), []byte("sig-a"), 200, 100)
	if v, ok := c.Get([]byte("a"), 150); !ok || string(v) != "sig-a" {
		t.Errorf("Get(a) = %q, %v", v, ok)
	}
	if _, ok := c.Get([]byte("a"), 200); ok {
		t.Error("an entry due for renewal was returned")
	}
	if _, ok := c.Get([]byte("b"), 150); ok {
		t.Error("hit for a key never put")
	}
	for i := range 1000 {
		c.Put([]byte{byte(i), byte(i >> 8)}, []byte{1}, 200, 100)
	}
	if n := c.Len(); n > 8 {
		t.Errorf("%d entries in a cache of 8", n)
	}
	if hits, misses := c.Stats(); hits != 1 || misses != 3 {
		t.Errorf("stats %d hits %d misses, want 1 and 3", hits, misses)
	}
}

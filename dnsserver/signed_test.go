package dnsserver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// signedTestZone is testZone's origin, signed with a KSK and a ZSK.
func signedSnapshot(t testing.TB, pools ...zones.Pool) (*zones.Snapshot, *signing.Keyset) {
	t.Helper()
	var keys []*signing.Key
	for _, flags := range []uint16{signing.FlagKSK, signing.FlagZSK} {
		k, err := signing.Generate("example.com.", dns.ECDSAP256SHA256, flags)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	ks, err := signing.NewKeyset("example.com.", keys, signing.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	z := parseZone(t, "example.com.", testZone)
	z.Datacenters, z.Pools = testDCs, pools
	z.Keys = ks
	return mustBuild(t, z), ks
}

// verifySections checks every RRSIG of r against the keys and the RRset
// it covers, and returns the RRSIGs by section and covered type.
func verifySections(t *testing.T, r *dns.Msg, ks *signing.Keyset) map[string]*dns.RRSIG {
	t.Helper()
	keys := map[uint16]*dns.DNSKEY{}
	for _, k := range ks.Keys {
		keys[k.Tag()] = k.DNSKEY
	}
	out := map[string]*dns.RRSIG{}
	for si, sec := range [][]dns.RR{r.Answer, r.Ns} {
		for _, rr := range sec {
			sig, ok := rr.(*dns.RRSIG)
			if !ok {
				continue
			}
			var set []dns.RR
			for _, x := range sec {
				if x.Header().Rrtype == sig.TypeCovered && strings.EqualFold(x.Header().Name, sig.Hdr.Name) {
					c := dns.Copy(x)
					c.Header().Name = strings.ToLower(c.Header().Name)
					set = append(set, c)
				}
			}
			k := keys[sig.KeyTag]
			if k == nil {
				t.Errorf("RRSIG by unknown key %d: %s", sig.KeyTag, sig)
				continue
			}
			if err := sig.Verify(k, set); err != nil {
				t.Errorf("RRSIG over %s %s does not verify: %v\n%v", sig.Hdr.Name, dns.TypeToString[sig.TypeCovered], err, set)
			}
			if !sig.ValidityPeriod(time.Now()) {
				t.Errorf("RRSIG %s not valid now", sig)
			}
			out[[]string{"an", "ns"}[si]+"/"+dns.TypeToString[sig.TypeCovered]] = sig
		}
	}
	return out
}

func doQuery(name string, qtype uint16, co bool) *dns.Msg {
	m := withEDNS(newQuery(name, qtype), 1232, true)
	m.IsEdns0().SetCo(co)
	return m
}

func TestSignedAnswers(t *testing.T) {
	pool := testPool("pool.example.com.")
	snap, ks := signedSnapshot(t, pool)
	s, addr := startServer(t, Config{}, snap)
	ksk, zsk := ks.Keys[0], ks.Keys[1]
	if !ksk.KSK() {
		ksk, zsk = zsk, ksk
	}
	for _, tc := range []struct {
		name   string
		q      *dns.Msg
		rcode  int
		sigs   []string // section/type covered
		byKSK  bool
		nsec   string // the NSEC expected in authority, as text without TTL
		answer int    // records in the answer section, RRSIGs included
	}{
		{"positive", doQuery("WwW.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"an/A"}, false, "", 2},
		{"DNSKEY by the KSK", doQuery("example.com.", dns.TypeDNSKEY, false), dns.RcodeSuccess, []string{"an/DNSKEY"}, true, "", 3},
		{"CDS", doQuery("example.com.", dns.TypeCDS, false), dns.RcodeSuccess, []string{"an/CDS"}, true, "", 2},
		{"NODATA", doQuery("www.example.com.", dns.TypeTXT, false), dns.RcodeSuccess, []string{"ns/SOA", "ns/NSEC"}, false,
			`www.example.com. IN NSEC \000.www.example.com. A AAAA RRSIG NSEC`, 0},
		{"NODATA at an empty non-terminal", doQuery("b.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"ns/SOA", "ns/NSEC"}, false,
			`b.example.com. IN NSEC \000.b.example.com. RRSIG NSEC`, 0},
		{"NXDOMAIN is compact NOERROR", doQuery("NoThere.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"ns/SOA", "ns/NSEC"}, false,
			`nothere.example.com. IN NSEC \000.nothere.example.com. RRSIG NSEC NXNAME`, 0},
		{"NXDOMAIN with CO", doQuery("nothere2.example.com.", dns.TypeA, true), dns.RcodeNameError, []string{"ns/SOA", "ns/NSEC"}, false,
			`nothere2.example.com. IN NSEC \000.nothere2.example.com. RRSIG NSEC NXNAME`, 0},
		{"wildcard signed at the query name", doQuery("foo.wild.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"an/A"}, false, "", 2},
		{"wildcard NODATA", doQuery("foo.wild.example.com.", dns.TypeMX, false), dns.RcodeSuccess, []string{"ns/SOA", "ns/NSEC"}, false,
			`foo.wild.example.com. IN NSEC \000.foo.wild.example.com. A TXT RRSIG NSEC`, 0},
		{"CNAME chain", doQuery("chain1.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"an/CNAME", "an/A"}, false, "", 6},
		{"CNAME to a missing name", doQuery("dangling.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"an/CNAME", "ns/SOA", "ns/NSEC"}, false,
			`nothere.example.com. IN NSEC \000.nothere.example.com. RRSIG NSEC NXNAME`, 2},
		{"insecure referral", doQuery("host.sub.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"ns/NSEC"}, false,
			`sub.example.com. IN NSEC \000.sub.example.com. NS RRSIG NSEC`, 0},
		{"DS at an insecure cut", doQuery("sub.example.com.", dns.TypeDS, false), dns.RcodeSuccess, []string{"ns/SOA", "ns/NSEC"}, false,
			`sub.example.com. IN NSEC \000.sub.example.com. NS RRSIG NSEC`, 0},
		{"pool", doQuery("pool.example.com.", dns.TypeA, false), dns.RcodeSuccess, []string{"an/A"}, false, "", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, "udp", addr, tc.q)
			// A referral is not authoritative, signed or not (RFC 4035
			// section 3.1.4): AA was set on signed ones, which a resolver
			// may take for NODATA.
			wantAA := !strings.Contains(tc.name, "referral")
			if r.Rcode != tc.rcode || r.Authoritative != wantAA || r.Truncated {
				t.Fatalf("rcode %s AA %v TC %v, want %s and AA %v:\n%v", dns.RcodeToString[r.Rcode], r.Authoritative, r.Truncated, dns.RcodeToString[tc.rcode], wantAA, r)
			}
			got := verifySections(t, r, ks)
			for _, want := range tc.sigs {
				sig := got[want]
				if sig == nil {
					t.Errorf("no RRSIG %s in\n%v", want, r)
					continue
				}
				wantKey := zsk.Tag()
				if tc.byKSK {
					wantKey = ksk.Tag()
				}
				if sig.KeyTag != wantKey {
					t.Errorf("%s signed by %d, want %d", want, sig.KeyTag, wantKey)
				}
			}
			if len(got) != len(tc.sigs) {
				t.Errorf("%d RRSIGs (%v), want %v", len(got), got, tc.sigs)
			}
			if len(r.Answer) != tc.answer {
				t.Errorf("%d answer records, want %d:\n%v", len(r.Answer), tc.answer, r)
			}
			if tc.nsec != "" {
				var nsecs []string
				for _, rr := range r.Ns {
					if n, ok := rr.(*dns.NSEC); ok {
						f := strings.Fields(strings.ToLower(n.String()))
						nsecs = append(nsecs, strings.Join(append(f[:1:1], f[2:]...), " "))
					}
				}
				if len(nsecs) != 1 || nsecs[0] != strings.ToLower(tc.nsec) {
					t.Errorf("NSEC %q, want %q", nsecs, tc.nsec)
				}
			}
			if tc.q.IsEdns0().Co() != r.IsEdns0().Co() {
				t.Errorf("CO %v in the reply, want it echoed (%v)", r.IsEdns0().Co(), tc.q.IsEdns0().Co())
			}
		})
	}

	t.Run("without DO nothing is signed", func(t *testing.T) {
		for _, q := range []*dns.Msg{withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false), newQuery("nothere.example.com.", dns.TypeA), newQuery("pool.example.com.", dns.TypeA)} {
			r := exchange(t, "udp", addr, q)
			for _, rr := range append(append([]dns.RR{}, r.Answer...), r.Ns...) {
				if typ := rr.Header().Rrtype; typ == dns.TypeRRSIG || typ == dns.TypeNSEC {
					t.Errorf("%s in a reply without DO", rr)
				}
			}
			if q.Question[0].Name == "nothere.example.com." && r.Rcode != dns.RcodeNameError {
				t.Errorf("NXDOMAIN without DO: %s", dns.RcodeToString[r.Rcode])
			}
		}
	})

	t.Run("pool subsets share a signature", func(t *testing.T) {
		before := s.signatures.Load()
		for range 20 {
			r := exchange(t, "udp", addr, doQuery("pool.example.com.", dns.TypeA, false))
			verifySections(t, r, ks)
		}
		if made := s.signatures.Load() - before; made > 2 {
			t.Errorf("%d signatures made for 20 answers of one pool from one client, want the cached one", made)
		}
	})

	t.Run("NXNAME query is FORMERR", func(t *testing.T) {
		if r := exchange(t, "udp", addr, doQuery("www.example.com.", dns.TypeNXNAME, false)); r.Rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s, want FORMERR (RFC 9824 section 3.5)", dns.RcodeToString[r.Rcode])
		}
	})
}

// TestSignatureMetrics checks the signing counters: a name that does not
// exist asked twice is signed once and found once in the cache.
func TestSignatureMetrics(t *testing.T) {
	snap, _ := signedSnapshot(t)
	s, addr := startServer(t, Config{}, snap)
	for range 2 {
		if r := exchange(t, "udp", addr, doQuery("nothere.example.com.", dns.TypeA, false)); len(r.Ns) == 0 {
			t.Fatalf("no denial: %v", r)
		}
	}
	got := scrape(t, s)
	for k, want := range map[string]float64{
		`meridian_dnssec_signatures_total{result=ok}`:                1,
		`meridian_dnssec_signatures_total{result=error}`:             0,
		`meridian_dnssec_signature_cache_lookups_total{result=hit}`:  1,
		`meridian_dnssec_signature_cache_lookups_total{result=miss}`: 1,
		`meridian_dnssec_signature_cache_entries{}`:                  1,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

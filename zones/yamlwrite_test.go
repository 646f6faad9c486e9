package zones

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// exampleFiles are the zones of the examples directory.
var exampleFiles = []string{
	filepath.Join("..", "examples", "example.com.zone"),
	filepath.Join("..", "examples", "example.net.yaml"),
}

// roundTrip formats z, parses the result and checks that it gives z back
// and that formatting that again gives the same bytes. It returns the
// output.
func roundTrip(t testing.TB, z *Zone) []byte {
	t.Helper()
	out, err := FormatYAML(z)
	if err != nil {
		t.Fatalf("format: %v", err)
	}
	back, err := Parse(out, "x.yaml")
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	if d := zoneDiff(z, back); d != "" {
		t.Fatalf("zone read back differs: %s\n%s", d, out)
	}
	again, err := FormatYAML(back)
	if err != nil {
		t.Fatalf("format of the zone read back: %v", err)
	}
	if !bytes.Equal(out, again) {
		t.Fatalf("output not stable:\n--- first\n%s--- second\n%s", out, again)
	}
	return out
}

// zoneDiff describes how b differs from a, ignoring lines, sources, the
// order of records and the case of the SOA owner (the soa mapping puts it
// at the origin). "" means equal.
func zoneDiff(a, b *Zone) string {
	// What the loader refuses ("\ ", a leading '$') is respelled (\032).
	respelled := strings.Contains(a.Origin, `\`) || strings.HasPrefix(a.Origin, "$")
	if a.Origin != b.Origin && !(respelled && sameName(a.Origin, b.Origin)) {
		return fmt.Sprintf("origin %q, want %q", b.Origin, a.Origin)
	}
	ra, rb := recordKeys(a), recordKeys(b)
	if !slices.Equal(ra, rb) {
		return fmt.Sprintf("records\n got%s\nwant%s", recordStrings(b), recordStrings(a))
	}
	da, db := comparableDatacenters(a.Datacenters), comparableDatacenters(b.Datacenters)
	if !reflect.DeepEqual(da, db) {
		return fmt.Sprintf("datacenters\n got %+v\nwant %+v", db, da)
	}
	pa, pb := comparablePools(a.Pools), comparablePools(b.Pools)
	if !reflect.DeepEqual(pa, pb) {
		return fmt.Sprintf("pools\n got %+v\nwant %+v", pb, pa)
	}
	return ""
}

// sameName compares names by their wire form, lowering ASCII letters
// only, so that escapes spelled differently (\032 and "\ ") are the same
// name. (WireName goes through CanonicalName, which changes non-ASCII.)
func sameName(a, b string) bool {
	la, erra := canonicalLabels(dns.Fqdn(a))
	lb, errb := canonicalLabels(dns.Fqdn(b))
	return erra == nil && errb == nil && compareLabels(la, lb) == 0
}

// recordKeys returns the records in wire form, where escapes spelled
// differently are the same name, sorted. The SOA owner is lowered, and
// the owner "" is the root (the master file parser gives it to a first
// record without an owner when the origin is ".").
func recordKeys(z *Zone) []string {
	keys := make([]string, len(z.Records))
	for i, r := range z.Records {
		rr := r.RR
		if rr.Header().Name == "" {
			rr = dns.Copy(rr)
			rr.Header().Name = "."
		}
		w, err := wireForm(rr)
		if err != nil {
			keys[i] = "unpackable " + rr.String()
			continue
		}
		if rr.Header().Rrtype == dns.TypeSOA {
			for j := 0; j < len(w) && w[j] != 0; j += 1 + int(w[j]) {
				for k := j + 1; k <= j+int(w[j]) && k < len(w); k++ {
					if 'A' <= w[k] && w[k] <= 'Z' {
						w[k] += 'a' - 'A'
					}
				}
			}
		}
		keys[i] = string(w)
	}
	sort.Strings(keys)
	return keys
}

// recordStrings lists the records for messages.
func recordStrings(z *Zone) string {
	var b strings.Builder
	for _, r := range z.Records {
		b.WriteString("\n\t" + r.RR.String())
	}
	return b.String()
}

func comparableDatacenters(dcs []Datacenter) []Datacenter {
	out := make([]Datacenter, len(dcs))
	for i, dc := range dcs {
		dc.Line = 0
		out[i] = dc
	}
	return out
}

// comparablePools clears lines and makes empty lists and maps nil: the
// loader does not tell them apart.
func comparablePools(pools []Pool) []Pool {
	out := make([]Pool, len(pools))
	for i, p := range pools {
		p.Line = 0
		if len(p.Bias) == 0 {
			p.Bias = nil
		}
		p.Rules = nil
		for _, r := range pools[i].Rules {
			r.Line = 0
			r.CIDRs = nilIfEmpty(r.CIDRs)
			r.Countries = nilIfEmpty(r.Countries)
			r.Continents = nilIfEmpty(r.Continents)
			r.Datacenters = nilIfEmpty(r.Datacenters)
			p.Rules = append(p.Rules, r)
		}
		p.Endpoints = nil
		for _, e := range pools[i].Endpoints {
			e.Line = 0
			p.Endpoints = append(p.Endpoints, e)
		}
		out[i] = p
	}
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestFormatYAMLFiles round-trips every zone of testdata and examples.
func TestFormatYAMLFiles(t *testing.T) {
	for _, file := range append(zoneFiles(t, "testdata"), exampleFiles...) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			z, err := Parse(data, file)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			roundTrip(t, z)
		})
	}
}

// masterHead and trickyHead start valid zones: the SOA, NS and glue.
const masterHead = "$ORIGIN example.com.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\n"

const trickyHead = "origin: example.com.\nsoa: {ns: ns1, mbox: hostmaster, serial: 1}\n" +
	"records: [{name: '@', type: NS, data: ns1}, {name: ns1, type: A, data: 192.0.2.53}]\n"

// trickyZones are zones made to trip up quoting, name handling and pool
// settings; they also seed the fuzzer.
var trickyZones = []struct {
	name, source, text string
}{
	{
		name: "TXT data", source: "t.zone",
		text: masterHead + `q TXT "say \"hi\"; a: b # not a comment" "caf\195\169 \226\130\172" "tab\009end" "back\\slash" "new\010line"
q TXT "*star" "@at" "&anchor" "!tag" "%pct" "- dash" "? q" "{brace}" "[bracket]" "|pipe" ">fold" "'single'"
q TXT "" "yes" "no" "on" "null" "~" "123" "1e3" "0x1F" "1:20"
long TXT "` + strings.Repeat("x", 255) + `" "` + strings.Repeat("y;", 127) + `"
spf TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all"
`,
	},
	{
		name: "wildcard, apex and odd names", source: "t.zone",
		text: `$ORIGIN example.com.
@ 60 SOA ns1 hostmaster 4294967295 0 1 2 3
@ 0 NS ns1
@ 0 NS yes.example.net.
ns1 60 A 192.0.2.53
@ 60 MX 10 mail
@ 60 TXT "apex"
* 60 MX 10 mail
*.wild 60 TXT "wild"
*.wild 60 A 192.0.2.80
yes 60 A 192.0.2.1
no 60 TXT "no"
on 60 CNAME off.example.net.
123 60 A 192.0.2.3
1e3 60 AAAA 2001:db8::1e3
null 60 CNAME *.example.net.
Mixed.Case 60 A 192.0.2.4
mixed.case 60 A 192.0.2.5
big 4294967295 A 192.0.2.6
a\ b 60 TXT "escaped space"
semi\;colon 60 A 192.0.2.9
paren\(x\) 60 A 192.0.2.9
quote\"d 60 A 192.0.2.9
\$dollar 60 A 192.0.2.9
\@at 60 CNAME \@foo.example.com.
dot\.ted 60 A 192.0.2.9
back\\slash 60 A 192.0.2.9
caf\195\169 60 A 192.0.2.9
café 60 A 192.0.2.10
_sip._tcp 60 SRV 10 60 5060 sip
`,
	},
	{
		name: "reverse zone", source: "t.zone",
		text: `$ORIGIN 2.0.192.in-addr.arpa.
$TTL 86400
@ SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@ NS ns1.example.com.
1 PTR www.example.com.
2 PTR yes.
0/26 NS ns.example.net.
10 CNAME 10.0/26
`,
	},
	// Found as loader issues when CanonicalName lowered with Unicode rules:
	// it mapped the octet \xe8 (not UTF-8) to U+FFFD and É to é, other
	// names than the SOA owner (RFC 4343 folds ASCII only).
	{
		name: "origin not UTF-8", source: "t.zone",
		text: "$ORIGIN 0\xe8\n$TTL 0\n@ SOA 0 0 0 0 0 0 0\n NS 0",
	},
	{
		name: "origin with non-ASCII capital", source: "t.zone",
		text: "$ORIGIN \xc3\x89x.\n$TTL 0\n@ SOA ns hm 0 0 0 0 0\n NS ns",
	},
	{
		name: "origin starting with $", source: "t.zone",
		text: "$ORIGIN $x.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n$y.$x. A 192.0.2.2\na.$y A 192.0.2.3\n\\$z CNAME $y\n",
	},
	{
		name: "names with $", source: "t.yaml",
		text: `origin: example.com.
soa: {ns: ns1, mbox: hostmaster, serial: 1}
records:
  - {name: '@', type: NS, data: ns1}
  - {name: ns1, type: A, data: 192.0.2.53}
  - {name: a.$b, type: A, data: 192.0.2.7}
  - {name: '\$c', type: TXT, data: '"$d"'}
datacenters: [{name: $dc, lat: 0, lon: 0}]
pools:
  - {name: x.$p, when_all_down: 'fallback: \$q', endpoints: [{address: 192.0.2.1, datacenter: $dc}]}
  - {name: '\$q', endpoints: [{address: 192.0.2.2, datacenter: $dc}]}
`,
	},
	{
		// The parser gives the first record the owner "", not ".".
		name: "root zone with the first owner left out", source: "t.zone",
		text: "$ORIGIN .\n$TTL 60\n SOA a.root-servers.net. nstld.verisign-grs.com. 1 2 3 4 5\n NS a.root-servers.net.\ncom. NS a.gtld-servers.net.\n",
	},
	{
		name: "record types", source: "t.zone",
		text: `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 2 3 4 5
@ NS ns1
ns1 A 192.0.2.1
svc HTTPS 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.1 ech=AEj+DQBEAQAgACBh
svc2 SVCB 0 svc
@ CAA 0 issue "letsencrypt.org; validationmethods=dns-01"
@ NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .
@ LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
@ SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
_443._tcp TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
@ HINFO "INTEL" "Linux"
@ URI 10 1 "https://example.com/"
t1 TYPE1 \# 4 c0000201
`,
	},
	{
		name: "SOA owner case and numeric origin", source: "t.zone",
		text: "123.Example. 60 SOA ns1.123.example. Host\\.Master.123.example. 1 2 3 4 5\n" +
			"123.Example. 60 NS ns1.123.Example.\nns1.123.Example. 60 A 192.0.2.1\n",
	},
	{
		name: "every pool setting", source: "t.yaml",
		text: trickyHead + `datacenters:
  - {name: eu-west, lat: 51.5074, lon: -0.1278, country: GB, continent: EU}
  - {name: us-east, lat: -0.000001, lon: 180, country: US, continent: NA}
  - {name: ap-south, lat: -90, lon: -179.99999999999997}
pools:
  - name: www
    ttl: 0
    max_answers: 2147483647
    geo: rules
    sticky: true
    spill: 1
    unknown_is_up: false
    when_all_down: fallback:backup.example.com.
    bias: {eu-west: -250.5, us-east: 0.125, ap-south: -20037}
    rules:
      - {cidr: [198.51.100.0/24, "2001:db8:1::/48", 192.0.2.1/32], country: [de, FR], continent: [eu, NA], datacenters: [us-east, eu-west]}
      - {continent: AS, datacenters: ap-south}
      - {country: BR, datacenters: [ap-south]}
      - {cidr: "::/0", datacenters: [eu-west]}
    endpoints:
      - {address: 192.0.2.1, datacenter: eu-west, weight: 4294967295}
      - {address: "2001:db8::1", datacenter: us-east, weight: 7, admin: drain, health: down}
      - {address: "2001:db8::2", datacenter: ap-south, weight: 1, admin: disabled, health: up}
      - {address: 192.0.2.2, datacenter: ap-south}
  - name: backup.example.com.
    geo: none
    when_all_down: empty
    endpoints: [{address: 192.0.2.9, datacenter: us-east, health: up}, {address: "::1", datacenter: eu-west}]
  - name: "*.pool"
    geo: nearest
    when_all_down: fail_open
    endpoints: [{address: "2001:db8::ffff:1", datacenter: us-east}]
`,
	},
	{
		name: "YAML 1.1 words and numbers as values", source: "t.yaml",
		text: trickyHead + `datacenters:
  - {name: "yes", lat: 1, lon: 1, country: "NO", continent: "NA"}
  - {name: "no", lat: 1.5, lon: -1.5, country: "ON"}
  - {name: "on", lat: 0, lon: 0}
  - {name: "off", lat: 0, lon: 0}
  - {name: "123", lat: 0, lon: 0}
  - {name: "1e3", lat: 0, lon: 0}
  - {name: "0x1F", lat: 0, lon: 0}
  - {name: "1:20", lat: 0, lon: 0}
  - {name: "null", lat: 0, lon: 0}
  - {name: "~", lat: 0, lon: 0}
  - {name: "true", lat: 0, lon: 0}
  - {name: "2026-01-02", lat: 0, lon: 0}
  - {name: "a: b # c", lat: 0, lon: 0}
  - {name: " padded ", lat: 0, lon: 0}
  - {name: "Zürich", lat: 47.3769, lon: 8.5417}
  - {name: "tab\there", lat: 0, lon: 0}
  - {name: "*star", lat: 0, lon: 0}
  - {name: "@at", lat: 0, lon: 0}
  - {name: "<<", lat: 0, lon: 0}
  - {name: "=", lat: 0, lon: 0}
pools:
  - name: "yes"
    geo: rules
    bias: {"yes": 1, "no": -1, "on": 0.5, "123": 100, "~": -0.001, "a: b # c": 2, "<<": 3}
    rules:
      - {country: ["NO", "ON", "Y"], continent: ["NA", "N"], datacenters: ["yes", "no", "123", "null", "~", "=", "<<"]}
    endpoints:
      - {address: 192.0.2.1, datacenter: "on"}
      - {address: 192.0.2.2, datacenter: "off"}
      - {address: 192.0.2.3, datacenter: "1e3"}
      - {address: 192.0.2.4, datacenter: "0x1F"}
      - {address: 192.0.2.5, datacenter: "1:20"}
      - {address: 192.0.2.6, datacenter: "true"}
      - {address: 192.0.2.7, datacenter: "2026-01-02"}
      - {address: 192.0.2.8, datacenter: "a: b # c"}
      - {address: 192.0.2.9, datacenter: " padded "}
      - {address: 192.0.2.10, datacenter: "Zürich"}
      - {address: 192.0.2.11, datacenter: "tab\there"}
      - {address: 192.0.2.12, datacenter: "*star"}
      - {address: 192.0.2.13, datacenter: "@at"}
  - name: "123"
    endpoints: [{address: "2001:db8::123", datacenter: "123"}]
`,
	},
}

// TestFormatYAMLTricky round-trips trickyZones and checks their quoting.
func TestFormatYAMLTricky(t *testing.T) {
	for _, tc := range trickyZones {
		t.Run(tc.name, func(t *testing.T) {
			z, err := Parse([]byte(tc.text), tc.source)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			out := roundTrip(t, z)
			checkQuoting(t, out)
		})
	}
}

// TestFormatYAMLEscapedNames checks names the loader would refuse as they
// are, which a zone built in code (from a database) may hold: they are
// written as \DDD escapes of the same name.
func TestFormatYAMLEscapedNames(t *testing.T) {
	rr := func(s string) Record {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return Record{RR: r}
	}
	z := &Zone{Origin: "example.com.", Records: []Record{
		rr("example.com. 60 SOA ns1.example.com. hostmaster.example.com. 1 2 3 4 5"),
		rr("example.com. 60 NS ns1.example.com."),
		rr("ns1.example.com. 60 A 192.0.2.1"),
	}}
	for _, name := range []string{"a b.example.com.", "semi;colon.example.com.", "(x).example.com.", `q"d.example.com.`, "$dollar.example.com.", "\xff.example.com."} {
		z.Records = append(z.Records, Record{RR: &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   netip.MustParseAddr("192.0.2.9").AsSlice(),
		}})
	}
	if err := Validate(z); err != nil {
		t.Fatalf("test zone is not valid: %v", err)
	}
	out := roundTrip(t, z)
	for _, want := range []string{`a\032b.example.com.`, `semi\059colon.example.com.`, `\040x\041.example.com.`, `q\034d.example.com.`, `\036dollar.example.com.`, `\255.example.com.`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks name %s:\n%s", want, out)
		}
	}
}

// TestFormatYAMLOutput pins the layout: SOA mapping, records in canonical
// order grouped by RRset, every pool setting written.
func TestFormatYAMLOutput(t *testing.T) {
	text := `origin: Example.com.
soa: {ns: ns1, mbox: hostmaster, serial: 7}
records:
  - {name: www, type: A, ttl: 60, data: [192.0.2.2, 192.0.2.1]}
  - {name: '@', type: TXT, data: '"v=spf1 -all"'}
  - {name: b.a, type: A, data: 192.0.2.3}
  - {name: '@', type: NS, data: [ns2, ns1]}
  - {name: z, type: A, data: 192.0.2.4}
  - {name: '*', type: MX, data: 10 mail}
datacenters:
  - {name: "no", lat: 59.9139, lon: 10.7522, country: "no"}
pools:
  - name: api
    bias: {"no": -12.5}
    endpoints: [{address: "2001:db8::1", datacenter: "no"}]
`
	want := `origin: example.com.
soa:
  ns: ns1.example.com.
  mbox: hostmaster.example.com.
  serial: 7
  refresh: 7200
  retry: 3600
  expire: 1209600
  minimum: 300
  ttl: 3600
records:
  - name: example.com.
    type: NS
    ttl: 3600
    data:
      - ns1.example.com.
      - ns2.example.com.
  - name: example.com.
    type: TXT
    ttl: 3600
    data: '"v=spf1 -all"'
  - name: '*.example.com.'
    type: MX
    ttl: 3600
    data: '10 mail.example.com.'
  - name: b.a.example.com.
    type: A
    ttl: 3600
    data: '192.0.2.3'
  - name: www.example.com.
    type: A
    ttl: 60
    data:
      - '192.0.2.1'
      - '192.0.2.2'
  - name: z.example.com.
    type: A
    ttl: 3600
    data: '192.0.2.4'
datacenters:
  - {name: 'no', lat: 59.9139, lon: 10.7522, country: 'NO'}
pools:
  - name: api.example.com.
    ttl: 30
    max_answers: 4
    geo: nearest
    sticky: false
    spill: 2
    unknown_is_up: true
    when_all_down: fail_open
    quorum: majority
    bias: {'no': -12.5}
    endpoints:
      - {address: '2001:db8::1', datacenter: 'no', weight: 100, admin: active, health: unknown}
`
	z, err := Parse([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := roundTrip(t, z)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// yaml11Special matches plain scalars that YAML 1.1 or the 1.2 core
// schema read as something other than a string: booleans, null, numbers
// (base 60 included), timestamps, and the merge and value keys.
var yaml11Special = regexp.MustCompile(`^(?:` +
	`y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF` +
	`|~|null|Null|NULL|` +
	`|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+` +
	`|[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+` +
	`|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)` +
	`|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?` +
	`|<<|=` +
	`)$`)

// numericKeys are the keys whose values are numbers or booleans.
var numericKeys = map[string]bool{
	"serial": true, "refresh": true, "retry": true, "expire": true, "minimum": true, "ttl": true,
	"lat": true, "lon": true, "max_answers": true, "spill": true, "weight": true,
	"sticky": true, "unknown_is_up": true,
}

// checkQuoting checks that every plain scalar of out is either a number
// or boolean where one belongs, or a string no YAML version reads as
// anything else.
func checkQuoting(t *testing.T, out []byte) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	// numeric says n is a value that must be a number or a boolean.
	var walk func(n *yaml.Node, key string, numeric bool)
	walk = func(n *yaml.Node, key string, numeric bool) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key, false)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				walk(k, "", false)
				// Bias maps datacenters to numbers.
				walk(n.Content[i+1], k.Value, key == "bias" || numericKeys[k.Value])
			}
		case yaml.ScalarNode:
			plain := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0
			switch {
			case numeric && !plain:
				t.Errorf("line %d: number or boolean %q is quoted", n.Line, n.Value)
			case !numeric && plain && yaml11Special.MatchString(n.Value):
				t.Errorf("line %d: string %q is not quoted", n.Line, n.Value)
			}
		}
	}
	walk(&doc, "", false)
}

// TestFormatYAMLErrors checks that zones that cannot be written exactly
// are refused with an error that says why, rather than written wrong.
func TestFormatYAMLErrors(t *testing.T) {
	base := func() *Zone {
		z, err := Parse([]byte(trickyHead+`datacenters: [{name: dc, lat: 1, lon: 2}]
pools: [{name: www, endpoints: [{address: 192.0.2.1, datacenter: dc}]}]
`), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	addRR := func(s string) func(*Zone) {
		return func(z *Zone) {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			z.Records = append(z.Records, Record{RR: rr, Line: 9})
		}
	}
	tests := []struct {
		name   string
		change func(*Zone)
		want   string
	}{
		{"no origin", func(z *Zone) { z.Origin, z.Source = "", "db" }, "zones: format db: zone has no origin"},
		{"no SOA", func(z *Zone) { z.Records = z.Records[1:] }, "zones: format example.com.: zone has no SOA record"},
		{"nil record", func(z *Zone) { z.Records = append(z.Records, Record{Line: 9}) }, "record at line 9: record without data"},
		{"relative owner", func(z *Zone) {
			z.Records = append(z.Records, Record{RR: &dns.A{Hdr: dns.RR_Header{Name: "www", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{192, 0, 2, 1}}})
		}, `name "www" is not fully qualified`},
		{"relative target", func(z *Zone) {
			z.Records = append(z.Records, Record{RR: &dns.CNAME{Hdr: dns.RR_Header{Name: "c.example.com.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "www"}})
		}, `parses back as "c.example.com.\t0\tIN\tCNAME\twww.example.com."`},
		{"class CH", addRR("v.example.com. 60 CH TXT x"), "class CH cannot be written"},
		{"type without mnemonic", addRR(`u.example.com. 60 IN TYPE65280 \# 2 abcd`), "type TYPE65280 has no mnemonic"},
		{"SOA relative ns", func(z *Zone) { z.Records[0].RR.(*dns.SOA).Ns = "ns1" }, `SOA: name "ns1" is not fully qualified`},
		{"latitude NaN", func(z *Zone) { z.Datacenters[0].Lat = math.NaN() }, "datacenter dc: coordinates NaN,2 out of range"},
		{"empty datacenter name", func(z *Zone) { z.Datacenters[0].Name = "" }, `bad datacenter name ""`},
		{"bad UTF-8", func(z *Zone) { z.Datacenters[0].Name = "\xff" }, `bad datacenter name "\xff"`},
		{"lower-case country", func(z *Zone) { z.Datacenters[0].Country = "gb" }, `country "gb" is not a two-letter upper-case code`},
		{"long continent", func(z *Zone) { z.Datacenters[0].Continent = "EUR" }, `continent "EUR" is not a two-letter upper-case code`},
		{"max_answers too big", func(z *Zone) { z.Pools[0].MaxAnswers = math.MaxInt32 + 1 }, "max_answers 2147483648 out of range"},
		{"negative spill", func(z *Zone) { z.Pools[0].Spill = -1 }, "spill -1 out of range"},
		{"bad geo", func(z *Zone) { z.Pools[0].Geo = 9 }, "unknown geo mode 9"},
		{"bad all-down mode", func(z *Zone) { z.Pools[0].WhenAllDown = 9 }, "unknown when_all_down mode 9"},
		{"fallback without pool", func(z *Zone) { z.Pools[0].WhenAllDown = Fallback }, `bad fallback pool ""`},
		{"stray fallback pool", func(z *Zone) { z.Pools[0].FallbackTo = "x.example.com." }, "fallback pool x.example.com. set without when_all_down fallback"},
		{"bias out of range", func(z *Zone) { z.Pools[0].Bias = map[string]float64{"dc": 20038} }, `bad bias "dc": 20038`},
		{"bias infinite", func(z *Zone) { z.Pools[0].Bias = map[string]float64{"dc": math.Inf(-1)} }, `bad bias "dc": -Inf`},
		{"invalid CIDR", func(z *Zone) { z.Pools[0].Rules = []Rule{{CIDRs: []netip.Prefix{{}}, Datacenters: []string{"dc"}}} }, "rule 1: invalid CIDR"},
		{"lower-case rule country", func(z *Zone) { z.Pools[0].Rules = []Rule{{Countries: []string{"de"}, Datacenters: []string{"dc"}}} }, `country "de" is not an upper-case code`},
		{"empty rule datacenter", func(z *Zone) { z.Pools[0].Rules = []Rule{{Countries: []string{"DE"}, Datacenters: []string{""}}} }, `rule 1: bad datacenter name ""`},
		{"endpoint without address", func(z *Zone) { z.Pools[0].Endpoints[0].Addr = netip.Addr{} }, "endpoint invalid IP: no address"},
		{"zero weight", func(z *Zone) { z.Pools[0].Endpoints[0].Weight = 0 }, "endpoint 192.0.2.1: weight 0"},
		{"bad admin state", func(z *Zone) { z.Pools[0].Endpoints[0].Admin = 7 }, "unknown admin state 7"},
		{"bad health state", func(z *Zone) { z.Pools[0].Endpoints[0].Health = 7 }, "unknown health state 7"},
		{"endpoint without datacenter", func(z *Zone) { z.Pools[0].Endpoints[0].Datacenter = "" }, `bad datacenter name ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := base()
			tc.change(z)
			out, err := FormatYAML(z)
			if err == nil {
				t.Fatalf("no error; wrote\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant ...%s...", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "zones: format ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
	if _, err := FormatYAML(nil); err == nil {
		t.Error("nil zone: no error")
	}
}

// TestYAMLName checks the spelling of names for the loader.
func TestYAMLName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"www.example.com.", "www.example.com."},
		{`a\ b.`, `a\032b.`},
		{`a\032b.`, `a\032b.`},
		{"\\;\\(\\)\\\"\\\t.", `\059\040\041\034\009.`},
		{"$x.$y.", `\036x.$y.`},
		{`\$x.`, `\$x.`},
		{`\\.\..`, `\\.\..`},
		{"caf\xc3\xa9.", "caf\xc3\xa9."},
		{"\\\xc3\xa9.", "\\\xc3\xa9."},
		{"\xff\\\xfe.", `\255\254.`},
		{"a\x01b.", "a\x01b."},
	}
	for _, tc := range tests {
		got, err := yamlName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("yamlName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := yamlName(`a\`); err == nil {
		t.Error(`yamlName("a\\"): no error`)
	}
}

// fuzzSeeds adds zones Parse accepts, each with its format: those of
// testdata and examples, and trickyZones, also as fragments.
func fuzzSeeds(f *testing.F) {
	var files []string
	for _, pat := range []string{"*.zone", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join("testdata", pat))
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, file := range append(files, exampleFiles...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, strings.HasSuffix(file, ".yaml"))
	}
	for _, tc := range trickyZones {
		isYAML := strings.HasSuffix(tc.source, ".yaml")
		f.Add([]byte(tc.text), isYAML)
		if frag, ok := strings.CutPrefix(tc.text, fuzzHead(isYAML)); ok {
			f.Add([]byte(frag), isYAML)
		}
	}
}

// fuzzHead is what a fragment is parsed after: records for a master
// file, datacenters and pools for YAML.
func fuzzHead(isYAML bool) string {
	if isYAML {
		return trickyHead
	}
	return masterHead
}

// FuzzFormatYAMLRoundTrip checks that any zone Parse accepts, in either
// format, is written and reads back the same. Input Parse refuses is
// tried again as a fragment after a valid head, since mutations of whole
// zones rarely stay valid and only valid zones reach the writer.
func FuzzFormatYAMLRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, isYAML bool) {
		source := "fuzz.zone"
		if isYAML {
			source = "fuzz.yaml"
		}
		z, err := Parse(data, source)
		if err != nil {
			z, err = Parse(append([]byte(fuzzHead(isYAML)), data...), source)
		}
		if err != nil {
			return
		}
		if issue := loaderIssue(z); issue != "" {
			t.Skip(issue)
		}
		roundTrip(t, z)
	})
}

// loaderIssue says why no writer could keep z, the fault being in what
// the loaders accept: a record of a type the format cannot name, or one
// that does not survive its own presentation format. "" means none.
func loaderIssue(z *Zone) string {
	// CanonicalName lowers non-ASCII letters and replaces bytes that are
	// not UTF-8, so the origin can be another name than the SOA owner.
	if soa := z.SOA(); soa != nil && !sameName(soa.Hdr.Name, z.Origin) {
		return fmt.Sprintf("origin %q is not the SOA owner %q", z.Origin, soa.Hdr.Name)
	}
	for _, r := range z.Records {
		rr := r.RR
		if _, ok := dns.StringToType[dns.TypeToString[rr.Header().Rrtype]]; !ok {
			return fmt.Sprintf("type %s has no mnemonic", dns.Type(rr.Header().Rrtype))
		}
		if data := strings.TrimPrefix(rr.String(), rr.Header().String()); !utf8.ValidString(data) {
			return fmt.Sprintf("%q: data that is not UTF-8 does not fit in YAML", rr.String())
		}
		back, err := parseOneRR(rr.String()+"\n", z.Origin)
		if err != nil {
			return fmt.Sprintf("%q does not parse: %v", rr.String(), err)
		}
		w1, err1 := wireForm(rr)
		w2, err2 := wireForm(back)
		if err1 != nil || err2 != nil || !bytes.Equal(w1, w2) {
			return fmt.Sprintf("%q parses as %q", rr.String(), back.String())
		}
	}
	return ""
}

// TestFormatYAMLLoaderIssues keeps what the fuzzer found that Parse
// accepts but no file can hold. FormatYAML must refuse these, not write
// something else; when the loaders are fixed, Parse refuses them.
func TestFormatYAMLLoaderIssues(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		// A record with a type and no RDATA (the form of dynamic update)
		// is returned with its fields zero, RDATA cut short; rdataEmpty
		// misses the types whose String() prints those zeros ("0 ").
		{"MX without data at end of file", "$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n MX ",
			`does not parse back: dns: bad MX Mx`},
		{"SRV without data", "$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nx SRV\n",
			`does not parse back: dns: bad SRV Target`},
		// A CAA tag is printed as it is, with no escapes, and the parser
		// takes any token, though RFC 8659 allows letters and digits only.
		{"CAA tag not UTF-8", masterHead + "x CAA 0 \x8a \"0\"\n", `data "0 \x8a \"0\"" is not UTF-8`},
		// The parser reads NXT data as NSEC's; a type 0 in the bitmap is
		// printed "None", which it does not read back.
		{"NXT with type 0", masterHead + "x NXT 0 00000\n", `does not parse back: dns: bad NSEC TypeBitMap: "None"`},
		// RFC 3597 types have no mnemonic, which the YAML format needs.
		{"type without mnemonic", "$ORIGIN example.com.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\nx TYPE65280 \\# 2 abcd\n",
			"type TYPE65280 has no mnemonic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := Parse([]byte(tc.text), "t.zone")
			if err != nil {
				t.Skipf("Parse now refuses it: %v", err)
			}
			if loaderIssue(z) == "" {
				t.Error("loaderIssue does not see it")
			}
			out, err := FormatYAML(z)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FormatYAML: %v, want ...%s...; wrote\n%s", err, tc.want, out)
			}
		})
	}
}

// TestFormatYAMLHealthChecks round-trips pools with health checks, an
// endpoint override (including one that turns a pool setting off) and a
// quorum.
func TestFormatYAMLHealthChecks(t *testing.T) {
	text := poolHead + `datacenters: [{name: dc, lat: 1, lon: 2}]
pools:
  - name: www
    quorum: any
    health_check: {type: https, port: 443, path: /health, expect_status: [200, 204], expect_body: UP, tls_insecure: true, interval: 2s, timeout: 1s, rise: 3, fall: 4, ok: 2}
    endpoints:
      - {address: 192.0.2.1, datacenter: dc}
      - {address: 192.0.2.2, datacenter: dc, health_check: {port: 8443, host: b.example, tls_insecure: false, expect_status: 200}}
  - name: dns
    health_check: {type: dns, dns_name: example.com., dns_type: SOA, expect_rcode: NOERROR}
    endpoints: [{address: 192.0.2.3, datacenter: dc}]
`
	z, err := Parse([]byte(text), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := FormatYAML(z)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "back.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	strip := func(ps []Pool) []Pool {
		ps = slices.Clone(ps)
		for i := range ps {
			ps[i].Line = 0
			ps[i].Endpoints = slices.Clone(ps[i].Endpoints)
			for j := range ps[i].Endpoints {
				ps[i].Endpoints[j].Line = 0
			}
		}
		return ps
	}
	if got, want := strip(back.Pools), strip(z.Pools); !reflect.DeepEqual(got, want) {
		t.Errorf("pools differ after a round trip\n got %+v\nwant %+v\n%s", got, want, out)
	}
	if e := back.Pools[0].Endpoints[1].Check; e == nil || e.TLSInsecure || e.Port != 8443 || e.Rise != 3 {
		t.Errorf("endpoint override after a round trip: %+v", e)
	}
}

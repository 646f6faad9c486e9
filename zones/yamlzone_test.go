package zones

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestParseYAML checks the records a YAML zone yields and their lines.
func TestParseYAML(t *testing.T) {
	const head = "origin: example.com.\n"
	tests := []struct {
		name, text string
		want       []string // "line owner ttl type rdata"
	}{
		{
			name: "SOA defaults",
			text: head + "soa: {ns: ns1, mbox: hostmaster, serial: 7}\n",
			want: []string{"2\texample.com.\t3600\tIN\tSOA\tns1.example.com. hostmaster.example.com. 7 7200 3600 1209600 300"},
		},
		{
			name: "SOA fields and TTLs",
			text: head + "ttl: 60\nsoa:\n  ns: ns.example.net.\n  mbox: dns.example.net.\n  serial: 4294967295\n  refresh: 1\n  retry: 2\n  expire: 3\n  minimum: 4\n  ttl: 5\n",
			want: []string{"4\texample.com.\t5\tIN\tSOA\tns.example.net. dns.example.net. 4294967295 1 2 3 4"},
		},
		{
			name: "zone TTL applies to SOA and records",
			text: "ttl: 90\nrecords:\n  - {name: www, type: A, data: 192.0.2.1}\nsoa: {ns: ns1, mbox: hm, serial: 1}\n" + head,
			want: []string{
				"4\texample.com.\t90\tIN\tSOA\tns1.example.com. hm.example.com. 1 7200 3600 1209600 300",
				"3\twww.example.com.\t90\tIN\tA\t192.0.2.1",
			},
		},
		{
			name: "names",
			text: head + "records:\n" +
				"  - {name: '@', type: txt, data: '\"apex\"'}\n" +
				"  - {name: '*', type: MX, data: 10 mx}\n" +
				"  - {name: '*.wild', type: CNAME, data: target.example.net.}\n" +
				"  - {name: Deep.Sub, type: AAAA, ttl: 0, data: '2001:db8::1'}\n" +
				"  - {name: abs.example.com., type: NS, data: [ns1, ns2.abs]}\n",
			want: []string{
				"3\texample.com.\t3600\tIN\tTXT\t\"apex\"",
				"4\t*.example.com.\t3600\tIN\tMX\t10 mx.example.com.",
				"5\t*.wild.example.com.\t3600\tIN\tCNAME\ttarget.example.net.",
				"6\tDeep.Sub.example.com.\t0\tIN\tAAAA\t2001:db8::1",
				"7\tabs.example.com.\t3600\tIN\tNS\tns1.example.com.",
				"7\tabs.example.com.\t3600\tIN\tNS\tns2.abs.example.com.",
			},
		},
		{
			name: "data list items keep their lines",
			text: head + "records:\n  - name: www\n    type: TXT\n    data:\n      - '\"a ; b\" c'\n      # comment\n      - 10\n",
			want: []string{
				"6\twww.example.com.\t3600\tIN\tTXT\t\"a ; b\" \"c\"",
				"8\twww.example.com.\t3600\tIN\tTXT\t\"10\"",
			},
		},
		{
			name: "empty sections",
			text: head + "records:\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseYAML([]byte(tc.text), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range z.Records {
				got = append(got, strings.Join([]string{itoa(r.Line), r.RR.String()}, "\t"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestParseYAMLErrors covers errors not in testdata/bad.
func TestParseYAMLErrors(t *testing.T) {
	const head = "origin: example.com.\n"
	tests := []struct {
		name, text, want string
	}{
		{"origin not a string", "origin: [a]\n", `t.yaml:1: origin: want a value, got a list`},
		{"origin @", "origin: '@'\n", `t.yaml:1: origin: bad name "@"`},
		{"TTL too big", head + "ttl: 4294967296\n", `t.yaml:2: ttl: want a number from 0 to 4294967295, got "4294967296"`},
		{"TTL negative", head + "ttl: -1\n", `t.yaml:2: ttl: want a number`},
		{"TTL empty", head + "ttl:\n", `t.yaml:2: ttl: want a value, got nothing`},
		{"soa not a mapping", head + "soa: ns1\n", `t.yaml:2: soa: want a mapping, got "ns1"`},
		{"soa unknown key", head + "soa: {ns: a, mbox: b, serial: 1, mname: c}\n", `t.yaml:2: soa: unknown key mname`},
		{"soa bad name", head + "soa: {ns: 'a b', mbox: b, serial: 1}\n", `t.yaml:2: soa ns: bad name "a b"`},
		{"soa bad number", head + "soa: {ns: a, mbox: b, serial: x}\n", `t.yaml:2: soa serial: want a number`},
		{"records not a list", head + "records: {name: www}\n", `t.yaml:2: records: want a list, got a mapping`},
		{"record not a mapping", head + "records: [www]\n", `t.yaml:2: record: want a mapping, got "www"`},
		{"directive as name", head + "records: [{name: $TTL, type: A, data: 192.0.2.1}]\n", `t.yaml:2: record name: bad name "$TTL"`},
		{"empty data list", head + "records: [{name: www, type: A, data: []}]\n", `t.yaml:2: record www A: empty data list`},
		{"data not a string", head + "records: [{name: www, type: A, data: {a: b}}]\n", `t.yaml:2: record data: want a value, got a mapping`},
		{"no data", head + "records: [{name: www, type: A, data: ' '}]\n", `t.yaml:2: www A: bad A record at end of line`},
		{"two records in data", head + "records: [{name: www, type: A, data: '192.0.2.1 ( 192.0.2.2 )'}]\n", `t.yaml:2: www A: garbage after rdata`},
		{"comment in data", head + "records: [{name: www, type: A, data: '192.0.2.1 ; x'}, {name: w, type: A, data: 1.2.3}]\n", `t.yaml:2: w A: bad A record "1.2.3"`},
		{"key not a string", head + "[a]: b\n", `t.yaml:2: zone: keys must be strings`},
		{"alias", head + "ttl: &t 60\nsoa: {ns: a, mbox: b, serial: *t}\n", `t.yaml:3: aliases are not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tc.text), "t.yaml")
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors", err, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}

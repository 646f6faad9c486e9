package zones

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/miekg/dns"
)

// recordLines renders the records of z as "line owner type" items.
func recordLines(z *Zone) []string {
	var out []string
	for _, r := range z.Records {
		h := r.RR.Header()
		out = append(out, fmt.Sprintf("%d %s %s", r.Line, h.Name, typeName(h.Rrtype)))
	}
	return out
}

func typeName(t uint16) string { return dns.Type(t).String() }

func TestParseMasterOrigin(t *testing.T) {
	const body = "@ 60 SOA ns hm 1 2 3 4 5\n@ 60 NS ns\nns 60 A 192.0.2.1\n"
	tests := []struct {
		name, origin, text string
		want               string // origin, or the error
	}{
		{"given", "Example.COM", body, "example.com."},
		{"given, fqdn", "example.com.", body, "example.com."},
		{"given wins over $ORIGIN", "example.com.", "$ORIGIN example.org.\n" + body, "example.com."},
		{"$ORIGIN", "", "$ORIGIN Example.ORG.\n" + body, "example.org."},
		{"$ORIGIN relative to the root", "", "$ORIGIN example.org\n" + body, "example.org."},
		{"$ORIGIN after $TTL and comments", "", "; zone\n$TTL 60\n\n$ORIGIN example.net.\n" + body, "example.net."},
		{"first $ORIGIN", "", "$ORIGIN a.example.\n$ORIGIN b.example.\n" + body, "a.example."},
		{"SOA owner", "", "Example.NET. 60 SOA ns hm 1 2 3 4 5\n 60 NS ns\n", "example.net."},
		{"SOA owner after $TTL", "", "$TTL 60\nexample.net. SOA ns hm 1 2 3 4 5\n NS ns\n", "example.net."},
		{"relative SOA owner", "", body, "t.zone:1: cannot tell the zone origin"},
		{"@ SOA owner", "", "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n", "t.zone:2: cannot tell the zone origin"},
		{"no owner", "", "$TTL 60\n  SOA ns hm 1 2 3 4 5\n", "t.zone:2: cannot tell the zone origin"},
		{"absolute, not SOA", "", "www.example.net. 60 A 192.0.2.1\n", "t.zone:1: cannot tell the zone origin"},
		{"empty", "", "; nothing\n\n", "t.zone: zone file has no records"},
		{"bad origin", "a..b", body, `t.zone: bad origin "a..b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, err := ParseMaster(strings.NewReader(tc.text), "t.zone", tc.origin)
			got := ""
			if err != nil {
				got = err.Error()
			} else {
				got = z.Origin
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseMasterLines checks the line of each record where the syntax
// makes it hard to tell where records start.
func TestParseMasterLines(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{
			name: "multi-line SOA with comments",
			text: "$TTL 60\n\n@ SOA ns hm (\n 1 ; serial (\n 2 3 ; \"\n 4 5 )\n@ NS ns\n",
			want: []string{"3 example.com. SOA", "7 example.com. NS"},
		},
		{
			name: "no owner continues the previous one",
			text: "www 60 A 192.0.2.1\n    60 AAAA 2001:db8::1\n\t60 TXT x\n",
			want: []string{"1 www.example.com. A", "2 www.example.com. AAAA", "3 www.example.com. TXT"},
		},
		{
			name: "quotes hold ; ( ) and newlines",
			text: "a 60 TXT \"x ; ( y\" \"z)\"\nb 60 TXT \"one\ntwo\nthree\"\nc 60 TXT \"\\\"(\" ; (\nd 60 A 192.0.2.1\n",
			want: []string{"1 a.example.com. TXT", "2 b.example.com. TXT", "5 c.example.com. TXT", "6 d.example.com. A"},
		},
		{
			name: "comments hold quotes and parentheses",
			text: "; \"(\n; )\na 60 A 192.0.2.1 ; \" ( \nb 60 TXT ( x ; )\n y )\nc 60 A 192.0.2.2\n",
			want: []string{"3 a.example.com. A", "4 b.example.com. TXT", "6 c.example.com. A"},
		},
		{
			name: "parentheses around the TTL and type",
			text: "a ( 60 A\n 192.0.2.1 )\nb 60 A 192.0.2.2\n",
			want: []string{"1 a.example.com. A", "3 b.example.com. A"},
		},
		{
			name: "escaped characters",
			text: "a\\;b 60 TXT \\\"x\\(\nc\\ d 60 A 192.0.2.1\n",
			want: []string{"1 a\\;b.example.com. TXT", "2 c\\ d.example.com. A"},
		},
		{
			name: "CRLF and no final newline",
			text: "$TTL 60\r\na A 192.0.2.1\r\n\r\nb ( A\r\n 192.0.2.2 )\r\nc A 192.0.2.3",
			want: []string{"2 a.example.com. A", "4 b.example.com. A", "6 c.example.com. A"},
		},
		{
			name: "directives between records",
			text: "$TTL 60\na A 192.0.2.1\n$ORIGIN sub.example.com.\nb A 192.0.2.2\n$TTL 30\n@ A 192.0.2.3\n",
			want: []string{"2 a.example.com. A", "4 b.sub.example.com. A", "6 sub.example.com. A"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z, placed, err := parseMaster([]byte(tc.text), "t.zone", "example.com.")
			if err != nil {
				t.Fatal(err)
			}
			if !placed {
				t.Error("records not matched to their entries")
			}
			got := recordLines(z)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestParseMasterErrors checks that parse errors name the line and say
// what is wrong in words.
func TestParseMasterErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"bad A", "$TTL 60\n\nwww A 999.1.1.1\n", `t.zone:3: bad A record "999.1.1.1"`},
		{"bad field", "$TTL 60\nwww MX ten mail\n", `t.zone:2: bad MX record "ten" (pref)`},
		{"bad SOA over lines", "$TTL 60\n@ SOA ns hm (\n 1 2\n x 4 5 )\n", `t.zone:4: bad SOA record "x" (zone parameter)`},
		{"unknown type", "$TTL 60\nwww 60 IN BOGUS x\n", `t.zone:2: unknown RR type "BOGUS"`},
		{"TTL twice", "$TTL 60\nwww 60 60 A 192.0.2.1\n", `t.zone:2: expecting RR type or class, got "60"`},
		{"bad owner", "$TTL 60\na..b A 192.0.2.1\n", `t.zone:2: bad owner name "a..b"`},
		{"extra brace", "$TTL 60\nwww A 192.0.2.1 )\n", `t.zone:2: extra closing brace`},
		{"no TTL", "www A 192.0.2.1\n", `t.zone:1: record has no TTL, and no $TTL or earlier record gives one`},
		{"class", "$TTL 60\nwww CH A 192.0.2.1\nwww HS A 192.0.2.1\n", "t.zone:2: class CH is not supported, only IN\nt.zone:3: class HS is not supported, only IN"},
		{"$INCLUDE", "$TTL 60\n$INCLUDE /etc/passwd\n", "t.zone:2: $INCLUDE is not supported"},
		{"$GENERATE", "$TTL 60\n$GENERATE 1-2 a$ A 192.0.2.$\n", "t.zone:2: $GENERATE is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMaster(strings.NewReader(tc.text), "t.zone", "example.com.")
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

func TestParseMasterReadError(t *testing.T) {
	_, err := ParseMaster(iotest.ErrReader(errors.New("disk on fire")), "t.zone", "")
	if err == nil || !strings.Contains(err.Error(), "read t.zone: disk on fire") {
		t.Errorf("got %v", err)
	}
}

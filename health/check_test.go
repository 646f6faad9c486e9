package health

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestWithDefaults(t *testing.T) {
	got := Check{Type: "HTTP", Port: 80}.WithDefaults()
	want := Check{
		Type: "http", Port: 80, Method: "GET", Path: "/", ExpectStatus: []int{200},
		DNSType: dns.TypeSOA, Interval: 5 * time.Second, Timeout: 2 * time.Second,
		Rise: 20, Fall: 3, OK: 2,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	d := Check{Type: "dns", DNSName: "example.com"}.WithDefaults()
	if d.Port != 53 || d.DNSName != "example.com." {
		t.Errorf("dns defaults: port %d name %q", d.Port, d.DNSName)
	}
	if err := d.Validate(); err != nil {
		t.Error(err)
	}
	set := Check{Type: "tcp", Port: 1, Interval: time.Second, Timeout: 100 * time.Millisecond, Rise: 1, Fall: 1, OK: 1}
	if got := set.WithDefaults(); got.Interval != time.Second || got.Rise != 1 || got.Fall != 1 || got.OK != 1 {
		t.Errorf("set values overridden: %+v", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		check Check
		err   string // substring; "" for valid
	}{
		{"http", Check{Type: "http", Port: 80}, ""},
		{"https verified", Check{Type: "https", Port: 443, TLSVerify: true, CAFile: "/ca.pem", Host: "www.example.com"}, ""},
		{"tcp", Check{Type: "tcp", Port: 22}, ""},
		{"dns", Check{Type: "dns", DNSName: "example.com.", DNSType: dns.TypeA, ExpectRcode: dns.RcodeNameError}, ""},
		{"query in path", Check{Type: "http", Port: 80, Path: "/health?deep=1"}, ""},
		{"unknown type", Check{Type: "icmp"}, `unknown check type "icmp"`},
		{"no port", Check{Type: "http"}, "port required for http"},
		{"tcp no port", Check{Type: "tcp"}, "port required for tcp"},
		{"bad method", Check{Type: "http", Port: 80, Method: "GET /"}, `invalid method "GET /"`},
		{"relative path", Check{Type: "http", Port: 80, Path: "health"}, `invalid path "health"`},
		{"path with space", Check{Type: "http", Port: 80, Path: "/a b"}, "invalid path"},
		{"bad host", Check{Type: "http", Port: 80, Host: "a b"}, `invalid host "a b"`},
		{"bad status", Check{Type: "http", Port: 80, ExpectStatus: []int{200, 999}}, "invalid expected status 999"},
		{"ca without verify", Check{Type: "https", Port: 443, CAFile: "/ca.pem"}, "tls verification is off"},
		{"dns no name", Check{Type: "dns"}, "dns name required"},
		{"dns bad name", Check{Type: "dns", DNSName: "a..b"}, "invalid dns name"},
		{"dns bad type", Check{Type: "dns", DNSName: "a.", DNSType: 65280}, "unknown dns type 65280"},
		{"dns bad rcode", Check{Type: "dns", DNSName: "a.", ExpectRcode: 99}, "unknown rcode 99"},
		{"timeout too long", Check{Type: "tcp", Port: 1, Interval: time.Second, Timeout: time.Second}, "timeout 1s not below interval 1s"},
		{"negative timeout", Check{Type: "tcp", Port: 1, Timeout: -1}, "timeout -1ns not positive"},
		{"tiny interval", Check{Type: "tcp", Port: 1, Interval: time.Millisecond}, "interval 1ms below 10ms"},
		{"negative fall", Check{Type: "tcp", Port: 1, Fall: -1}, "rise, fall and ok must be at least 1"},
		{"several errors", Check{Type: "http", Path: "x", Rise: -2}, "port required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.check.WithDefaults().Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err != nil && !strings.HasPrefix(err.Error(), "health: check: "):
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestImports keeps the package free of the rest of the repository, so
// that the checker binary stays small and the engine testable alone.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/meridiandns/meridian") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}

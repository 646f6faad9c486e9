package tsigkey

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const secret = "c2VjcmV0"
	for _, tc := range []struct {
		name string
		keys []Key
		want string // "" for no error
	}{
		{"good", []Key{{"a", "hmac-sha256", secret}, {"B.", "HMAC-SHA512", secret}}, ""},
		{"no name", []Key{{"", "hmac-sha256", secret}}, "has no name"},
		{"twice, by case and dot", []Key{{"a", "hmac-sha256", secret}, {"A.", "hmac-sha256", secret}}, "defined twice"},
		{"md5", []Key{{"a", "hmac-md5", secret}}, `algorithm "hmac-md5" is not`},
		{"bad secret", []Key{{"a", "hmac-sha256", "!!"}}, "not base64"},
		{"empty secret", []Key{{"a", "hmac-sha256", ""}}, "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, err := Check(tc.keys)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want == "" && len(names) != len(tc.keys):
				t.Fatalf("names %v for %d keys", names, len(tc.keys))
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v, want an error with %q", err, tc.want)
			}
		})
	}
	if names, _ := Check([]Key{{"Xfr-Key", "hmac-sha256", secret}}); !names["xfr-key."] {
		t.Errorf("names %v, want xfr-key.", names)
	}
}

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/meridiandns/meridian/zones"
)

// TestInvalidFor checks that explain says a name's zone is invalid rather
// than that no zone holds it, and only when no valid zone below answers.
func TestInvalidFor(t *testing.T) {
	bad := testZone(t, "example.test.")
	bad.Invalid = errors.New("record broken by hand")
	snap, err := zones.Rebuild(nil, []*zones.Zone{bad, testZone(t, "sub.example.test."), testZone(t, "other.test.")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want string // part of the error; "" for none
	}{
		{"www.example.test", "zone example.test. is invalid and not served: record broken by hand"},
		{"EXAMPLE.test.", "zone example.test. is invalid"},
		{"www.sub.example.test.", ""},
		{"www.other.test.", ""},
		{"www.nowhere.", ""},
	}
	for _, tc := range tests {
		err := invalidFor(snap, tc.name)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

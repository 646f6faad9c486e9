package zones

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every file of testdata and testdata/bad matching pattern
// to the fuzz corpus.
func addSeeds(f *testing.F, pattern string) {
	for _, dir := range []string{"testdata", filepath.Join("testdata", "bad")} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// checkLoaded asserts what a loader promises: errors are Errors naming the
// source, and a zone that Parse accepts is valid and builds into a
// snapshot, so that validation catches everything Build would reject.
func checkLoaded(t *testing.T, z *Zone, err error, source string) {
	t.Helper()
	if err != nil {
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T is not Errors: %v", err, err)
		}
		for _, e := range es {
			if e.Source != source || e.Msg == "" || e.Line < 0 {
				t.Fatalf("bad error %#v", e)
			}
		}
		return
	}
	for _, r := range z.Records {
		if r.Line < 1 {
			t.Fatalf("record %s has line %d", r.RR, r.Line)
		}
	}
	if err := Validate(z); err != nil {
		t.Fatalf("Parse returned a zone that does not validate: %v", err)
	}
	n := len(z.Records)
	if Normalize(z); len(z.Records) != n {
		t.Fatalf("Parse returned a zone with duplicates")
	}
	if _, err := Build([]*Zone{z}, 1); err != nil {
		t.Fatalf("valid zone does not build: %v", err)
	}
}

func FuzzParseMaster(f *testing.F) {
	addSeeds(f, "*.zone")
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, placed, err := parseMaster(data, "fuzz.zone", ""); err == nil && !placed {
			t.Fatal("records were not matched to their lines")
		}
		z, err := Parse(data, "fuzz.zone")
		checkLoaded(t, z, err, "fuzz.zone")
	})
}

func FuzzParseYAML(f *testing.F) {
	addSeeds(f, "*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		z, err := Parse(data, "fuzz.yaml")
		checkLoaded(t, z, err, "fuzz.yaml")
	})
}

// TestFuzzFindings keeps what the fuzzers found as named cases (their
// inputs are also in testdata/fuzz).
func TestFuzzFindings(t *testing.T) {
	tests := []struct {
		name, text string
	}{
		// The parser accepts a DS digest of odd length, which cannot be
		// packed; Build used to panic on it. Validate now rejects it.
		{"unpackable RDATA", "$ORIGIN 0\n$TTL 0\n@ SOA 0 0 0 0 0 0 0\n NS 0\n DS 0 0 0 0"},
		// The parser returns the SOA having read only part of its entry
		// (an unknown class inside the parentheses ends it early), so
		// records are placed by the entry that holds the read position.
		{"record ends inside its entry", ";000\n$ORIGIN 000000000000\n$TTL 0000\n0000000 SOA 000 00000(000 0000000000;0000000\nClAss 0"},
	}
	// A pool in the root zone was named "0.." (yamlpool.go, absName).
	t.Run("pool in the root zone", func(t *testing.T) {
		text := "origin: .\nsoa: {ns: 0, mbox: 0, serial: 0}\nrecords: [{name: \".\", type: NS, data: 0}]\n" +
			"datacenters: [{name: dc, lat: 0, lon: 0}]\npools:\n  - name: 0\n    endpoints: [{address: 0.0.0.0, datacenter: dc}]"
		z, err := Parse([]byte(text), "fuzz.yaml")
		checkLoaded(t, z, err, "fuzz.yaml")
		if err == nil && z.Pools[0].Name != "0." {
			t.Errorf("pool named %q, want 0.", z.Pools[0].Name)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, placed, err := parseMaster([]byte(tc.text), "fuzz.zone", ""); err == nil && !placed {
				t.Error("records were not matched to their lines")
			}
			z, err := Parse([]byte(tc.text), "fuzz.zone")
			checkLoaded(t, z, err, "fuzz.zone")
		})
	}
}

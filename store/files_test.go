package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const goodZone = `$ORIGIN example.org.
$TTL 300
@	IN SOA	ns1 hostmaster 1 7200 3600 1209600 300
@	IN NS	ns1
ns1	IN A	192.0.2.1
`

// badZone has an invalid record on line 5.
const badZone = `$ORIGIN example.org.
$TTL 300
@	IN SOA	ns1 hostmaster 1 7200 3600 1209600 300
@	IN NS	ns1
www	IN A	not-an-address
`

const otherZone = `$ORIGIN example.net.
$TTL 300
@	IN SOA	ns1 hostmaster 1 7200 3600 1209600 300
@	IN NS	ns1
ns1	IN A	192.0.2.2
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to a temporary file and renames it over path,
// the way editors and config management tools save.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFilesLoad(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "example.org.zone")
	b := filepath.Join(dir, "example.net.zone")
	writeFile(t, a, goodZone)
	writeFile(t, b, otherZone)
	f := NewFiles([]string{a, b}, nil)

	d1, err := f.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var origins []string
	for _, z := range d1.Zones {
		origins = append(origins, z.Origin)
	}
	if got, want := strings.Join(origins, " "), "example.org. example.net."; got != want {
		t.Errorf("origins = %q, want %q", got, want)
	}
	d2, err := f.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d2.Version <= d1.Version {
		t.Errorf("version did not move forward: %d then %d", d1.Version, d2.Version)
	}
	// A new store, as after a restart, still moves forward.
	d3, err := NewFiles([]string{a}, nil).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d3.Version <= d2.Version {
		t.Errorf("version after restart did not move forward: %d then %d", d2.Version, d3.Version)
	}
}

func TestFilesLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zone")
	bad := filepath.Join(dir, "bad.zone")
	missing := filepath.Join(dir, "missing.zone")
	writeFile(t, good, goodZone)
	writeFile(t, bad, badZone)

	tests := []struct {
		name  string
		paths []string
		want  string // substring of the error
	}{
		{"parse error names file and line", []string{bad}, bad + ":5"},
		{"one bad file fails all", []string{good, bad}, bad + ":5"},
		{"missing file", []string{good, missing}, missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewFiles(tt.paths, nil).Load(t.Context())
			if err == nil {
				t.Fatalf("Load = %d zones, want error", len(d.Zones))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// watchCounter runs f.Watch and counts calls of changed.
type watchCounter struct {
	calls chan struct{}
	stop  func() error
}

func startWatch(t *testing.T, f *Files) *watchCounter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watchCounter{calls: make(chan struct{}, 100)}
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = f.Watch(ctx, func() { w.calls <- struct{}{} }) })
	w.stop = func() error { cancel(); wg.Wait(); return werr }
	t.Cleanup(func() { _ = w.stop() })
	return w
}

// prime waits until the watch is established by touching path until a
// change is reported, then lets the directory go quiet and drops the
// calls seen so far.
func (w *watchCounter) prime(t *testing.T, path, data string, debounce time.Duration) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for primed := false; !primed; {
		writeFile(t, path, data)
		select {
		case <-w.calls:
			primed = true
		case <-time.After(debounce + 100*time.Millisecond):
		case <-deadline:
			t.Fatal("watch never reported a change")
		}
	}
	// Earlier touches may still be in the debounce window, or in the event
	// queue on a loaded machine: wait until a whole quiet period passes.
	for {
		time.Sleep(3 * debounce)
		if w.drain() == 0 {
			return
		}
	}
}

func (w *watchCounter) drain() int {
	n := 0
	for {
		select {
		case <-w.calls:
			n++
		default:
			return n
		}
	}
}

func TestFilesWatch(t *testing.T) {
	tests := []struct {
		name  string
		act   func(t *testing.T, path string)
		calls int
	}{
		{"write in place", func(t *testing.T, path string) { writeFile(t, path, otherZone) }, 1},
		{"rename over", func(t *testing.T, path string) { replaceFile(t, path, otherZone) }, 1},
		{"remove and create", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, otherZone)
		}, 1},
		{"burst is one change", func(t *testing.T, path string) {
			for range 10 {
				replaceFile(t, path, otherZone)
				writeFile(t, path, goodZone)
				time.Sleep(10 * time.Millisecond)
			}
		}, 1},
		{"other file in the directory", func(t *testing.T, path string) {
			writeFile(t, filepath.Join(filepath.Dir(path), "unrelated.txt"), "x")
			replaceFile(t, filepath.Join(filepath.Dir(path), "unrelated.zone"), otherZone)
		}, 0},
		{"chmod only", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "example.org.zone")
			writeFile(t, path, goodZone)
			f := NewFiles([]string{path}, nil)
			w := startWatch(t, f)
			w.prime(t, path, goodZone, f.debounce)

			tt.act(t, path)
			// Wait for the expected reports (a loaded machine may be slow),
			// then for a quiet period in which extra ones would show.
			got := 0
			for deadline := time.Now().Add(10 * time.Second); got < tt.calls && time.Now().Before(deadline); {
				got += w.drain()
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(f.debounce + 500*time.Millisecond)
			if got += w.drain(); got != tt.calls {
				t.Errorf("changed called %d times, want %d", got, tt.calls)
			}
			if err := w.stop(); err != nil {
				t.Errorf("Watch = %v, want nil after cancel", err)
			}
		})
	}
}

func TestFilesWatchMissingDirectory(t *testing.T) {
	f := NewFiles([]string{filepath.Join(t.TempDir(), "nodir", "x.zone")}, nil)
	err := f.Watch(t.Context(), func() {})
	if err == nil || !strings.Contains(err.Error(), "nodir") {
		t.Errorf("Watch = %v, want an error naming the directory", err)
	}
}

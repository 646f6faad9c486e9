package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meridiandns/meridian/zones"
)

// defaultDebounce is how long Files waits after the last file event before
// reporting a change. Editors and config management touch a file several
// times when saving it (write a temporary file, rename it over the old one,
// chmod); one reload for the whole burst is what is wanted.
const defaultDebounce = 200 * time.Millisecond

// Files is a Store reading zones from files, one zone per file. A file
// ending in .yaml or .yml is read by the YAML loader, any other file as an
// RFC 1035 master file (see zones.Parse).
type Files struct {
	paths    []string // as given, for messages
	abs      []string // absolute and clean, to match file events
	logger   *slog.Logger
	debounce time.Duration
	clock    clock
	mu       sync.Mutex // serializes Update
}

var _ Store = (*Files)(nil)

// NewFiles returns a Files store for paths. A nil logger discards logs.
func NewFiles(paths []string, logger *slog.Logger) *Files {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Files{paths: paths, logger: logger, debounce: defaultDebounce}
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			a = filepath.Clean(p) // only when the working directory is gone
		}
		f.abs = append(f.abs, a)
	}
	return f
}

// Load implements Store. It reads and parses every file, with the updates
// in its journal (journal.go); the first file that cannot be read or
// parsed fails the whole Load with an error naming the file and, for
// parse errors, the line.
func (f *Files) Load(ctx context.Context) (*Data, error) {
	d := &Data{Zones: make([]*zones.Zone, 0, len(f.paths))}
	for _, p := range f.paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		z, err := f.loadFile(p)
		if err != nil {
			return nil, err
		}
		d.Zones = append(d.Zones, z)
	}
	d.Version = f.clock.next()
	return d, nil
}

// parseError wraps a zones.Parse error. Errors of package zones already
// name the file and line; anything else gets the file name added.
func parseError(path string, err error) error {
	var ze *zones.Error
	var zes zones.Errors
	if errors.As(err, &ze) || errors.As(err, &zes) {
		return fmt.Errorf("store: %w", err)
	}
	return fmt.Errorf("store: %s: %w", path, err)
}

// Watch implements Store. It watches the directories holding the files,
// not the files themselves: a file replaced by rename (as editors and
// config management do) is a new inode that a watch on the old file would
// never see. Events for other files in those directories are ignored, and
// a burst of events is reported by a single call of changed once the
// directory has been quiet for the debounce interval.
func (f *Files) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("store: watch: %w", err)
	}
	defer w.Close()

	watched := make(map[string]bool, len(f.abs))
	dirs := map[string]bool{}
	for _, a := range f.abs {
		watched[a] = true
		watched[journalPath(a)] = true // dynamic updates (journal.go)
		dir := filepath.Dir(a)
		if dirs[dir] {
			continue
		}
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("store: watch %s: %w", dir, err)
		}
		dirs[dir] = true
	}

	// Since Go 1.23 a stopped or reset timer never delivers a stale value,
	// so the timer fires only debounce after the last relevant event.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("store: watch: watcher closed")
			}
			if !watched[filepath.Clean(ev.Name)] || ev.Op == fsnotify.Chmod {
				continue
			}
			f.logger.Debug("Zone file event", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(f.debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("store: watch: watcher closed")
			}
			// An overflow loses events, so report a change to be safe.
			f.logger.Warn("Zone file watch error", "err", err)
			timer.Reset(f.debounce)
		case <-timer.C:
			changed()
		}
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

// WithKeys returns a Store that signs the zones of inner that have keys
// in dir, a directory of BIND-style key files (signing.ReadKeyDir): each
// Load reads the keys again and gives such zones a keyset with policy.
// A key that does not read fails the Load, with the file's name, so that
// the snapshot in service and its keys stay. Watch also reports changes
// of the directory's key files. A nil logger discards logs.
func WithKeys(inner Store, dir string, policy signing.Policy, logger *slog.Logger) Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &keyStore{inner: inner, dir: dir, policy: policy, logger: logger, debounce: defaultDebounce}
}

type keyStore struct {
	inner    Store
	dir      string
	policy   signing.Policy
	logger   *slog.Logger
	debounce time.Duration

	mu     sync.Mutex
	unused string // the zones with keys but no data, as last logged
	signed string // the zones signed and their keys, as last logged
}

// Load implements Store. Zones with keys are copied with Keys set; the
// others are passed on as they are.
func (s *keyStore) Load(ctx context.Context) (*Data, error) {
	d, err := s.inner.Load(ctx)
	if err != nil {
		return nil, err
	}
	kfs, err := signing.ReadKeyDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("store: dnssec.key_dir: %w", err)
	}
	byZone := signing.ByZone(kfs)
	out := &Data{Version: d.Version, Zones: make([]*zones.Zone, 0, len(d.Zones))}
	var signed []string
	for _, z := range d.Zones {
		origin := zones.CanonicalName(z.Origin)
		kz, ok := byZone[origin]
		if !ok {
			out.Zones = append(out.Zones, z)
			continue
		}
		delete(byZone, origin)
		if err := signing.CheckAlgorithms(kz); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		ks, err := signing.NewKeyset(origin, signing.Keys(kz), s.policy)
		if err != nil {
			return nil, fmt.Errorf("store: keys in %s: %w", s.dir, err)
		}
		c := *z
		c.Keys = ks
		out.Zones = append(out.Zones, &c)
		for _, k := range ks.Keys {
			signed = append(signed, fmt.Sprintf("%s %s %d", origin, signing.Role(k, ks.Keys), k.Tag()))
		}
	}
	s.logChanges(signed, byZone)
	return out, nil
}

// logChanges logs the keys in use when they change (a rollover, a zone
// signed for the first time), and warns of keys for zones that are not
// served, once per set: a reload that changes nothing logs nothing.
func (s *keyStore) logChanges(signed []string, rest map[string][]*signing.KeyFile) {
	names := make([]string, 0, len(rest))
	for z := range rest {
		names = append(names, z)
	}
	sort.Strings(names)
	list, keys := strings.Join(names, " "), strings.Join(signed, ", ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if keys != s.signed {
		s.logger.Info("DNSSEC keys read", "dir", s.dir, "keys", signed)
	}
	if list != s.unused && list != "" {
		s.logger.Warn("Keys for zones that are not served; ignored", "dir", s.dir, "zones", names)
	}
	s.signed, s.unused = keys, list
}

// Watch implements Store: inner's changes and those of the key files.
// Only the directory itself is watched, not retired/.
func (s *keyStore) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("store: watch: %w", err)
	}
	defer w.Close()
	if err := w.Add(s.dir); err != nil {
		return fmt.Errorf("store: watch %s: %w", s.dir, err)
	}
	var mu sync.Mutex // changed is never called concurrently
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		changed()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	innerDone := make(chan error, 1)
	go func() { innerDone <- s.inner.Watch(ctx, report) }()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			<-innerDone
			return nil
		case err := <-innerDone:
			return err
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("store: watch: watcher closed")
			}
			name := filepath.Base(ev.Name)
			if !strings.HasPrefix(name, "K") || !(strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".private")) || ev.Op == fsnotify.Chmod {
				continue
			}
			s.logger.Debug("Key file event", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(s.debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("store: watch: watcher closed")
			}
			s.logger.Warn("Key directory watch error", "err", err)
			timer.Reset(s.debounce)
		case <-timer.C:
			report()
		}
	}
}

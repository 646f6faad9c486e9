package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// cacheFile is the last data loaded from the database, written so that a
// server restarted while the database is unreachable can still answer.
// Zones are kept in the YAML zone format, which is reviewed and tested as
// the export format, rather than in an encoding of the internal types.
type cacheFile struct {
	Version uint64      `json:"version"`
	Written time.Time   `json:"written"`
	Zones   []cacheZone `json:"zones"`
}

type cacheZone struct {
	Origin string `json:"origin"`
	YAML   string `json:"yaml"`
	// Invalid, instead of YAML, says why the zone could not be written:
	// it was not read whole, and no version read whole was written before.
	Invalid string `json:"invalid,omitempty"`
	// Keys are the zone's DNSSEC keys, their private halves sealed as in
	// the database: a server started from the cache signs as before.
	Keys []cacheKey `json:"keys,omitempty"`
}

// writeCache hands d to the cache writer, replacing any data it has not
// written yet: the file is written off the reload path, and after a burst
// of changes only the last data is written. The writer starts with the
// first data; Close waits for it to finish.
func (s *Store) writeCache(d *store.Data) {
	if s.opts.CacheFile == "" || s.closed {
		return
	}
	if s.cacheCh == nil {
		s.cacheCh = make(chan *store.Data, 1)
		s.cacheDone = make(chan struct{})
		go s.cacheWriter()
	}
	select {
	case <-s.cacheCh: // superseded
	default:
	}
	s.cacheCh <- d // cannot block: Load, the only sender, holds s.mu
}

// The cache file is written at most about a tenth of the time: each
// write holds every zone (about 100 MB at 1,000,000 endpoints), and a busy
// fleet changes many times a second. After a write taking d, the writer
// waits 9d (at most cacheMaxWait) and then writes the newest data, the
// changes in between together; Close writes the last one at once.
const (
	cachePace    = 9
	cacheMaxWait = 5 * time.Second
)

// cacheWriter writes the data it is handed until the channel closes,
// paced (cachePace). Zones are formatted once: a
// change rewrites the file but reformats only the zones that changed.
func (s *Store) cacheWriter() {
	defer close(s.cacheDone)
	memo := map[*zones.Zone]cacheZone{}
	good := map[string]cacheZone{} // by origin: the last version written whole
	var pending *store.Data
	open := true
	for open || pending != nil {
		if pending == nil {
			d, ok := <-s.cacheCh
			if !ok {
				return
			}
			pending = d
		}
		d := pending
		pending = nil
		start := time.Now()
		next := make(map[*zones.Zone]cacheZone, len(d.Zones))
		nextGood := make(map[string]cacheZone, len(d.Zones))
		err := writeCache(s.opts.CacheFile, d, func(z *zones.Zone) cacheZone {
			c, ok := memo[z]
			if !ok {
				c = cacheEntry(z, good[z.Origin], s.opts.Keys)
			}
			next[z] = c
			if c.Invalid == "" {
				nextGood[z.Origin] = c
			}
			return c
		})
		memo, good = next, nextGood
		if err != nil {
			s.opts.Logger.Warn("Could not write the cache file", "file", s.opts.CacheFile, "err", err)
		}
		// Pace the writes, keeping the newest data; Close ends the wait.
		t := time.NewTimer(min(cacheMaxWait, cachePace*time.Since(start)))
	wait:
		for open {
			select {
			case d, ok := <-s.cacheCh:
				if !ok {
					open = false
					break wait
				}
				pending = d
			case <-t.C:
				break wait
			}
		}
		t.Stop()
	}
}

// cacheEntry is how z is cached: in the YAML zone format; or, when the
// store could not read it whole (Zone.Invalid), as last, the version last
// written whole, which is what a server keeps serving; or, without one,
// as invalid, so that a server started from the cache leaves it out
// rather than serve a part of it.
func cacheEntry(z *zones.Zone, last cacheZone, ring *keyseal.Keyring) cacheZone {
	err := z.Invalid
	if err == nil {
		b, ferr := zones.FormatYAML(z)
		if ferr == nil {
			var keys []cacheKey
			if keys, ferr = sealCacheKeys(z, ring); ferr == nil {
				return cacheZone{Origin: z.Origin, YAML: string(b), Keys: keys}
			}
		}
		err = ferr
	}
	if last.YAML != "" {
		return last
	}
	return cacheZone{Origin: z.Origin, Invalid: err.Error()}
}

// writeCache replaces the cache file with d, atomically (write, then
// rename), so that a crash never leaves half a file.
func writeCache(path string, d *store.Data, entry func(*zones.Zone) cacheZone) error {
	c := cacheFile{Version: d.Version, Written: time.Now().UTC()}
	for _, z := range d.Zones {
		c.Zones = append(c.Zones, entry(z))
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("postgres: cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("postgres: cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("postgres: cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("postgres: cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("postgres: cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("postgres: cache: %w", err)
	}
	return nil
}

// readCache loads a cache file, validating every zone as a zone file is.
// A zone that is not valid is returned Invalid, for zones.Rebuild to leave
// out, as a zone that cannot be read from the database is.
//
// Keys are opened with keys; nil leaves them out (Options.NoKeys).
func readCache(path string, keys *keyOpener) (*store.Data, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("postgres: cache: %w", err)
	}
	var c cacheFile
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("postgres: cache %s: %w", path, err)
	}
	d := &store.Data{Version: c.Version}
	for _, cz := range c.Zones {
		source := path + "#" + cz.Origin + "yaml"
		var z *zones.Zone
		var err error
		if cz.Invalid != "" {
			err = errors.New(cz.Invalid)
		} else {
			z, err = zones.Parse([]byte(cz.YAML), source)
			if err == nil && len(cz.Keys) > 0 && keys != nil {
				openCacheKeys(z, cz.Keys, keys)
			}
		}
		if err != nil {
			z = &zones.Zone{Origin: cz.Origin, Source: source, Invalid: fmt.Errorf("postgres: cache: %w", err)}
		}
		d.Zones = append(d.Zones, z)
	}
	return d, nil
}

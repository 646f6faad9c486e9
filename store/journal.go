package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// A zone file's journal (<file>.jnl) holds the dynamic updates (RFC 2136)
// made to its zone since the file was written, so that they outlive a
// restart without Meridian rewriting a file an operator owns. Each entry
// is one update, in zone-file syntax:
//
//	; update 2024010101 2024010102
//	- old.example.com. 300 IN TXT "gone"
//	+ new.example.com. 300 IN TXT "here"
//	; end
//
// An entry is appended with a single write and synced before the update
// is answered; one cut short by a crash has no "; end" and is ignored. At
// load the entries are replayed onto the file in order, each only when
// its first serial is the zone's serial at that point: a file edited (and
// its serial raised) since makes the rest of the journal stale, and it is
// then ignored with a warning.

// ErrNoZone is returned by Files.Update for a zone none of its files hold.
var ErrNoZone = errors.New("store: no such zone")

// ErrInvalidUpdate is returned by Files.Update when the records given
// would make a zone that cannot be served; nothing is written.
var ErrInvalidUpdate = errors.New("store: update makes the zone invalid")

// journalPath is the journal of the zone file p.
func journalPath(p string) string { return p + ".jnl" }

// Update reads the zone origin from its file and journal, calls change
// with it, and appends to the journal the difference between the zone's
// records and those change returns, after checking that they make a
// zone that can be served. An error from change is returned as it is
// and nothing is written. The watch on the files sees the journal grow
// and reloads. Update calls do not interleave.
func (f *Files) Update(ctx context.Context, origin string, change func(z *zones.Zone) ([]dns.RR, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	origin = zones.CanonicalName(origin)
	for _, p := range f.paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		z, err := f.loadFile(p)
		if err != nil {
			return err
		}
		if z.Origin != origin {
			continue
		}
		rrs, err := change(z)
		if err != nil {
			return err
		}
		nz := *z
		nz.Records = make([]zones.Record, len(rrs))
		for i, rr := range rrs {
			nz.Records[i] = zones.Record{RR: rr}
		}
		if err := zones.Validate(&nz); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
		}
		if err := zones.Check(&nz); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidUpdate, err)
		}
		return appendJournal(journalPath(p), journalEntry(soaSerial(z.Records), soaSerialRR(rrs), z.Records, rrs))
	}
	return ErrNoZone
}

// loadFile reads and parses the zone file p and replays its journal.
func (f *Files) loadFile(p string) (*zones.Zone, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err) // *PathError names the file
	}
	z, err := zones.Parse(b, p)
	if err != nil {
		return nil, parseError(p, err)
	}
	return f.replay(p, z)
}

// journalEntry is the text of the entry taking records old to new.
func journalEntry(from, to uint32, old []zones.Record, rrs []dns.RR) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "; update %d %d\n", from, to)
	have := map[string]bool{}
	for _, r := range old {
		have[r.RR.String()] = true
	}
	want := map[string]bool{}
	for _, rr := range rrs {
		want[rr.String()] = true
	}
	for _, r := range old {
		if s := r.RR.String(); !want[s] {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	for _, rr := range rrs {
		if s := rr.String(); !have[s] {
			fmt.Fprintf(&b, "+ %s\n", s)
			have[s] = true
		}
	}
	b.WriteString("; end\n")
	return b.Bytes()
}

// appendJournal appends entry to the journal at path in one write and
// syncs it. After an entry cut short mid-line, it starts a new line.
func appendJournal(path string, entry []byte) error {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	if st, err := fh.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := fh.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			entry = append([]byte("\n"), entry...)
		}
	}
	if _, err := fh.Write(entry); err != nil {
		fh.Close()
		return fmt.Errorf("store: journal: %w", err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("store: journal: %w", err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	return nil
}

// replay applies the journal of the zone file p to z, which was read
// from p, and returns the result. A journal that does not exist changes
// nothing; one that does not parse fails the load, naming its line.
func (f *Files) replay(p string, z *zones.Zone) (*zones.Zone, error) {
	jp := journalPath(p)
	b, err := os.ReadFile(jp)
	if errors.Is(err, os.ErrNotExist) {
		return z, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	records := z.Records
	serial := soaSerial(records)
	var (
		in       bool
		from, to uint32
		del, add []dns.RR
		applied  int
		bad      error // a record of the entry that does not parse
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		switch {
		case strings.HasPrefix(s, "; update "):
			fs := strings.Fields(s)
			a, err1 := strconv.ParseUint(fs[len(fs)-2], 10, 32)
			c, err2 := strconv.ParseUint(fs[len(fs)-1], 10, 32)
			if len(fs) != 4 || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("store: %s:%d: bad journal entry header", jp, line)
			}
			in, from, to, del, add, bad = true, uint32(a), uint32(c), nil, nil, nil
		case s == "; end":
			if !in {
				continue
			}
			in = false
			if bad != nil {
				return nil, bad
			}
			if from != serial {
				f.logger.Warn("Zone journal out of date, rest ignored", "file", jp, "line", line, "journal_serial", from, "zone_serial", serial)
				return withRecords(z, records, applied), nil
			}
			records = applyEntry(records, del, add)
			serial = to
			applied++
		case strings.HasPrefix(s, "- "), strings.HasPrefix(s, "+ "):
			if !in {
				continue
			}
			rr, err := dns.NewRR(s[2:])
			if err != nil || rr == nil {
				// An error only if the entry is complete: the last line of
				// one cut short is cut too.
				if bad == nil {
					bad = fmt.Errorf("store: %s:%d: bad journal record: %v", jp, line, err)
				}
				continue
			}
			if s[0] == '-' {
				del = append(del, rr)
			} else {
				add = append(add, rr)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", jp, err)
	}
	return withRecords(z, records, applied), nil
}

// withRecords is z with records, normalized and validated again, when
// applied entries changed them.
func withRecords(z *zones.Zone, records []zones.Record, applied int) *zones.Zone {
	if applied == 0 {
		return z
	}
	nz := *z
	nz.Records = records
	zones.Normalize(&nz)
	return &nz
}

// applyEntry removes del from records, exactly, and adds add.
func applyEntry(records []zones.Record, del, add []dns.RR) []zones.Record {
	gone := map[string]bool{}
	for _, rr := range del {
		gone[rr.String()] = true
	}
	out := make([]zones.Record, 0, len(records)+len(add))
	for _, r := range records {
		if !gone[r.RR.String()] {
			out = append(out, r)
		}
	}
	for _, rr := range add {
		out = append(out, zones.Record{RR: rr})
	}
	return out
}

func soaSerial(records []zones.Record) uint32 {
	for _, r := range records {
		if soa, ok := r.RR.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

func soaSerialRR(rrs []dns.RR) uint32 {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

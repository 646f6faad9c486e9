package signing

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Keys in a directory, as BIND's dnssec-keygen and ldns-keygen keep them:
// K<zone>+<algorithm>+<tag>.key holds the DNSKEY record and .private the
// private key. "meridian serve" signs a zone with the keys of its files
// (dnssec.key_dir); "meridian keys" makes, lists and rolls them. Only the
// DNSKEY and the private key are read: BIND's timing metadata (Publish,
// Activate, Inactive, Delete) is not, so every key in the directory is
// published and signs.

// RetiredDir is the subdirectory of a key directory that a finished
// rollover moves the old key's files to. Keys there are not read.
const RetiredDir = "retired"

// KeyFile is a key and the files it was read from or written to.
type KeyFile struct {
	*Key
	// Base is the path of the files without .key or .private.
	Base string
	// Created is when the key was made, to the second: the Created line
	// of the .private file (written by dnssec-keygen and by
	// WriteKeyFiles), else the modification time of the .key file (ldns
	// writes no date).
	Created time.Time
}

// PublicFile and PrivateFile are the paths of the key's two files.
func (kf *KeyFile) PublicFile() string  { return kf.Base + ".key" }
func (kf *KeyFile) PrivateFile() string { return kf.Base + ".private" }

// ParseAlgorithm reads an algorithm by name, in any case
// (ecdsap256sha256, ed25519), or by number (13, 15).
func ParseAlgorithm(s string) (uint8, error) {
	if a, ok := Algorithms[strings.ToUpper(s)]; ok {
		return a, nil
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if _, ok := algorithmName(uint8(n)); ok {
			return uint8(n), nil
		}
	}
	return 0, fmt.Errorf("signing: algorithm %q is not supported: want ecdsap256sha256 (13) or ed25519 (15)", s)
}

// AlgorithmName is the mnemonic of algorithm a (RFC 8624), or its number.
func AlgorithmName(a uint8) string {
	name, _ := algorithmName(a)
	return name
}

// ReadKeyFile reads the key whose files are base.key and base.private.
// Errors name the file at fault.
func ReadKeyFile(base string) (*KeyFile, error) {
	pub, err := os.ReadFile(base + ".key")
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err) // *PathError names the file
	}
	priv, err := os.ReadFile(base + ".private")
	if err != nil {
		return nil, fmt.Errorf("signing: %s.key has no private key: %w", base, err)
	}
	public, err := publicRecord(string(pub))
	if err != nil {
		return nil, fmt.Errorf("signing: %s.key: %w", base, err)
	}
	k, err := ParseKey(public, string(priv), base+".private")
	if err != nil {
		return nil, err
	}
	// The name says which zone and key the files are for: files renamed
	// or copied over each other must not sign in another key's place.
	if want := k.FileBase(); !strings.EqualFold(filepath.Base(base), want) {
		return nil, fmt.Errorf("signing: %s.key: holds key %s, whose files are named %s", base, k, want)
	}
	kf := &KeyFile{Key: k, Base: base, Created: created(string(priv))}
	if kf.Created.IsZero() {
		if st, err := os.Stat(base + ".key"); err == nil {
			kf.Created = st.ModTime().UTC().Truncate(time.Second)
		}
	}
	return kf, nil
}

// publicRecord returns the DNSKEY line of a .key file, which may start
// with comment lines (BIND writes some) and lack a TTL.
func publicRecord(s string) (string, error) {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		return line, nil
	}
	return "", errors.New("no DNSKEY record")
}

// created reads the Created line of a .private file (YYYYMMDDHHMMSS).
func created(private string) time.Time {
	for _, line := range strings.Split(private, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Created:"); ok {
			if t, err := time.Parse("20060102150405", strings.TrimSpace(v)); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// ReadKeyDir reads every key of dir: each K*.key file with its .private.
// Other files and subdirectories (such as retired/) are ignored; a .key
// file that does not read fails the whole call, with its name, so that a
// broken key is never silently left out of a zone's keys. A .private
// file without its .key is an error too. The keys come sorted by zone,
// then tag.
func ReadKeyDir(dir string) ([]*KeyFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("signing: key directory: %w", err)
	}
	var out []*KeyFile
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "K") {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".key"):
			kf, err := ReadKeyFile(filepath.Join(dir, strings.TrimSuffix(name, ".key")))
			if err != nil {
				return nil, err
			}
			out = append(out, kf)
		case strings.HasSuffix(name, ".private"):
			if _, err := os.Stat(filepath.Join(dir, strings.TrimSuffix(name, ".private")+".key")); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("signing: %s has no public key file (.key)", filepath.Join(dir, name))
			}
		}
	}
	slices.SortFunc(out, func(a, b *KeyFile) int {
		if c := strings.Compare(a.DNSKEY.Hdr.Name, b.DNSKEY.Hdr.Name); c != 0 {
			return c
		}
		return int(a.Tag()) - int(b.Tag())
	})
	return out, nil
}

// ByZone groups keys by zone (lower-case, fully qualified).
func ByZone(keys []*KeyFile) map[string][]*KeyFile {
	out := map[string][]*KeyFile{}
	for _, k := range keys {
		out[k.DNSKEY.Hdr.Name] = append(out[k.DNSKEY.Hdr.Name], k)
	}
	return out
}

// CheckAlgorithms refuses the keys of a zone when they do not share one
// algorithm: every RRset must then be signed with each algorithm of the
// DNSKEY RRset (RFC 4035 section 2.2, RFC 6840 section 5.11), which the
// keyset's roles do not do, and algorithm rollovers are not supported.
func CheckAlgorithms(kfs []*KeyFile) error {
	for _, kf := range kfs[min(1, len(kfs)):] {
		if a, b := kfs[0].DNSKEY.Algorithm, kf.DNSKEY.Algorithm; a != b {
			return fmt.Errorf("signing: %s is %s but %s is %s: the keys of a zone must share one algorithm", kf.PublicFile(), AlgorithmName(b), kfs[0].PublicFile(), AlgorithmName(a))
		}
	}
	return nil
}

// Keys returns the keys of key files, for NewKeyset.
func Keys(kfs []*KeyFile) []*Key {
	out := make([]*Key, len(kfs))
	for i, kf := range kfs {
		out[i] = kf.Key
	}
	return out
}

// Role names what a key does among the keys of its zone: ZSK (flags 256),
// KSK (flags 257 beside a zone signing key), or CSK (flags 257 in a zone
// without a zone signing key: it signs everything).
func Role(k *Key, zoneKeys []*Key) string {
	if !k.KSK() {
		return "ZSK"
	}
	if slices.ContainsFunc(zoneKeys, func(o *Key) bool { return !o.KSK() }) {
		return "KSK"
	}
	return "CSK"
}

// WriteKeyFiles writes k into dir as BIND does: the .private file
// readable by its owner only, then the .key file, which makes the key
// visible to ReadKeyDir. Existing files are never overwritten.
func WriteKeyFiles(dir string, k *Key, now time.Time) (*KeyFile, error) {
	base := filepath.Join(dir, k.FileBase())
	kind := "zone-signing"
	if k.KSK() {
		kind = "key-signing"
	}
	stamp := now.UTC().Format("20060102150405")
	private := k.PrivateString()
	if !strings.HasSuffix(private, "\n") {
		private += "\n"
	}
	private += "Created: " + stamp + "\n"
	public := fmt.Sprintf("; This is a %s key, keyid %d, for %s\n; Created: %s (%s)\n%s\n",
		kind, k.Tag(), k.DNSKEY.Hdr.Name, stamp, now.UTC().Format(time.ANSIC), k.DNSKEY.String())
	if err := writeNew(base+".private", private, 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(base+".key", public, 0o644); err != nil {
		os.Remove(base + ".private")
		return nil, err
	}
	return &KeyFile{Key: k, Base: base, Created: now.UTC().Truncate(time.Second)}, nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path, content string, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("signing: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("signing: write %s: %w", path, err)
	}
	return nil
}

// Retire moves the key's files into the retired/ subdirectory of their
// directory, the .key file first so that the key stops being read at
// once. It returns the new base path.
func Retire(kf *KeyFile) (string, error) {
	dir := filepath.Join(filepath.Dir(kf.Base), RetiredDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("signing: retire %s: %w", kf.Base, err)
	}
	base := filepath.Join(dir, filepath.Base(kf.Base))
	for _, ext := range []string{".key", ".private"} {
		if err := os.Rename(kf.Base+ext, base+ext); err != nil {
			return "", fmt.Errorf("signing: retire %s: %w", kf.Base, err)
		}
	}
	return base, nil
}

// Rollover is the state of a zone's keys of one role during a rollover by
// the double-signature method: both keys are published and sign until
// the rollover is finished.
type Rollover struct {
	Old, New *KeyFile
}

// StartRollover generates a successor of the zone's key of role (KSK, ZSK
// or CSK) with the same algorithm and writes it into dir. It refuses when
// the zone has no key of that role, or two already (a rollover under way).
func StartRollover(dir, zone, role string, now time.Time) (*Rollover, error) {
	old, err := roleKeys(dir, zone, role)
	if err != nil {
		return nil, err
	}
	if len(old) > 1 {
		return nil, fmt.Errorf("signing: zone %s has %d %s keys (%s): a rollover is under way; finish it first", zone, len(old), role, tags(old))
	}
	k, err := Generate(zone, old[0].DNSKEY.Algorithm, old[0].DNSKEY.Flags)
	if err != nil {
		return nil, err
	}
	if k.Tag() == old[0].Tag() {
		// Two keys with one tag are allowed by RFC 4034 but refused by
		// Keyset: draw again.
		if k, err = Generate(zone, old[0].DNSKEY.Algorithm, old[0].DNSKEY.Flags); err != nil {
			return nil, err
		}
	}
	// The successor is stamped after its predecessor even when both are
	// made within one second (as a script or a test does), so that
	// FinishRollover can always tell which key is the old one: the files
	// keep the time to the second only.
	if floor := old[0].Created.Add(time.Second); now.Before(floor) {
		now = floor
	}
	kf, err := WriteKeyFiles(dir, k, now)
	if err != nil {
		return nil, err
	}
	return &Rollover{Old: old[0], New: kf}, nil
}

// FinishRollover retires the older of the zone's two keys of role and
// returns both. It refuses when the zone does not have two keys of the
// role, or when the successor is younger than minAge: before then,
// resolvers may still hold a DNSKEY RRset without it.
func FinishRollover(dir, zone, role string, now time.Time, minAge time.Duration) (*Rollover, error) {
	keys, err := roleKeys(dir, zone, role)
	if err != nil {
		return nil, err
	}
	if len(keys) != 2 {
		return nil, fmt.Errorf("signing: zone %s has %d %s key(s) (%s), not two: no rollover to finish", zone, len(keys), role, tags(keys))
	}
	old, next := keys[0], keys[1]
	switch {
	case old.Created.Equal(next.Created):
		return nil, fmt.Errorf("signing: keys %d and %d of %s were made in the same second: which is the old one? Move its files to %s yourself", old.Tag(), next.Tag(), zone, filepath.Join(dir, RetiredDir))
	case next.Created.Before(old.Created):
		old, next = next, old
	}
	if age := now.Sub(next.Created); age < minAge {
		return nil, fmt.Errorf("signing: the new %s key %d of %s is only %s old, less than %s: resolvers may not have its DNSKEY yet", role, next.Tag(), zone, age.Round(time.Second), minAge)
	}
	base, err := Retire(old)
	if err != nil {
		return nil, err
	}
	old.Base = base
	return &Rollover{Old: old, New: next}, nil
}

// roleKeys returns the keys of zone in dir that have role.
func roleKeys(dir, zone, role string) ([]*KeyFile, error) {
	role = strings.ToUpper(role)
	if role != "KSK" && role != "ZSK" && role != "CSK" {
		return nil, fmt.Errorf("signing: role %q: want KSK, ZSK or CSK", role)
	}
	zone = dns.CanonicalName(zone)
	all, err := ReadKeyDir(dir)
	if err != nil {
		return nil, err
	}
	zk := ByZone(all)[zone]
	var out []*KeyFile
	for _, kf := range zk {
		if Role(kf.Key, Keys(zk)) == role {
			out = append(out, kf)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("signing: zone %s has no %s key in %s", zone, role, dir)
	}
	return out, nil
}

func tags(keys []*KeyFile) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = strconv.Itoa(int(k.Tag()))
	}
	return strings.Join(s, ", ")
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/zones"
)

// DNSSEC keys in the database (migration 010): every active key of a zone
// is published and signs; the private halves are sealed with the secret
// of a keyseal.Keyring, which only servers and meridianctl hold. A server
// that cannot open a zone's keys marks the zone Invalid, so that it keeps
// serving the zone's last good version, signed, rather than the zone
// unsigned.

// Key roles: a combined signing key, or the two halves of a split pair.
const (
	RoleCSK = "csk"
	RoleKSK = "ksk"
	RoleZSK = "zsk"
)

// Errors of the key functions, for errors.Is.
var (
	// ErrNoKeySecret: keys are to be opened or sealed and no secret is
	// configured.
	ErrNoKeySecret = errors.New("no DNSSEC key secret configured (store.key_secret, $MERIDIAN_STORE_KEY_SECRET)")
	// ErrHasKeys: the zone already has keys; roll them instead.
	ErrHasKeys = errors.New("the zone already has DNSSEC keys")
	// ErrNoKeys: the zone has no active keys.
	ErrNoKeys = errors.New("the zone has no DNSSEC keys")
	// ErrNoRollover: no rollover of the role is in progress.
	ErrNoRollover = errors.New("no rollover in progress")
	// ErrRolloverTooSoon: the successor has not been published long
	// enough for resolvers to know it.
	ErrRolloverTooSoon = errors.New("rollover finished too soon")
)

// keysKey is the context key under which Store.load hands readKeys what
// opens the keys (keyOpener); ReadZones without it (export, say) leaves keys alone.
type keysKey struct{}

type keyOpener struct {
	ring   *keyseal.Keyring // nil: no secret configured
	policy signing.Policy
}

// keyOpener returns what makes ReadZones read the zones' DNSSEC keys
// and open them with the configured secret (none: a zone with keys is
// then Invalid); nil with Options.NoKeys.
func (s *Store) keyOpener() *keyOpener {
	if s.opts.NoKeys {
		return nil
	}
	return &keyOpener{ring: s.opts.Keys, policy: s.opts.Policy}
}

// sealContext is the additional data a key's private half is sealed with:
// the sealed value of one zone's key does not open as another's.
func sealContext(origin string, tag uint16) []byte {
	return []byte(origin + " " + strconv.Itoa(int(tag)))
}

// readKeys gives the zones their keysets when ReadZones is asked to
// (withKeys). A zone whose keys cannot all be opened and checked is marked
// Invalid, with the reason; it keeps the rest of its data.
func scanKeys(rows pgx.Rows, o *keyOpener, out map[int64]*zones.Zone) error {
	keys := map[int64][]*signing.Key{}
	failed := map[int64]error{}
	var zid int64
	var tag int32
	var dnskey string
	var sealed []byte
	_, err := pgx.ForEachRow(rows, []any{&zid, &tag, &dnskey, &sealed}, func() error {
		z := out[zid]
		if z == nil || failed[zid] != nil {
			return nil
		}
		k, err := openKey(o.ring, z.Origin, uint16(tag), dnskey, sealed)
		if err != nil {
			failed[zid] = err
			return nil
		}
		keys[zid] = append(keys[zid], k)
		return nil
	})
	if err != nil {
		return err
	}
	for zid, err := range failed {
		// The reloader logs the zone's transition to Invalid, with err.
		if z := out[zid]; z.Invalid == nil { // the first problem is the one reported
			z.Invalid = fmt.Errorf("postgres: zone %s: %w", z.Origin, err)
		}
	}
	for zid, ks := range keys {
		z := out[zid]
		if z.Invalid != nil {
			continue
		}
		set, err := signing.NewKeyset(z.Origin, ks, o.policy)
		if err != nil {
			z.Invalid = fmt.Errorf("postgres: zone %s: DNSSEC keys: %w", z.Origin, err)
			continue
		}
		z.Keys = set
	}
	return nil
}

// openKey opens the sealed private half of the key of zone origin with
// the given tag and checks it against its DNSKEY. Errors say why, without
// the secret or the key.
func openKey(ring *keyseal.Keyring, origin string, tag uint16, dnskey string, sealed []byte) (*signing.Key, error) {
	if ring == nil {
		return nil, fmt.Errorf("DNSSEC key %d cannot be opened: %w", tag, ErrNoKeySecret)
	}
	private, err := ring.Open(sealed, sealContext(origin, tag))
	if err != nil {
		return nil, fmt.Errorf("DNSSEC key %d cannot be opened: %w", tag, err)
	}
	k, err := signing.ParseKey(dnskey, string(private), fmt.Sprintf("DNSSEC key %d", tag))
	clear(private)
	if err != nil {
		return nil, err
	}
	if k.Tag() != tag || k.DNSKEY.Hdr.Name != origin {
		return nil, fmt.Errorf("DNSSEC key %d: the row holds key %s", tag, k)
	}
	return k, nil
}

// cacheKey is a key as the cache file keeps it: sealed as in the table.
type cacheKey struct {
	DNSKEY string `json:"dnskey"`
	Sealed []byte `json:"sealed"`
}

// sealCacheKeys seals z's keys for the cache file with ring's current
// secret.
func sealCacheKeys(z *zones.Zone, ring *keyseal.Keyring) ([]cacheKey, error) {
	if z.Keys == nil {
		return nil, nil
	}
	if ring == nil {
		return nil, fmt.Errorf("zone %s: DNSSEC keys: %w", z.Origin, ErrNoKeySecret)
	}
	var out []cacheKey
	for _, k := range z.Keys.Keys {
		private := []byte(k.PrivateString())
		sealed, err := ring.Seal(private, sealContext(z.Origin, k.Tag()))
		clear(private)
		if err != nil {
			return nil, fmt.Errorf("zone %s: DNSSEC key %d: %w", z.Origin, k.Tag(), err)
		}
		out = append(out, cacheKey{DNSKEY: k.DNSKEY.String(), Sealed: sealed})
	}
	return out, nil
}

// openCacheKeys gives z, read from the cache file, its keys, or marks it
// Invalid as readKeys does.
func openCacheKeys(z *zones.Zone, cached []cacheKey, o *keyOpener) {
	var keys []*signing.Key
	var err error
	for _, c := range cached {
		var rr dns.RR
		if rr, err = dns.NewRR(c.DNSKEY); err != nil {
			break
		}
		dk, ok := rr.(*dns.DNSKEY)
		if !ok {
			err = errors.New("not a DNSKEY record")
			break
		}
		var k *signing.Key
		if k, err = openKey(o.ring, z.Origin, dk.KeyTag(), c.DNSKEY, c.Sealed); err != nil {
			break
		}
		keys = append(keys, k)
	}
	if err == nil {
		z.Keys, err = signing.NewKeyset(z.Origin, keys, o.policy)
	}
	if err != nil {
		z.Keys, z.Invalid = nil, fmt.Errorf("postgres: cache: zone %s: %w", z.Origin, err)
	}
}

// KeyInfo describes a stored key, never its private half.
type KeyInfo struct {
	Zone      string
	Tag       uint16
	Role      string // RoleCSK, RoleKSK or RoleZSK
	Algorithm uint8
	DNSKEY    *dns.DNSKEY
	Active    bool // published and signing; else retired
	Created   time.Time
	Retired   time.Time // zero while active
	// SecretID names the secret that sealed the private half
	// (keyseal.IDOf): keys sealed with an old secret need ResealKeys.
	SecretID string
}

// DS is the DS record (SHA-256) of a key signing key, for the parent.
func (k KeyInfo) DS() *dns.DS { return k.DNSKEY.ToDS(dns.SHA256) }

// ListKeys lists the keys of zone, or of every zone when zone is "", by
// zone, state (active first) and creation; retired keys only when all.
func ListKeys(ctx context.Context, q Querier, zone string, all bool) ([]KeyInfo, error) {
	if zone != "" {
		zone = zones.CanonicalName(zone)
		if err := zoneExists(ctx, q, zone); err != nil {
			return nil, err
		}
	}
	rows, err := q.Query(ctx, `SELECT z.origin, k.tag, k.role, k.algorithm, k.dnskey, k.state = 'active', k.created_at, k.retired_at, k.private_sealed
		FROM dnssec_keys k JOIN zones z ON z.id = k.zone_id
		WHERE ($1 = '' OR z.origin = $1) AND ($2 OR k.state = 'active')
		ORDER BY z.origin, k.state, k.created_at, k.id`, zone, all)
	if err != nil {
		return nil, fmt.Errorf("postgres: list DNSSEC keys: %w", err)
	}
	var out []KeyInfo
	var ki KeyInfo
	var tag int32
	var alg int16
	var dnskey string
	var retired *time.Time
	var sealed []byte
	_, err = pgx.ForEachRow(rows, []any{&ki.Zone, &tag, &ki.Role, &alg, &dnskey, &ki.Active, &ki.Created, &retired, &sealed}, func() error {
		k := ki
		k.Tag, k.Algorithm = uint16(tag), uint8(alg)
		rr, err := dns.NewRR(dnskey)
		if err != nil {
			return fmt.Errorf("zone %s key %d: DNSKEY: %w", k.Zone, k.Tag, err)
		}
		var ok bool
		if k.DNSKEY, ok = rr.(*dns.DNSKEY); !ok {
			return fmt.Errorf("zone %s key %d: not a DNSKEY record", k.Zone, k.Tag)
		}
		if retired != nil {
			k.Retired = *retired
		}
		k.SecretID, _ = keyseal.IDOf(sealed)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list DNSSEC keys: %w", err)
	}
	return out, nil
}

// KeyChange is the outcome of a key command: the keys it made or
// retired, and the data version of the change.
type KeyChange struct {
	Added   []KeyInfo
	Retired []KeyInfo
	Version uint64
}

// GenerateKeys makes the first keys of zone, sealed with ring: a combined
// signing key, or a key signing key and a zone signing key when split.
// Every server signs the zone once it has loaded the change. A zone that
// has keys is refused: roll them instead.
func GenerateKeys(ctx context.Context, db DB, ring *keyseal.Keyring, zone string, algorithm uint8, split bool, actor string) (*KeyChange, error) {
	zone = zones.CanonicalName(zone)
	if ring == nil {
		return nil, fmt.Errorf("postgres: generate keys: %w", ErrNoKeySecret)
	}
	roles := []string{RoleCSK}
	if split {
		roles = []string{RoleKSK, RoleZSK}
	}
	return keyTx(ctx, db, zone, actor, "generate keys", func(tx pgx.Tx, zid int64, active []KeyInfo) (*KeyChange, error) {
		if len(active) > 0 {
			return nil, fmt.Errorf("postgres: zone %s: %w (%s); use a rollover to replace them", zone, ErrHasKeys, describe(active))
		}
		c := &KeyChange{}
		for _, role := range roles {
			k, err := insertKey(ctx, tx, ring, zid, zone, role, algorithm)
			if err != nil {
				return nil, err
			}
			c.Added = append(c.Added, k)
		}
		return c, nil
	})
}

// StartRollover adds a successor to the active key of role in zone, with
// its algorithm: both are published and sign (the double signature
// method) until FinishRollover retires the predecessor. role "" is the
// zone's combined key's role when it has one.
func StartRollover(ctx context.Context, db DB, ring *keyseal.Keyring, zone, role, actor string) (*KeyChange, error) {
	zone = zones.CanonicalName(zone)
	if ring == nil {
		return nil, fmt.Errorf("postgres: start rollover: %w", ErrNoKeySecret)
	}
	return keyTx(ctx, db, zone, actor, "start rollover", func(tx pgx.Tx, zid int64, active []KeyInfo) (*KeyChange, error) {
		role, err := pickRole(zone, role, active)
		if err != nil {
			return nil, err
		}
		of := ofRole(active, role)
		switch len(of) {
		case 0:
			return nil, fmt.Errorf("postgres: zone %s has no active %s to roll (it has %s)", zone, strings.ToUpper(role), describe(active))
		case 1:
		default:
			return nil, fmt.Errorf("postgres: zone %s: a %s rollover is already in progress (%s); finish it first", zone, strings.ToUpper(role), describe(of))
		}
		k, err := insertKey(ctx, tx, ring, zid, zone, role, of[0].Algorithm)
		if err != nil {
			return nil, err
		}
		return &KeyChange{Added: []KeyInfo{k}}, nil
	})
}

// FinishRollover retires the predecessor of the rollover of role in zone
// (role "" when only one is in progress). Unless force, it refuses while
// the successor has been published for less than minAge: resolvers that
// cached the DNSKEY RRset without it would fail to validate answers
// signed by it alone.
func FinishRollover(ctx context.Context, db DB, zone, role string, minAge time.Duration, force bool, actor string) (*KeyChange, error) {
	zone = zones.CanonicalName(zone)
	return keyTx(ctx, db, zone, actor, "finish rollover", func(tx pgx.Tx, zid int64, active []KeyInfo) (*KeyChange, error) {
		if len(active) == 0 {
			return nil, fmt.Errorf("postgres: zone %s: %w", zone, ErrNoKeys)
		}
		if role == "" {
			var rolling []string
			for _, r := range []string{RoleCSK, RoleKSK, RoleZSK} {
				if len(ofRole(active, r)) > 1 {
					rolling = append(rolling, r)
				}
			}
			switch len(rolling) {
			case 0:
				return nil, fmt.Errorf("postgres: zone %s: %w (keys: %s)", zone, ErrNoRollover, describe(active))
			case 1:
				role = rolling[0]
			default:
				return nil, fmt.Errorf("postgres: zone %s has rollovers of %s in progress: say which role to finish", zone, strings.Join(rolling, " and "))
			}
		}
		of := ofRole(active, role)
		if len(of) < 2 {
			return nil, fmt.Errorf("postgres: zone %s: %w for role %s (keys: %s)", zone, ErrNoRollover, role, describe(active))
		}
		successor := of[len(of)-1] // ofRole keeps the order of creation
		if age := time.Since(successor.Created); age < minAge && !force {
			return nil, fmt.Errorf("postgres: zone %s: %w: key %d has been published for %s; wait until %s (%s after it was added) so that resolvers know it",
				zone, ErrRolloverTooSoon, successor.Tag, age.Truncate(time.Second), successor.Created.Add(minAge).UTC().Format(time.RFC3339), minAge)
		}
		c := &KeyChange{}
		for _, k := range of[:len(of)-1] {
			if _, err := tx.Exec(ctx, "UPDATE dnssec_keys SET state = 'retired', retired_at = now() WHERE zone_id = $1 AND tag = $2", zid, int32(k.Tag)); err != nil {
				return nil, fmt.Errorf("postgres: zone %s: retire key %d: %w", zone, k.Tag, err)
			}
			k.Active, k.Retired = false, time.Now()
			c.Retired = append(c.Retired, k)
		}
		return c, nil
	})
}

// RolloverWait is how long FinishRollover waits by default: the zone's
// largest TTL (the DNSKEY RRset has the SOA's), for the predecessor's
// DNSKEY RRset to leave caches, and an hour for propagation.
func RolloverWait(ctx context.Context, q Querier, zone string) (time.Duration, error) {
	var ttl int64
	if err := q.QueryRow(ctx, "SELECT coalesce(max(r.ttl), 0) FROM records r JOIN zones z ON z.id = r.zone_id WHERE z.origin = $1",
		zones.CanonicalName(zone)).Scan(&ttl); err != nil {
		return 0, fmt.Errorf("postgres: zone %s: largest TTL: %w", zone, err)
	}
	return time.Duration(ttl)*time.Second + time.Hour, nil
}

// ResealKeys seals again with ring's current secret every private key
// sealed with another secret of ring, so that the old secret can be
// dropped. It returns how many keys it resealed.
func ResealKeys(ctx context.Context, db DB, ring *keyseal.Keyring, actor string) (int, error) {
	if ring == nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: %w", ErrNoKeySecret)
	}
	if strings.TrimSpace(actor) == "" {
		return 0, errors.New("postgres: reseal DNSSEC keys: no actor for the audit log")
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: begin: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT 1 FROM meridian_version FOR UPDATE"); err != nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: lock version: %w", err)
	}
	rows, err := tx.Query(ctx, "SELECT k.id, z.origin, k.tag, k.private_sealed FROM dnssec_keys k JOIN zones z ON z.id = k.zone_id ORDER BY k.id FOR UPDATE OF k")
	if err != nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: %w", err)
	}
	type reseal struct {
		id     int64
		origin string
		tag    uint16
		sealed []byte
	}
	var todo []reseal
	var r reseal
	var tag int32
	_, err = pgx.ForEachRow(rows, []any{&r.id, &r.origin, &tag, &r.sealed}, func() error {
		if id, _ := keyseal.IDOf(r.sealed); id != ring.ID() {
			r.tag = uint16(tag)
			todo = append(todo, r)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: %w", err)
	}
	byZone := map[string][]string{}
	for _, r := range todo {
		ctxt := sealContext(r.origin, r.tag)
		plain, err := ring.Open(r.sealed, ctxt)
		if err != nil {
			return 0, fmt.Errorf("postgres: zone %s key %d: %w; nothing was resealed", r.origin, r.tag, err)
		}
		sealed, err := ring.Seal(plain, ctxt)
		clear(plain)
		if err != nil {
			return 0, fmt.Errorf("postgres: zone %s key %d: %w", r.origin, r.tag, err)
		}
		if _, err := tx.Exec(ctx, "UPDATE dnssec_keys SET private_sealed = $2 WHERE id = $1", r.id, sealed); err != nil {
			return 0, fmt.Errorf("postgres: zone %s key %d: %w", r.origin, r.tag, err)
		}
		byZone[r.origin] = append(byZone[r.origin], strconv.Itoa(int(r.tag)))
	}
	for zone, tags := range byZone {
		if err := keyAudit(ctx, tx, actor, zone, "reseal", "keys "+strings.Join(tags, ", ")+" sealed with secret "+ring.ID()); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: reseal DNSSEC keys: commit: %w", err)
	}
	return len(todo), nil
}

// KeyAuditEntry is one entry of the DNSSEC key audit log.
type KeyAuditEntry struct {
	At     time.Time
	Actor  string
	Zone   string
	Action string
	Detail string
}

// KeyAuditLog returns the last limit entries of the key audit log, newest
// first; limit <= 0 returns them all.
func KeyAuditLog(ctx context.Context, q Querier, limit int) ([]KeyAuditEntry, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := q.Query(ctx, "SELECT at, actor, zone, action, detail FROM dnssec_key_audit ORDER BY id DESC LIMIT $1", lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: read key audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyAuditEntry, error) {
		var a KeyAuditEntry
		return a, r.Scan(&a.At, &a.Actor, &a.Zone, &a.Action, &a.Detail)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read key audit log: %w", err)
	}
	return out, nil
}

// keyTx runs change on zone's active keys in one transaction that holds
// the version row (as every writer takes it first), logs the change in
// the key audit log and returns it with the new data version.
func keyTx(ctx context.Context, db DB, zone, actor, action string,
	change func(tx pgx.Tx, zid int64, active []KeyInfo) (*KeyChange, error)) (*KeyChange, error) {
	if strings.TrimSpace(actor) == "" {
		return nil, fmt.Errorf("postgres: %s: no actor for the audit log", action)
	}
	tx, err := db.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: begin: %w", action, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT 1 FROM meridian_version FOR UPDATE"); err != nil {
		return nil, fmt.Errorf("postgres: %s: lock version: %w", action, err)
	}
	var zid int64
	if err := tx.QueryRow(ctx, "SELECT id FROM zones WHERE origin = $1 FOR UPDATE", zone).Scan(&zid); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("postgres: no zone %s: %w", zone, ErrUnknownZone)
		}
		return nil, fmt.Errorf("postgres: %s: find zone %s: %w", action, zone, err)
	}
	all, err := ListKeys(ctx, tx, zone, false)
	if err != nil {
		return nil, err
	}
	c, err := change(tx, zid, all)
	if err != nil {
		return nil, err
	}
	var parts []string
	for _, k := range c.Added {
		parts = append(parts, fmt.Sprintf("added %s %d (%s)", strings.ToUpper(k.Role), k.Tag, AlgorithmName(k.Algorithm)))
	}
	for _, k := range c.Retired {
		parts = append(parts, fmt.Sprintf("retired %s %d", strings.ToUpper(k.Role), k.Tag))
	}
	if err := keyAudit(ctx, tx, actor, zone, action, strings.Join(parts, "; ")); err != nil {
		return nil, err
	}
	var v int64
	if err := tx.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&v); err != nil {
		return nil, fmt.Errorf("postgres: %s: read version: %w", action, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: %s: commit: %w", action, err)
	}
	c.Version = uint64(v)
	return c, nil
}

// insertKey generates a key of role for zone and stores it sealed.
func insertKey(ctx context.Context, tx pgx.Tx, ring *keyseal.Keyring, zid int64, zone, role string, algorithm uint8) (KeyInfo, error) {
	if ring == nil {
		return KeyInfo{}, fmt.Errorf("postgres: zone %s: %w", zone, ErrNoKeySecret)
	}
	flags := uint16(signing.FlagKSK)
	if role == RoleZSK {
		flags = signing.FlagZSK
	}
	// A new key must not take the tag of any key of the zone, retired
	// ones included (RFC 6781 section 3.4.2 asks for distinct tags).
	for range 16 {
		k, err := signing.Generate(zone, algorithm, flags)
		if err != nil {
			return KeyInfo{}, fmt.Errorf("postgres: zone %s: %w", zone, err)
		}
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM dnssec_keys WHERE zone_id = $1 AND tag = $2)", zid, int32(k.Tag())).Scan(&taken); err != nil {
			return KeyInfo{}, fmt.Errorf("postgres: zone %s: %w", zone, err)
		}
		if taken {
			continue
		}
		private := []byte(k.PrivateString())
		sealed, err := ring.Seal(private, sealContext(zone, k.Tag()))
		clear(private)
		if err != nil {
			return KeyInfo{}, fmt.Errorf("postgres: zone %s: %w", zone, err)
		}
		ki := KeyInfo{Zone: zone, Tag: k.Tag(), Role: role, Algorithm: algorithm, DNSKEY: k.DNSKEY, Active: true, SecretID: ring.ID()}
		if err := tx.QueryRow(ctx, `INSERT INTO dnssec_keys (zone_id, tag, role, algorithm, flags, dnskey, private_sealed)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at`,
			zid, int32(k.Tag()), role, int16(algorithm), int32(flags), k.DNSKEY.String(), sealed).Scan(&ki.Created); err != nil {
			return KeyInfo{}, fmt.Errorf("postgres: zone %s: store key %d: %w", zone, k.Tag(), err)
		}
		return ki, nil
	}
	return KeyInfo{}, fmt.Errorf("postgres: zone %s: no free key tag after 16 keys", zone)
}

func keyAudit(ctx context.Context, tx pgx.Tx, actor, zone, action, detail string) error {
	if _, err := tx.Exec(ctx, "INSERT INTO dnssec_key_audit (actor, zone, action, detail) VALUES ($1, $2, $3, $4)", actor, zone, action, detail); err != nil {
		return fmt.Errorf("postgres: zone %s: write key audit log: %w", zone, err)
	}
	return nil
}

// pickRole returns the role a rollover is of: role when given, else the
// combined key's.
func pickRole(zone, role string, active []KeyInfo) (string, error) {
	switch role {
	case RoleCSK, RoleKSK, RoleZSK:
		return role, nil
	case "":
	default:
		return "", fmt.Errorf("postgres: key role %q: want csk, ksk or zsk", role)
	}
	if len(active) == 0 {
		return "", fmt.Errorf("postgres: zone %s: %w", zone, ErrNoKeys)
	}
	if len(ofRole(active, RoleCSK)) > 0 {
		return RoleCSK, nil
	}
	return "", fmt.Errorf("postgres: zone %s has a KSK and a ZSK: say which to roll (ksk or zsk)", zone)
}

// ofRole returns the keys of role, in the order of active (creation).
func ofRole(active []KeyInfo, role string) []KeyInfo {
	var out []KeyInfo
	for _, k := range active {
		if k.Role == role {
			out = append(out, k)
		}
	}
	return out
}

// AlgorithmName is the mnemonic of a DNSSEC algorithm Meridian signs
// with (signing.Algorithms), or its number.
func AlgorithmName(a uint8) string {
	for name, v := range signing.Algorithms {
		if v == a {
			return name
		}
	}
	return strconv.Itoa(int(a))
}

// describe lists keys as "CSK 12345, ZSK 2345".
func describe(keys []KeyInfo) string {
	if len(keys) == 0 {
		return "no keys"
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", strings.ToUpper(k.Role), k.Tag))
	}
	return strings.Join(parts, ", ")
}

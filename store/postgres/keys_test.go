package postgres_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// newRing returns a keyring with a new secret, and the secret in base64.
func newRing(t *testing.T, old ...[]byte) (*keyseal.Keyring, []byte) {
	t.Helper()
	secret, err := keyseal.ParseSecret(keyseal.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyseal.New(secret, old...)
	if err != nil {
		t.Fatal(err)
	}
	return ring, secret
}

func keysConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestKeysGenerateLoad generates a zone's key, loads the zone signed with
// it, and checks that the private key is stored sealed.
func TestKeysGenerateLoad(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	addZone(t, url, "example.com.", "192.0.2.1")
	addZone(t, url, "example.org.", "192.0.2.2")
	conn := keysConn(t, url)
	ring, secret := newRing(t)

	s := newStore(t, postgres.Options{URL: url, Keys: ring})
	d0 := load(t, s)

	c, err := postgres.GenerateKeys(ctx, conn, ring, "Example.COM", dns.ECDSAP256SHA256, false, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Added) != 1 || c.Added[0].Role != postgres.RoleCSK || c.Added[0].DNSKEY.Flags != signing.FlagKSK || c.Version <= d0.Version {
		t.Fatalf("generate: %+v (version before %d)", c, d0.Version)
	}
	d := load(t, s)
	if d.Version != c.Version {
		t.Errorf("loaded version %d, the key was added in %d", d.Version, c.Version)
	}
	z := zoneOf(d, "example.com.")
	if z.Invalid != nil || z.Keys == nil || len(z.Keys.Keys) != 1 {
		t.Fatalf("example.com. loaded with keys %v, invalid %v", z.Keys, z.Invalid)
	}
	if got, want := z.Keys.Keys[0].DS().String(), c.Added[0].DS().String(); got != want {
		t.Errorf("the loaded key's DS is %s, generate said %s", got, want)
	}
	if other := zoneOf(d, "example.org."); other.Keys != nil || other.Invalid != nil {
		t.Errorf("example.org. has keys %v, invalid %v", other.Keys, other.Invalid)
	}
	if _, err := zones.Build(d.Zones, d.Version); err != nil {
		t.Fatalf("the signed zone does not build: %v", err)
	}

	// The private key is in the table sealed, not as text.
	var sealed []byte
	if err := conn.QueryRow(ctx, "SELECT private_sealed FROM dnssec_keys").Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	private := z.Keys.Keys[0].PrivateString()
	field := private[strings.Index(private, "PrivateKey: ")+len("PrivateKey: "):]
	field = strings.TrimSpace(field)
	raw, _ := base64.StdEncoding.DecodeString(field)
	if bytes.Contains(sealed, []byte("Private-key-format")) || bytes.Contains(sealed, []byte(field)) || len(raw) == 0 || bytes.Contains(sealed, raw) {
		t.Error("the table holds the private key in the clear")
	}
	if bytes.Contains(sealed, secret) {
		t.Error("the table holds the secret")
	}

	ks, err := postgres.ListKeys(ctx, conn, "", false)
	if err != nil || len(ks) != 1 || ks[0].Zone != "example.com." || !ks[0].Active || ks[0].SecretID != ring.ID() {
		t.Fatalf("ListKeys = %+v, %v", ks, err)
	}

	if _, err := postgres.GenerateKeys(ctx, conn, ring, "example.com.", dns.ED25519, true, "alice"); !errors.Is(err, postgres.ErrHasKeys) {
		t.Errorf("a second generate: %v, want ErrHasKeys", err)
	}
	if _, err := postgres.GenerateKeys(ctx, conn, ring, "nope.example.", dns.ED25519, false, "alice"); !errors.Is(err, postgres.ErrUnknownZone) {
		t.Errorf("generate for an unknown zone: %v, want ErrUnknownZone", err)
	}
	if _, err := postgres.GenerateKeys(ctx, conn, nil, "example.org.", dns.ED25519, false, "alice"); !errors.Is(err, postgres.ErrNoKeySecret) {
		t.Errorf("generate without a secret: %v, want ErrNoKeySecret", err)
	}
	if n := count(t, conn, "SELECT count(*) FROM dnssec_keys"); n != 1 {
		t.Errorf("refused generates left %d keys, want 1", n)
	}
	if n := count(t, conn, "SELECT count(*) FROM dnssec_key_audit WHERE actor = 'alice' AND zone = 'example.com.' AND action = 'generate keys'"); n != 1 {
		t.Errorf("%d audit entries for the generate, want 1", n)
	}

	// Split keys, in Ed25519, for the other zone.
	c, err = postgres.GenerateKeys(ctx, conn, ring, "example.org.", dns.ED25519, true, "alice")
	if err != nil || len(c.Added) != 2 || c.Added[0].Role != postgres.RoleKSK || c.Added[1].Role != postgres.RoleZSK || c.Added[1].DNSKEY.Flags != signing.FlagZSK {
		t.Fatalf("generate --split: %+v, %v", c, err)
	}
	d = load(t, s)
	if z := zoneOf(d, "example.org."); z.Invalid != nil || z.Keys == nil || len(z.Keys.Keys) != 2 {
		t.Fatalf("example.org. loaded with keys %v, invalid %v", z.Keys, z.Invalid)
	}
}

func count(t *testing.T, conn *pgx.Conn, sql string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKeysUnopenable loads a signed zone with no secret, the wrong secret
// and a row copied from another zone: the zone is Invalid, with a reason
// that holds no secret.
func TestKeysUnopenable(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	addZone(t, url, "example.com.", "192.0.2.1")
	addZone(t, url, "example.org.", "192.0.2.2")
	conn := keysConn(t, url)
	ring, secret := newRing(t)
	for _, z := range []string{"example.com.", "example.org."} {
		if _, err := postgres.GenerateKeys(ctx, conn, ring, z, dns.ECDSAP256SHA256, false, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	wrong, wrongSecret := newRing(t)
	for _, tc := range []struct {
		name string
		ring *keyseal.Keyring
		want string
	}{
		{"no secret", nil, "no DNSSEC key secret configured (store.key_secret"},
		{"wrong secret", wrong, "sealed with a secret that is not configured (secret id " + ring.ID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := loadInvalid(t, newStore(t, postgres.Options{URL: url, Keys: tc.ring}))
			z := zoneOf(d, "example.com.")
			if z.Invalid == nil || z.Keys != nil {
				t.Fatalf("keys %v, invalid %v; want invalid", z.Keys, z.Invalid)
			}
			msg := z.Invalid.Error()
			if !strings.Contains(msg, "zone example.com.: DNSSEC key ") || !strings.Contains(msg, tc.want) {
				t.Errorf("invalid: %q, want %q", msg, tc.want)
			}
			for _, s := range [][]byte{secret, wrongSecret} {
				if strings.Contains(msg, base64.StdEncoding.EncodeToString(s)) || strings.Contains(msg, string(s)) {
					t.Errorf("the reason holds a secret: %q", msg)
				}
			}
		})
	}

	// A reader that serves no DNS leaves keys alone.
	if z := zoneOf(load(t, newStore(t, postgres.Options{URL: url, NoKeys: true})), "example.com."); z.Invalid != nil || z.Keys != nil {
		t.Errorf("NoKeys: keys %v, invalid %v", z.Keys, z.Invalid)
	}

	// example.org.'s sealed key copied onto example.com.'s row: it does
	// not open there (the zone and tag are sealed in).
	exec(t, url, `UPDATE dnssec_keys SET private_sealed = (SELECT k.private_sealed FROM dnssec_keys k JOIN zones z ON z.id = k.zone_id WHERE z.origin = 'example.org.')
		WHERE zone_id = (SELECT id FROM zones WHERE origin = 'example.com.')`)
	d := loadInvalid(t, newStore(t, postgres.Options{URL: url, Keys: ring}))
	if z := zoneOf(d, "example.com."); z.Invalid == nil || !strings.Contains(z.Invalid.Error(), "the sealed value or its context (zone, key tag) changed") {
		t.Errorf("a row copied from another zone: invalid %v", z.Invalid)
	}
	if z := zoneOf(d, "example.org."); z.Invalid != nil || z.Keys == nil {
		t.Errorf("example.org. is hurt by example.com.'s row: %v", z.Invalid)
	}
	// A DNSKEY replaced by another key's: the private key does not match.
	other, err := signing.Generate("example.com.", dns.ECDSAP256SHA256, signing.FlagKSK)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, url, "UPDATE dnssec_keys SET dnskey = '"+other.DNSKEY.String()+"' WHERE zone_id = (SELECT id FROM zones WHERE origin = 'example.org.')")
	d = loadInvalid(t, newStore(t, postgres.Options{URL: url, Keys: ring}))
	if z := zoneOf(d, "example.org."); z.Invalid == nil || !strings.Contains(z.Invalid.Error(), "not the one of the DNSKEY") {
		t.Errorf("a DNSKEY of another key: invalid %v", z.Invalid)
	}
}

// TestKeysRollover rolls a combined key and a split pair's ZSK: each step
// bumps the version, and a server following the change log signs with
// the keys of the step.
func TestKeysRollover(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	addZone(t, url, "example.com.", "192.0.2.1")
	addZone(t, url, "example.org.", "192.0.2.2")
	conn := keysConn(t, url)
	ring, _ := newRing(t)
	s := newStore(t, postgres.Options{URL: url, Keys: ring})
	gen, err := postgres.GenerateKeys(ctx, conn, ring, "example.com.", dns.ECDSAP256SHA256, false, "alice")
	if err != nil {
		t.Fatal(err)
	}
	d := load(t, s)
	old := gen.Added[0]

	if _, err := postgres.FinishRollover(ctx, conn, "example.com.", "", 0, false, "alice"); !errors.Is(err, postgres.ErrNoRollover) {
		t.Errorf("finish without a rollover: %v", err)
	}
	if _, err := postgres.StartRollover(ctx, conn, nil, "example.com.", "", "alice"); !errors.Is(err, postgres.ErrNoKeySecret) {
		t.Errorf("start without a secret: %v", err)
	}
	start, err := postgres.StartRollover(ctx, conn, ring, "example.com.", "", "alice")
	if err != nil || len(start.Added) != 1 || start.Added[0].Role != postgres.RoleCSK || start.Version <= d.Version {
		t.Fatalf("start: %+v, %v", start, err)
	}
	next := start.Added[0]
	d = load(t, s)
	if got := tags(zoneOf(d, "example.com.")); d.Version != start.Version || !sameTags(got, old.Tag, next.Tag) {
		t.Fatalf("during the rollover: version %d, keys %v; want %d, keys %d and %d", d.Version, got, start.Version, old.Tag, next.Tag)
	}
	if _, err := postgres.StartRollover(ctx, conn, ring, "example.com.", "csk", "alice"); err == nil || !strings.Contains(err.Error(), "already in progress") {
		t.Errorf("a second start: %v", err)
	}
	wait, err := postgres.RolloverWait(ctx, conn, "example.com.")
	if err != nil || wait != 300*time.Second+time.Hour {
		t.Errorf("RolloverWait = %s, %v; want the largest TTL (300s) and an hour", wait, err)
	}
	if _, err := postgres.FinishRollover(ctx, conn, "example.com.", "", wait, false, "alice"); !errors.Is(err, postgres.ErrRolloverTooSoon) {
		t.Errorf("finish at once: %v, want ErrRolloverTooSoon", err)
	}
	fin, err := postgres.FinishRollover(ctx, conn, "example.com.", "", wait, true, "alice")
	if err != nil || len(fin.Retired) != 1 || fin.Retired[0].Tag != old.Tag || fin.Version <= start.Version {
		t.Fatalf("finish --force: %+v, %v", fin, err)
	}
	d = load(t, s)
	if got := tags(zoneOf(d, "example.com.")); d.Version != fin.Version || !sameTags(got, next.Tag) {
		t.Fatalf("after the rollover: version %d, keys %v; want %d, key %d", d.Version, got, fin.Version, next.Tag)
	}
	all, err := postgres.ListKeys(ctx, conn, "example.com.", true)
	if err != nil || len(all) != 2 || !all[0].Active || all[0].Tag != next.Tag || all[1].Active || all[1].Retired.IsZero() {
		t.Errorf("ListKeys --all: %+v, %v", all, err)
	}

	// A split pair: the role must be said; the ZSK rolls alone.
	if _, err := postgres.GenerateKeys(ctx, conn, ring, "example.org.", dns.ED25519, true, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.StartRollover(ctx, conn, ring, "example.org.", "", "alice"); err == nil || !strings.Contains(err.Error(), "say which to roll") {
		t.Errorf("start without a role on a split pair: %v", err)
	}
	if _, err := postgres.StartRollover(ctx, conn, ring, "example.org.", "csk", "alice"); err == nil || !strings.Contains(err.Error(), "no active CSK") {
		t.Errorf("start csk on a split pair: %v", err)
	}
	zsk, err := postgres.StartRollover(ctx, conn, ring, "example.org.", "zsk", "alice")
	if err != nil || zsk.Added[0].Algorithm != dns.ED25519 || zsk.Added[0].DNSKEY.Flags != signing.FlagZSK {
		t.Fatalf("start zsk: %+v, %v", zsk, err)
	}
	if z := zoneOf(load(t, s), "example.org."); z.Keys == nil || len(z.Keys.Keys) != 3 {
		t.Fatalf("example.org. during its ZSK rollover: %v, invalid %v", z.Keys, z.Invalid)
	}
	if _, err := postgres.FinishRollover(ctx, conn, "example.org.", "", 0, false, "alice"); err != nil {
		t.Fatal(err)
	}
	if z := zoneOf(load(t, s), "example.org."); z.Keys == nil || len(z.Keys.Keys) != 2 || !sameTags(tags(z), tagsOf(t, conn, "example.org.")...) {
		t.Fatalf("example.org. after its ZSK rollover: %v", z.Keys)
	}
	if n := count(t, conn, "SELECT count(*) FROM dnssec_key_audit WHERE action IN ('start rollover', 'finish rollover')"); n != 4 {
		t.Errorf("%d audit entries of rollovers, want 4", n)
	}
}

// TestKeysReseal rotates the secret: servers with the new and the old
// secret open keys of both; ResealKeys seals them all with the new one,
// after which the new secret alone opens them.
func TestKeysReseal(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	addZone(t, url, "example.com.", "192.0.2.1")
	conn := keysConn(t, url)
	oldRing, oldSecret := newRing(t)
	if _, err := postgres.GenerateKeys(ctx, conn, oldRing, "example.com.", dns.ECDSAP256SHA256, true, "alice"); err != nil {
		t.Fatal(err)
	}
	ring, secret := newRing(t, oldSecret)
	if z := zoneOf(load(t, newStore(t, postgres.Options{URL: url, Keys: ring})), "example.com."); z.Invalid != nil {
		t.Fatalf("the new secret with the old one beside it: %v", z.Invalid)
	}
	n, err := postgres.ResealKeys(ctx, conn, ring, "alice")
	if err != nil || n != 2 {
		t.Fatalf("ResealKeys = %d, %v; want 2", n, err)
	}
	if n, err := postgres.ResealKeys(ctx, conn, ring, "alice"); err != nil || n != 0 {
		t.Errorf("a second ResealKeys = %d, %v; want 0", n, err)
	}
	newOnly, err := keyseal.New(secret)
	if err != nil {
		t.Fatal(err)
	}
	if z := zoneOf(load(t, newStore(t, postgres.Options{URL: url, Keys: newOnly})), "example.com."); z.Invalid != nil || z.Keys == nil {
		t.Fatalf("the new secret alone after resealing: %v", z.Invalid)
	}
	if z := zoneOf(loadInvalid(t, newStore(t, postgres.Options{URL: url, Keys: oldRing})), "example.com."); z.Invalid == nil {
		t.Fatal("the old secret alone still opens resealed keys")
	}
	ks, _ := postgres.ListKeys(ctx, conn, "", false)
	for _, k := range ks {
		if k.SecretID != ring.ID() {
			t.Errorf("key %d sealed with %s after resealing, want %s", k.Tag, k.SecretID, ring.ID())
		}
	}
}

// loadInvalid loads s, whose data may hold Invalid zones, which Build
// refuses.
func loadInvalid(t *testing.T, s *postgres.Store) *store.Data {
	t.Helper()
	d, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tags(z *zones.Zone) []uint16 {
	if z == nil || z.Keys == nil {
		return nil
	}
	var out []uint16
	for _, k := range z.Keys.Keys {
		out = append(out, k.Tag())
	}
	return out
}

func tagsOf(t *testing.T, conn *pgx.Conn, zone string) []uint16 {
	t.Helper()
	ks, err := postgres.ListKeys(context.Background(), conn, zone, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint16
	for _, k := range ks {
		out = append(out, k.Tag)
	}
	return out
}

func sameTags(got []uint16, want ...uint16) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestKeysCacheFile starts a server from its cache file while the
// database is away: a signed zone is signed with the same keys, kept
// sealed in the file; with another secret it is Invalid.
func TestKeysCacheFile(t *testing.T) {
	ctx := context.Background()
	url := newSchema(t)
	addZone(t, url, "example.com.", "192.0.2.1")
	addZone(t, url, "example.org.", "192.0.2.2")
	conn := keysConn(t, url)
	ring, secret := newRing(t)
	if _, err := postgres.GenerateKeys(ctx, conn, ring, "example.com.", dns.ED25519, true, "alice"); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache.json")
	s := newStore(t, postgres.Options{URL: url, CacheFile: cache, Keys: ring})
	want := tags(zoneOf(load(t, s), "example.com."))
	s.Close() // waits for the cache file
	b, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("PrivateKey")) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString(secret))) {
		t.Error("the cache file holds a private key or the secret in the clear")
	}

	away := "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"
	d := load(t, newStore(t, postgres.Options{URL: away, CacheFile: cache, Keys: ring}))
	if z := zoneOf(d, "example.com."); z.Invalid != nil || !sameTags(tags(z), want...) || len(want) != 2 {
		t.Errorf("from the cache: keys %v (invalid %v), want tags %v", tags(z), z.Invalid, want)
	}
	if z := zoneOf(d, "example.org."); z.Keys != nil || z.Invalid != nil {
		t.Errorf("example.org. from the cache: keys %v, invalid %v", z.Keys, z.Invalid)
	}
	other, _ := newRing(t)
	d = loadInvalid(t, newStore(t, postgres.Options{URL: away, CacheFile: cache, Keys: other}))
	if z := zoneOf(d, "example.com."); z.Invalid == nil || z.Keys != nil || !strings.Contains(z.Invalid.Error(), "sealed with a secret that is not configured") {
		t.Errorf("from the cache with another secret: keys %v, invalid %v", z.Keys, z.Invalid)
	}
}

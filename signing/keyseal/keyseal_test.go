package keyseal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func secretFor(t *testing.T) []byte {
	t.Helper()
	b, err := ParseSecret(NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	k, err := New(secretFor(t))
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: abc=\n")
	ctx := []byte("example.com. 12345")
	a, err := k.Seal(plain, ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(plain, ctx)
	if bytes.Equal(a, b) {
		t.Error("two seals of one plaintext are equal: the nonce is not random")
	}
	if bytes.Contains(a, plain[:20]) || bytes.Contains(a, []byte("PrivateKey")) {
		t.Error("the sealed value holds the plaintext")
	}
	got, err := k.Open(a, ctx)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	if id, err := IDOf(a); err != nil || id != k.ID() {
		t.Errorf("IDOf = %q, %v; want %q", id, err, k.ID())
	}
}

func TestOpenFailures(t *testing.T) {
	s1, s2 := secretFor(t), secretFor(t)
	k1, _ := New(s1)
	k2, _ := New(s2)
	ctx := []byte("example.com. 12345")
	sealed, err := k1.Seal([]byte("private"), ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Open(sealed, ctx); !errors.Is(err, ErrUnknownSecret) {
		t.Errorf("wrong secret: %v, want ErrUnknownSecret", err)
	}
	// A secret whose id is forged to be the right one still fails.
	forged := bytes.Clone(sealed)
	copy(forged[1:5], k2.current.id[:])
	if _, err := k2.Open(forged, ctx); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong secret, forged id: %v, want ErrOpen", err)
	}
	for i := range sealed {
		if i >= 1 && i < 5 {
			continue // the id: ErrUnknownSecret, above
		}
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x20
		if _, err := k1.Open(tampered, ctx); err == nil {
			t.Fatalf("octet %d tampered: opened", i)
		}
	}
	if _, err := k1.Open(sealed[:len(sealed)-1], ctx); err == nil {
		t.Error("truncated: opened")
	}
	if _, err := k1.Open(sealed, []byte("example.net. 12345")); !errors.Is(err, ErrOpen) {
		t.Errorf("other zone: %v, want ErrOpen", err)
	}
	if _, err := k1.Open(sealed, []byte("example.com. 12346")); !errors.Is(err, ErrOpen) {
		t.Errorf("other key tag: %v, want ErrOpen", err)
	}
	if _, err := k1.Open([]byte("short"), ctx); !errors.Is(err, ErrFormat) {
		t.Errorf("not sealed: %v, want ErrFormat", err)
	}
	for _, err := range []error{ErrUnknownSecret, ErrOpen} {
		if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(s1)) {
			t.Error("an error holds the secret")
		}
	}
}

// TestRotation opens values of the old secret and seals with the new.
func TestRotation(t *testing.T) {
	old, cur := secretFor(t), secretFor(t)
	k1, _ := New(old)
	sealed, _ := k1.Seal([]byte("private"), []byte("c"))
	k2, err := New(cur, old)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(sealed, []byte("c")); err != nil || string(got) != "private" {
		t.Fatalf("open with the old secret in the ring: %q, %v", got, err)
	}
	resealed, _ := k2.Seal([]byte("private"), []byte("c"))
	if id, _ := IDOf(resealed); id != k2.ID() || id == k1.ID() {
		t.Errorf("resealed with %s, want the new secret %s", id, k2.ID())
	}
	k3, _ := New(cur)
	if _, err := k3.Open(resealed, []byte("c")); err != nil {
		t.Errorf("the new secret alone does not open what it sealed: %v", err)
	}
	if _, err := k3.Open(sealed, []byte("c")); !errors.Is(err, ErrUnknownSecret) || !strings.Contains(err.Error(), k1.ID()) {
		t.Errorf("old value without the old secret: %v", err)
	}
}

func TestParseSecret(t *testing.T) {
	raw := bytes.Repeat([]byte{1, 2, 3, 4}, 8)
	for _, text := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw) + "\n",
	} {
		if got, err := ParseSecret(text); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseSecret(%q) = %x, %v", text, got, err)
		}
	}
	for text, want := range map[string]string{
		"":    "empty secret",
		"!!!": "not base64",
		base64.StdEncoding.EncodeToString(raw[:16]): "16 octets, want 32",
	} {
		_, err := ParseSecret(text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSecret(%q): %v, want %q", text, err, want)
		}
		if err != nil && text != "" && strings.Contains(err.Error(), text) {
			t.Errorf("the error holds the text: %v", err)
		}
	}
	if _, err := New(make([]byte, 32)); err == nil {
		t.Error("New accepted a secret of zeros")
	}
	if _, err := New(raw, raw[:5]); err == nil || !strings.Contains(err.Error(), "old secret 1") {
		t.Errorf("New with a short old secret: %v", err)
	}
}

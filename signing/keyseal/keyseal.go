// Package keyseal seals private keys for storage with AES-256-GCM, so that
// a database holding DNSSEC keys does not hold them in the clear: whoever
// reads the table (a backup, a replica, a support dump) also needs the
// secret, which lives in the servers' environment only.
//
// A sealed value is
//
//	version (1 octet, 1) | secret id (4 octets) | nonce (12 octets) | ciphertext and tag
//
// The secret id names the secret that sealed it, so that a Keyring holding
// the current secret and older ones opens every value while new values are
// sealed with the current one: the secret can be rotated without a flag
// day. The caller's context (for a DNSSEC key: its zone and key tag) is
// authenticated with the header as additional data, so that a value
// copied to another row does not open there.
//
// Errors never hold a secret or a plaintext.
package keyseal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SecretSize is the length of a secret: 32 octets, an AES-256 key.
const SecretSize = 32

const (
	version   = 1
	idSize    = 4
	nonceSize = 12
	header    = 1 + idSize + nonceSize
	tagSize   = 16
)

// Errors of Open, for errors.Is.
var (
	// ErrUnknownSecret: the value was sealed with a secret the keyring
	// does not hold (not configured, or already dropped after a rotation).
	ErrUnknownSecret = errors.New("keyseal: sealed with a secret that is not configured")
	// ErrOpen: the secret with the value's id does not open it: the
	// value, or the context it was sealed for, changed.
	ErrOpen = errors.New("keyseal: cannot open: the sealed value or its context (zone, key tag) changed")
	// ErrFormat: the value is not a sealed value of a version known here.
	ErrFormat = errors.New("keyseal: not a sealed value")
)

// secret is one AES-256-GCM key and its id.
type secret struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Keyring seals with its current secret and opens with any of its
// secrets. It is safe for concurrent use.
type Keyring struct {
	current *secret
	byID    map[[idSize]byte]*secret
}

// New returns a keyring that seals with current and opens values sealed
// with current or any of old (the secrets being rotated out). Each secret
// is SecretSize random octets (ParseSecret reads them from base64).
func New(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{byID: map[[idSize]byte]*secret{}}
	for i, raw := range append([][]byte{current}, old...) {
		s, err := newSecret(raw)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("keyseal: secret: %w", err)
			}
			return nil, fmt.Errorf("keyseal: old secret %d: %w", i, err)
		}
		if i == 0 {
			k.current = s
		}
		if _, dup := k.byID[s.id]; !dup {
			k.byID[s.id] = s
		}
	}
	return k, nil
}

func newSecret(raw []byte) (*secret, error) {
	if len(raw) != SecretSize {
		return nil, fmt.Errorf("%d octets, want %d", len(raw), SecretSize)
	}
	if bytes.Count(raw, raw[:1]) == len(raw) {
		return nil, errors.New("one octet repeated: not a random secret")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &secret{id: secretID(raw), aead: aead}, nil
}

// secretID names a secret without revealing it: the first octets of a
// hash of it, under a label of its own.
func secretID(raw []byte) [idSize]byte {
	h := sha256.Sum256(append([]byte("meridian keyseal secret id\x00"), raw...))
	return [idSize]byte(h[:idSize])
}

// ParseSecret reads a secret written in base64 (standard or URL
// alphabet, padded or not), as "openssl rand -base64 32" writes it. The
// error never holds the text.
func ParseSecret(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("keyseal: empty secret")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			if len(b) != SecretSize {
				return nil, fmt.Errorf("keyseal: the secret is %d octets, want %d (openssl rand -base64 32)", len(b), SecretSize)
			}
			return b, nil
		}
	}
	return nil, errors.New("keyseal: the secret is not base64 (openssl rand -base64 32 makes one)")
}

// NewSecret returns a new random secret in base64.
func NewSecret() string {
	b := make([]byte, SecretSize)
	rand.Read(b) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b)
}

// ID names the current secret (hex), as IDOf names the secret of a sealed
// value: a value needs resealing when they differ.
func (k *Keyring) ID() string { return hex.EncodeToString(k.current.id[:]) }

// IDOf returns the id of the secret that sealed a value.
func IDOf(sealed []byte) (string, error) {
	if len(sealed) < header+tagSize || sealed[0] != version {
		return "", ErrFormat
	}
	return hex.EncodeToString(sealed[1 : 1+idSize]), nil
}

// Seal encrypts plaintext with the current secret and a random nonce,
// bound to context.
func (k *Keyring) Seal(plaintext, context []byte) ([]byte, error) {
	out := make([]byte, header, header+len(plaintext)+tagSize)
	out[0] = version
	copy(out[1:], k.current.id[:])
	if _, err := rand.Read(out[1+idSize : header]); err != nil {
		return nil, fmt.Errorf("keyseal: nonce: %w", err)
	}
	return k.current.aead.Seal(out, out[1+idSize:header], plaintext, additional(out[:1+idSize], context)), nil
}

// Open decrypts a value made by Seal with any secret of the keyring, for
// the same context.
func (k *Keyring) Open(sealed, context []byte) ([]byte, error) {
	if len(sealed) < header+tagSize || sealed[0] != version {
		return nil, ErrFormat
	}
	s, ok := k.byID[[idSize]byte(sealed[1:1+idSize])]
	if !ok {
		return nil, fmt.Errorf("%w (secret id %x; configured: %s)", ErrUnknownSecret, sealed[1:1+idSize], k.ids())
	}
	plain, err := s.aead.Open(nil, sealed[1+idSize:header], sealed[header:], additional(sealed[:1+idSize], context))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// ids lists the ids of the keyring's secrets, the current one first.
func (k *Keyring) ids() string {
	out := []string{k.ID()}
	for id := range k.byID {
		if id != k.current.id {
			out = append(out, hex.EncodeToString(id[:]))
		}
	}
	return strings.Join(out, ", ")
}

// additional is the additional data: a label, the value's header without
// the nonce (so the version and secret id cannot be changed), and the
// caller's context.
func additional(head, context []byte) []byte {
	ad := append([]byte("meridian keyseal\x00"), head...)
	return append(ad, context...)
}

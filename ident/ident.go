// Package ident defines medchain identities: an Ed25519 key for signing and
// an HPKE key (ML-KEM-768+X25519) for receiving wrapped data keys, the actor
// ID derived from them, and the printable public-key string that one machine
// hands to another.
//
// ident holds no secrets at rest and knows nothing of the ledger.
package ident

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KEM is the key-encapsulation mechanism every medchain identity uses.
func KEM() hpke.KEM { return hpke.MLKEM768X25519() }

// BoxPublicSize is the size of an encoded ML-KEM-768+X25519 public key.
const BoxPublicSize = 1216

// publicPrefix starts every printable public key, so a pasted key is
// recognizable and a truncated one fails loudly.
const publicPrefix = "mcpub1"

// idPrefix starts every actor ID.
const idPrefix = "mc1"

// ErrMalformed reports a public key or ID that cannot be parsed.
var ErrMalformed = errors.New("malformed identity")

// Public is the public half of an identity.
type Public struct {
	Sign ed25519.PublicKey // 32 bytes
	Box  []byte            // BoxPublicSize bytes, an encoded hpke.PublicKey
}

// ID returns the actor ID: "mc1" and the hex of the first 20 bytes of
// SHA-256 over the signing key. IDs are pseudonymous.
func (p Public) ID() string { return IDOf(p.Sign) }

// IDOf returns the actor ID of a signing key.
func IDOf(sign ed25519.PublicKey) string {
	sum := sha256.Sum256(append([]byte("medchain/id/v1\x00"), sign...))
	return idPrefix + hex.EncodeToString(sum[:20])
}

// ValidID reports whether s has the shape of an actor ID.
func ValidID(s string) bool {
	if len(s) != len(idPrefix)+40 || !strings.HasPrefix(s, idPrefix) {
		return false
	}
	for _, c := range s[len(idPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// String encodes p so that another machine can pass it wherever a key is
// expected: "mcpub1" then unpadded base64url of Sign || Box.
func (p Public) String() string {
	b := make([]byte, 0, ed25519.PublicKeySize+len(p.Box))
	b = append(append(b, p.Sign...), p.Box...)
	return publicPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// BoxKey returns the HPKE public key.
func (p Public) BoxKey() (hpke.PublicKey, error) {
	k, err := KEM().NewPublicKey(p.Box)
	if err != nil {
		return nil, fmt.Errorf("%w: hpke public key: %v", ErrMalformed, err)
	}
	return k, nil
}

// Check validates sizes and that the HPKE key decodes.
func (p Public) Check() error {
	if len(p.Sign) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signing key is %d bytes, want %d", ErrMalformed, len(p.Sign), ed25519.PublicKeySize)
	}
	if len(p.Box) != BoxPublicSize {
		return fmt.Errorf("%w: hpke key is %d bytes, want %d", ErrMalformed, len(p.Box), BoxPublicSize)
	}
	_, err := p.BoxKey()
	return err
}

// ParsePublic decodes the output of [Public.String].
func ParsePublic(s string) (Public, error) {
	if !strings.HasPrefix(s, publicPrefix) {
		return Public{}, fmt.Errorf("%w: public key must start with %q", ErrMalformed, publicPrefix)
	}
	// The decoder skips line breaks: refused here, so that one key has one
	// spelling wherever it is stored or compared.
	if strings.ContainsAny(s, "\r\n") {
		return Public{}, fmt.Errorf("%w: public key must be one line, without line breaks", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(publicPrefix):])
	if err != nil {
		return Public{}, fmt.Errorf("%w: public key is not base64url: %v", ErrMalformed, err)
	}
	if len(b) != ed25519.PublicKeySize+BoxPublicSize {
		return Public{}, fmt.Errorf("%w: public key is %d bytes, want %d", ErrMalformed, len(b), ed25519.PublicKeySize+BoxPublicSize)
	}
	p := Public{Sign: ed25519.PublicKey(b[:ed25519.PublicKeySize:ed25519.PublicKeySize]), Box: b[ed25519.PublicKeySize:]}
	if err := p.Check(); err != nil {
		return Public{}, err
	}
	return p, nil
}

// Private is a whole identity: both private keys.
type Private struct {
	Sign ed25519.PrivateKey
	Box  hpke.PrivateKey
}

// Generate makes a new identity from the system's secure random source.
func Generate() (Private, error) {
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		return Private{}, err
	}
	box, err := KEM().GenerateKey()
	if err != nil {
		return Private{}, err
	}
	return Private{Sign: sk, Box: box}, nil
}

// Public returns the public half.
func (k Private) Public() Public {
	return Public{Sign: k.Sign.Public().(ed25519.PublicKey), Box: k.Box.PublicKey().Bytes()}
}

// ID returns the actor ID.
func (k Private) ID() string { return IDOf(k.Sign.Public().(ed25519.PublicKey)) }

// Seeds returns the two private seeds, for storage by the keyring only.
// The Ed25519 seed is 32 bytes; the HPKE seed is the KEM's private encoding.
func (k Private) Seeds() (sign, box []byte, err error) {
	box, err = k.Box.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("encode hpke private key: %w", err)
	}
	return k.Sign.Seed(), box, nil
}

// FromSeeds rebuilds an identity from [Private.Seeds].
func FromSeeds(sign, box []byte) (Private, error) {
	if len(sign) != ed25519.SeedSize {
		return Private{}, fmt.Errorf("%w: signing seed is %d bytes, want %d", ErrMalformed, len(sign), ed25519.SeedSize)
	}
	b, err := KEM().NewPrivateKey(box)
	if err != nil {
		return Private{}, fmt.Errorf("%w: hpke private key", ErrMalformed)
	}
	return Private{Sign: ed25519.NewKeyFromSeed(sign), Box: b}, nil
}

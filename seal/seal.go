// Package seal turns plaintext into ciphertext and key envelopes and back.
// seal never sees the ledger and never stores anything.
//
// # Key hierarchy
//
// Every record gets a fresh random 32-byte data key (DEK). The record's
// content is encrypted under a key derived from the DEK, and the DEK itself is
// sealed with HPKE (ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM) exactly once:
// to the public half of an epoch key pair that belongs to one
// (patient, category, epoch). The patient derives every epoch key from its own
// identity ([EpochKey]) and so stores none of them. A grantee receives the
// epoch's private key once per epoch ([WrapEpochKey]), not one envelope per
// record; a new epoch on revocation locks the revoked grantee out of new
// records. An author keeps its own copy of the DEK with [WrapForSelf], which
// costs no HPKE operation, so a write-only author can read back what it wrote
// without ever holding the epoch's read key.
//
// HPKE costs ~120 µs per seal, so it runs at most once per record
// ([SealRecord]) and once per grantee per epoch ([WrapEpochKey]).
//
// # Content cipher
//
// Content uses AES-256-GCM: it is in the standard library, FIPS-approved and
// hardware-accelerated on every server CPU medchain targets (~4.5 GB/s).
// XChaCha20-Poly1305's advantage, a nonce large enough to pick at random
// forever under one key, buys nothing here, because no content key encrypts
// more than one message: each record has its own DEK. The nonce is random
// anyway. AES-GCM is not key-committing, so the ciphertext carries a 32-byte
// key check derived from the DEK (HKDF); an envelope that delivers a different
// DEK for the same ciphertext cannot make it decrypt to other plaintext.
//
// # Formats (all version 1)
//
//	ciphertext       0x01 | nonce(12) | keycheck(32) | AES-256-GCM(plaintext) | tag(16)
//	epoch envelope   0x01 | HPKE enc(1120) | AES-256-GCM(DEK) | tag(16)       = 1169 bytes
//	epoch-key env.   0x01 | HPKE enc(1120) | AES-256-GCM(seed(32)) | tag(16)  = 1169 bytes
//	self envelope    0x01 | salt(32) | AES-256-GCM(DEK) | tag(16)            = 81 bytes
//
// Errors are [ErrMalformed] (sizes, versions, key types: things that can be
// checked without a key) or [ErrAuth] (authentication failed). Neither ever
// carries key bytes or plaintext.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/medchain/medchain/ident"
)

// Version is the first byte of every ciphertext and envelope seal produces.
const Version byte = 1

// Sizes.
const (
	DEKSize        = 32 // a record's data key
	CommitmentSize = 32 // HMAC-SHA256

	nonceSize    = 12 // AES-GCM
	tagSize      = 16 // AES-GCM
	keyCheckSize = 32
	saltSize     = 32

	// hpkeEncSize is the encapsulated key of ML-KEM-768+X25519 (X-Wing):
	// an ML-KEM-768 ciphertext (1088) and an X25519 share (32).
	hpkeEncSize = 1120
	// epochSeedSize is the serialized private key of an epoch key pair.
	epochSeedSize = 32

	// CiphertextOverhead is how much longer a ciphertext is than its plaintext.
	CiphertextOverhead = 1 + nonceSize + keyCheckSize + tagSize
	// EpochEnvelopeSize is the size of [Sealed.EpochEnvelope].
	EpochEnvelopeSize = 1 + hpkeEncSize + DEKSize + tagSize
	// EpochKeyEnvelopeSize is the size of a [WrapEpochKey] envelope.
	EpochKeyEnvelopeSize = 1 + hpkeEncSize + epochSeedSize + tagSize
	// SelfEnvelopeSize is the size of a [WrapForSelf] envelope.
	SelfEnvelopeSize = 1 + saltSize + DEKSize + tagSize

	// MaxCategoryLen bounds the category name given to [EpochKey].
	MaxCategoryLen = 255
)

// Domain-separation labels. Each derived key or HPKE context has its own.
const (
	labelContent   = "medchain/content/v1"    // DEK -> AES key | key check
	labelCommit    = "medchain/commit/v1"     // DEK -> commitment key
	labelSelf      = "medchain/self/v1"       // identity -> self-wrap key
	labelEpoch     = "medchain/epoch/v1"      // identity -> epoch key pair
	labelRecordKey = "medchain/record-key/v1" // HPKE info: DEK to epoch key
	labelEpochKey  = "medchain/epoch-key/v1"  // HPKE info: epoch key to grantee
)

var (
	// ErrMalformed reports input of the wrong size, an unknown version, or a
	// key of the wrong type: anything detectable without a key.
	ErrMalformed = errors.New("seal: malformed input")
	// ErrAuth reports that authentication failed: wrong key, wrong associated
	// data or context, or tampered bytes. It never says which.
	ErrAuth = errors.New("seal: authentication failed")
)

// HPKE ciphersuite for every envelope. The KEM comes from the keys.
var (
	hpkeKDF  = hpke.HKDFSHA256()
	hpkeAEAD = hpke.AES256GCM()
)

// Sealed is the output of [SealRecord].
type Sealed struct {
	// Ciphertext goes to the blob store.
	Ciphertext []byte
	// Commitment is HMAC-SHA256 of the plaintext under a key derived from the
	// DEK: it binds the plaintext on the ledger but, unlike a plain hash,
	// cannot be brute-forced from a small or guessable record by anyone
	// without the DEK.
	Commitment [CommitmentSize]byte
	// CiphertextHash is SHA-256 of Ciphertext: the blob's address.
	CiphertextHash [32]byte
	// EpochEnvelope is the DEK sealed to the epoch public key (one HPKE
	// operation), bound to the record's associated data.
	EpochEnvelope []byte
	// DEK is the record's data key, for [WrapForSelf]. Never store or
	// transmit it in the clear; drop it when done.
	DEK []byte
}

// SealRecord encrypts one record. aad binds the ciphertext and the epoch
// envelope to the record (for example its ID, patient and category, in a
// canonical encoding chosen by the caller); the same aad must be given to
// [Open] and [OpenEpochEnvelope].
//
// SealRecord performs exactly one HPKE operation: the single hpke.Seal of the
// DEK to epochPub. Everything else is symmetric.
func SealRecord(plaintext, aad []byte, epochPub hpke.PublicKey) (*Sealed, error) {
	if err := checkPublic(epochPub); err != nil {
		return nil, err
	}
	dek := make([]byte, DEKSize)
	rand.Read(dek) // never returns an error; crashes the program on failure

	ct, err := encrypt(dek, plaintext, aad)
	if err != nil {
		return nil, err
	}
	commitment, err := Commit(plaintext, dek)
	if err != nil {
		return nil, err
	}
	// The one HPKE operation.
	env, err := hpkeWrap(epochPub, labelRecordKey, aad, dek)
	if err != nil {
		return nil, err
	}
	return &Sealed{
		Ciphertext:     ct,
		Commitment:     commitment,
		CiphertextHash: sha256.Sum256(ct),
		EpochEnvelope:  env,
		DEK:            dek,
	}, nil
}

// Open decrypts a ciphertext made by [SealRecord] with its DEK and aad.
// It does not check the commitment; readers should also call
// [CheckCommitment] against the ledger's value.
func Open(ciphertext, dek, aad []byte) ([]byte, error) {
	if len(dek) != DEKSize {
		return nil, fmt.Errorf("%w: data key is %d bytes, want %d", ErrMalformed, len(dek), DEKSize)
	}
	if len(ciphertext) < CiphertextOverhead {
		return nil, fmt.Errorf("%w: ciphertext is %d bytes, want at least %d", ErrMalformed, len(ciphertext), CiphertextOverhead)
	}
	if ciphertext[0] != Version {
		return nil, fmt.Errorf("%w: ciphertext version %d, want %d", ErrMalformed, ciphertext[0], Version)
	}
	aesKey, check, err := contentKeys(dek)
	if err != nil {
		return nil, err
	}
	nonce := ciphertext[1 : 1+nonceSize]
	gotCheck := ciphertext[1+nonceSize : 1+nonceSize+keyCheckSize]
	if subtle.ConstantTimeCompare(gotCheck, check) != 1 {
		return nil, ErrAuth
	}
	aead, err := newGCM(aesKey)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, ciphertext[1+nonceSize+keyCheckSize:], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

// Commit returns the commitment to plaintext under dek, as in
// [Sealed.Commitment]: HMAC-SHA256(HKDF-SHA256(dek, "medchain/commit/v1"), plaintext).
func Commit(plaintext, dek []byte) ([CommitmentSize]byte, error) {
	var out [CommitmentSize]byte
	if len(dek) != DEKSize {
		return out, fmt.Errorf("%w: data key is %d bytes, want %d", ErrMalformed, len(dek), DEKSize)
	}
	key, err := hkdf.Key(sha256.New, dek, nil, labelCommit, 32)
	if err != nil {
		return out, fmt.Errorf("%w: derive commitment key", ErrMalformed)
	}
	m := hmac.New(sha256.New, key)
	m.Write(plaintext)
	m.Sum(out[:0])
	clear(key)
	return out, nil
}

// CheckCommitment reports, in constant time, whether want is the commitment
// to plaintext under dek. A mismatch is [ErrAuth].
func CheckCommitment(plaintext, dek []byte, want [CommitmentSize]byte) error {
	got, err := Commit(plaintext, dek)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return ErrAuth
	}
	return nil
}

// OpenEpochEnvelope recovers a record's DEK from its epoch envelope with the
// epoch's private key and the record's aad.
func OpenEpochEnvelope(epochPriv hpke.PrivateKey, env, aad []byte) ([]byte, error) {
	if err := checkPrivate(epochPriv); err != nil {
		return nil, err
	}
	dek, err := hpkeUnwrap(epochPriv, labelRecordKey, aad, env, EpochEnvelopeSize)
	if err != nil {
		return nil, err
	}
	if len(dek) != DEKSize { // cannot happen for an authentic envelope
		return nil, ErrMalformed
	}
	return dek, nil
}

// EpochKey derives the HPKE key pair of one (patient, category, epoch). It is
// deterministic: the patient recomputes it instead of storing it. Authors
// seal record keys to its public half; grantees receive its private half from
// [WrapEpochKey].
//
// The input keying material is HKDF-SHA256 of the patient's HPKE private key
// with the info "medchain/epoch/v1" 0x00 | len(category) | category |
// epoch (8 bytes, big-endian), fed to the KEM's DeriveKeyPair.
func EpochKey(patient ident.Private, category string, epoch uint64) (hpke.PrivateKey, error) {
	if len(category) == 0 || len(category) > MaxCategoryLen {
		return nil, fmt.Errorf("%w: category must be 1 to %d bytes", ErrMalformed, MaxCategoryLen)
	}
	seed, err := boxSeed(patient)
	if err != nil {
		return nil, err
	}
	info := make([]byte, 0, len(labelEpoch)+2+len(category)+8)
	info = append(info, labelEpoch...)
	info = append(info, 0, byte(len(category)))
	info = append(info, category...)
	info = binary.BigEndian.AppendUint64(info, epoch)
	ikm, err := hkdf.Key(sha256.New, seed, nil, string(info), 32)
	if err != nil {
		return nil, fmt.Errorf("%w: derive epoch key", ErrMalformed)
	}
	defer clear(ikm)
	k, err := ident.KEM().DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("%w: derive epoch key pair", ErrMalformed)
	}
	return k, nil
}

// ParseEpochPublic decodes an epoch public key (hpke.PublicKey.Bytes) and
// checks that it belongs to the KEM medchain uses.
func ParseEpochPublic(b []byte) (hpke.PublicKey, error) {
	if len(b) != ident.BoxPublicSize {
		return nil, fmt.Errorf("%w: epoch public key is %d bytes, want %d", ErrMalformed, len(b), ident.BoxPublicSize)
	}
	k, err := ident.KEM().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch public key does not decode", ErrMalformed)
	}
	return k, nil
}

// WrapEpochKey seals an epoch's private key to a grantee: one HPKE operation
// per grantee per epoch. ctx must bind patient, category, epoch and grantee
// (in a canonical encoding chosen by the caller); [UnwrapEpochKey] needs the
// same ctx.
func WrapEpochKey(grantee hpke.PublicKey, epochPriv hpke.PrivateKey, ctx []byte) ([]byte, error) {
	if err := checkPublic(grantee); err != nil {
		return nil, err
	}
	if err := checkPrivate(epochPriv); err != nil {
		return nil, err
	}
	seed, err := epochPriv.Bytes()
	if err != nil || len(seed) != epochSeedSize {
		return nil, fmt.Errorf("%w: epoch private key does not encode", ErrMalformed)
	}
	return hpkeWrap(grantee, labelEpochKey, ctx, seed)
}

// UnwrapEpochKey opens a [WrapEpochKey] envelope with the grantee's private
// HPKE key and the same ctx.
func UnwrapEpochKey(grantee hpke.PrivateKey, env, ctx []byte) (hpke.PrivateKey, error) {
	if err := checkPrivate(grantee); err != nil {
		return nil, err
	}
	seed, err := hpkeUnwrap(grantee, labelEpochKey, ctx, env, EpochKeyEnvelopeSize)
	if err != nil {
		return nil, err
	}
	k, err := ident.KEM().NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: epoch private key does not decode", ErrMalformed)
	}
	return k, nil
}

// WrapForSelf wraps a DEK for its author, with no HPKE: AES-256-GCM under a
// key derived by HKDF-SHA256 from the author's HPKE private key, the info
// "medchain/self/v1", and a random 32-byte salt stored in the envelope. The
// salt gives every envelope its own key, so one identity can wrap any number
// of DEKs without the 2^32-message limit of random GCM nonces under one key.
func WrapForSelf(self ident.Private, dek, aad []byte) ([]byte, error) {
	if len(dek) != DEKSize {
		return nil, fmt.Errorf("%w: data key is %d bytes, want %d", ErrMalformed, len(dek), DEKSize)
	}
	env := make([]byte, 1+saltSize, SelfEnvelopeSize)
	env[0] = Version
	rand.Read(env[1:])
	aead, err := selfAEAD(self, env[1:1+saltSize])
	if err != nil {
		return nil, err
	}
	// The key is unique to this envelope, so a fixed nonce is safe.
	return aead.Seal(env, zeroNonce[:], dek, aad), nil
}

// UnwrapForSelf opens a [WrapForSelf] envelope.
func UnwrapForSelf(self ident.Private, env, aad []byte) ([]byte, error) {
	if len(env) != SelfEnvelopeSize {
		return nil, fmt.Errorf("%w: self envelope is %d bytes, want %d", ErrMalformed, len(env), SelfEnvelopeSize)
	}
	if env[0] != Version {
		return nil, fmt.Errorf("%w: self envelope version %d, want %d", ErrMalformed, env[0], Version)
	}
	aead, err := selfAEAD(self, env[1:1+saltSize])
	if err != nil {
		return nil, err
	}
	dek, err := aead.Open(nil, zeroNonce[:], env[1+saltSize:], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return dek, nil
}

var zeroNonce [nonceSize]byte

// encrypt produces the version-1 content ciphertext.
func encrypt(dek, plaintext, aad []byte) ([]byte, error) {
	aesKey, check, err := contentKeys(dek)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(aesKey)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize+keyCheckSize, CiphertextOverhead+len(plaintext))
	out[0] = Version
	rand.Read(out[1 : 1+nonceSize])
	copy(out[1+nonceSize:], check)
	return aead.Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

// contentKeys derives the AES-256 key and the public key check from a DEK.
func contentKeys(dek []byte) (aesKey, check []byte, err error) {
	k, err := hkdf.Key(sha256.New, dek, nil, labelContent, 32+keyCheckSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: derive content key", ErrMalformed)
	}
	return k[:32:32], k[32:], nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: content key", ErrMalformed)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: content key", ErrMalformed)
	}
	return aead, nil
}

func selfAEAD(self ident.Private, salt []byte) (cipher.AEAD, error) {
	seed, err := boxSeed(self)
	if err != nil {
		return nil, err
	}
	key, err := hkdf.Key(sha256.New, seed, salt, labelSelf, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: derive self key", ErrMalformed)
	}
	return newGCM(key)
}

// boxSeed returns the serialized HPKE private key of an identity.
//
// crypto/hpke's PrivateKey.Bytes returns the key's own seed slice, not a
// copy, and NewPrivateKey keeps the slice it is given: seal must never clear
// or modify such a slice, or it silently corrupts the caller's key.
func boxSeed(k ident.Private) ([]byte, error) {
	if err := checkPrivate(k.Box); err != nil {
		return nil, err
	}
	seed, err := k.Box.Bytes()
	if err != nil || len(seed) == 0 {
		return nil, fmt.Errorf("%w: identity HPKE key does not encode", ErrMalformed)
	}
	return seed, nil
}

// hpkeInfo is label | 0x00 | SHA-256(binding): fixed-length, unambiguous,
// and independent of the binding's size.
func hpkeInfo(label string, binding []byte) []byte {
	sum := sha256.Sum256(binding)
	info := make([]byte, 0, len(label)+1+len(sum))
	info = append(info, label...)
	info = append(info, 0)
	return append(info, sum[:]...)
}

// hpkeWrap is the only place seal performs an HPKE seal.
func hpkeWrap(pub hpke.PublicKey, label string, binding, secret []byte) ([]byte, error) {
	ct, err := hpke.Seal(pub, hpkeKDF, hpkeAEAD, hpkeInfo(label, binding), secret)
	if err != nil {
		return nil, fmt.Errorf("%w: hpke seal failed", ErrMalformed)
	}
	env := make([]byte, 0, 1+len(ct))
	return append(append(env, Version), ct...), nil
}

func hpkeUnwrap(priv hpke.PrivateKey, label string, binding, env []byte, size int) ([]byte, error) {
	if len(env) != size {
		return nil, fmt.Errorf("%w: envelope is %d bytes, want %d", ErrMalformed, len(env), size)
	}
	if env[0] != Version {
		return nil, fmt.Errorf("%w: envelope version %d, want %d", ErrMalformed, env[0], Version)
	}
	pt, err := hpke.Open(priv, hpkeKDF, hpkeAEAD, hpkeInfo(label, binding), env[1:])
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

func checkPublic(k hpke.PublicKey) error {
	if k == nil {
		return fmt.Errorf("%w: missing HPKE public key", ErrMalformed)
	}
	if k.KEM().ID() != ident.KEM().ID() {
		return fmt.Errorf("%w: HPKE public key has KEM %#04x, want %#04x", ErrMalformed, k.KEM().ID(), ident.KEM().ID())
	}
	return nil
}

func checkPrivate(k hpke.PrivateKey) error {
	if k == nil {
		return fmt.Errorf("%w: missing HPKE private key", ErrMalformed)
	}
	if k.KEM().ID() != ident.KEM().ID() {
		return fmt.Errorf("%w: HPKE private key has KEM %#04x, want %#04x", ErrMalformed, k.KEM().ID(), ident.KEM().ID())
	}
	return nil
}

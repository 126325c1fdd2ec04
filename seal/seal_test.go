package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"testing/quick"

	"github.com/medchain/medchain/ident"
)

func mustEpoch(t testing.TB, p ident.Private, cat string, epoch uint64) hpke.PrivateKey {
	t.Helper()
	k, err := EpochKey(p, cat, epoch)
	if err != nil {
		t.Fatalf("EpochKey(%q, %d): %v", cat, epoch, err)
	}
	return k
}

func TestSizes(t *testing.T) {
	patient := testIdentity(t, "patient")
	ek := mustEpoch(t, patient, "lab", 1)
	if n := len(ek.PublicKey().Bytes()); n != ident.BoxPublicSize {
		t.Errorf("epoch public key is %d bytes, want %d", n, ident.BoxPublicSize)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		s, err := SealRecord(make([]byte, n), []byte("aad"), ek.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Ciphertext) != n+CiphertextOverhead {
			t.Errorf("plaintext %d: ciphertext %d bytes, want %d", n, len(s.Ciphertext), n+CiphertextOverhead)
		}
		// One HPKE operation per record: the envelope is a single
		// encapsulation plus one sealed DEK.
		if len(s.EpochEnvelope) != EpochEnvelopeSize {
			t.Errorf("epoch envelope %d bytes, want %d", len(s.EpochEnvelope), EpochEnvelopeSize)
		}
		if len(s.DEK) != DEKSize || s.Ciphertext[0] != Version || s.EpochEnvelope[0] != Version {
			t.Errorf("bad DEK size or version byte")
		}
		if s.CiphertextHash != sha256.Sum256(s.Ciphertext) {
			t.Errorf("CiphertextHash is not sha256(Ciphertext)")
		}
		self, err := WrapForSelf(patient, s.DEK, nil)
		if err != nil || len(self) != SelfEnvelopeSize {
			t.Errorf("self envelope %d bytes, %v; want %d", len(self), err, SelfEnvelopeSize)
		}
	}
	env, err := WrapEpochKey(testIdentity(t, "grantee").Box.PublicKey(), ek, nil)
	if err != nil || len(env) != EpochKeyEnvelopeSize {
		t.Errorf("epoch key envelope %d bytes, %v; want %d", len(env), err, EpochKeyEnvelopeSize)
	}
}

// TestFlow walks the whole hierarchy: an author seals to the patient's epoch
// key and keeps a self copy; the patient and a grantee (who got the epoch key
// once) read; everyone checks the commitment.
func TestFlow(t *testing.T) {
	patient := testIdentity(t, "patient")
	author := testIdentity(t, "author")
	grantee := testIdentity(t, "grantee")
	aad := []byte("rec-1|patient|lab")
	plaintext := []byte("potassium 4.1 mmol/L")

	epoch := mustEpoch(t, patient, "lab", 7)
	// The author only ever sees the public half.
	pub, err := ParseEpochPublic(epoch.PublicKey().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s, err := SealRecord(plaintext, aad, pub)
	if err != nil {
		t.Fatal(err)
	}
	self, err := WrapForSelf(author, s.DEK, aad)
	if err != nil {
		t.Fatal(err)
	}

	read := func(who string, dek []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: unwrap: %v", who, err)
		}
		pt, err := Open(s.Ciphertext, dek, aad)
		if err != nil || !bytes.Equal(pt, plaintext) {
			t.Fatalf("%s: Open = %q, %v", who, pt, err)
		}
		if err := CheckCommitment(pt, dek, s.Commitment); err != nil {
			t.Fatalf("%s: CheckCommitment: %v", who, err)
		}
	}
	// Author reads back without the epoch key.
	dek, err := UnwrapForSelf(author, self, aad)
	read("author", dek, err)
	// Patient re-derives the epoch key.
	dek, err = OpenEpochEnvelope(mustEpoch(t, patient, "lab", 7), s.EpochEnvelope, aad)
	read("patient", dek, err)
	// Grantee gets the epoch key once, then opens any record of the epoch.
	ctx := []byte("patient|lab|7|grantee")
	env, err := WrapEpochKey(grantee.Box.PublicKey(), epoch, ctx)
	if err != nil {
		t.Fatal(err)
	}
	gk, err := UnwrapEpochKey(grantee.Box, env, ctx)
	if err != nil {
		t.Fatal(err)
	}
	dek, err = OpenEpochEnvelope(gk, s.EpochEnvelope, aad)
	read("grantee", dek, err)
}

func TestEpochKeyDerivation(t *testing.T) {
	patient := testIdentity(t, "patient")
	other := testIdentity(t, "other")
	seen := map[string]string{}
	add := func(name string, k hpke.PrivateKey) {
		pk := string(k.PublicKey().Bytes())
		if prev, ok := seen[pk]; ok {
			t.Errorf("%s and %s derive the same epoch key", prev, name)
		}
		seen[pk] = name
	}
	add("lab/0", mustEpoch(t, patient, "lab", 0))
	add("lab/1", mustEpoch(t, patient, "lab", 1))
	add("labs/0", mustEpoch(t, patient, "labs", 0))
	add("la/0", mustEpoch(t, patient, "la", 0))
	add("lab/max", mustEpoch(t, patient, "lab", ^uint64(0)))
	add("imaging/0", mustEpoch(t, patient, "imaging", 0))
	add("other lab/0", mustEpoch(t, other, "lab", 0))
	// Epoch keys never equal the identity's own key.
	seen[string(patient.Box.PublicKey().Bytes())] = "identity"
	add("lab/2", mustEpoch(t, patient, "lab", 2))

	// Matches the documented construction, computed independently here.
	seed, _ := patient.Box.Bytes()
	info := append([]byte("medchain/epoch/v1\x00\x03lab"), 0, 0, 0, 0, 0, 0, 0, 5)
	ikm, err := hkdf.Key(sha256.New, seed, nil, string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ident.KEM().DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want.PublicKey().Bytes(), mustEpoch(t, patient, "lab", 5).PublicKey().Bytes()) {
		t.Error("EpochKey does not follow its documented derivation")
	}

	// Deterministic.
	a, b := mustEpoch(t, patient, "lab", 3), mustEpoch(t, patient, "lab", 3)
	if !bytes.Equal(a.PublicKey().Bytes(), b.PublicKey().Bytes()) {
		t.Error("EpochKey is not deterministic")
	}

	for _, cat := range []string{"", strings.Repeat("x", MaxCategoryLen+1)} {
		if _, err := EpochKey(patient, cat, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("EpochKey(category of %d bytes) = %v, want ErrMalformed", len(cat), err)
		}
	}
	if _, err := EpochKey(patient, strings.Repeat("x", MaxCategoryLen), 0); err != nil {
		t.Errorf("EpochKey(max category): %v", err)
	}
	if _, err := EpochKey(ident.Private{}, "lab", 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("EpochKey(zero identity) = %v, want ErrMalformed", err)
	}
}

func TestWrongKeysFail(t *testing.T) {
	patient := testIdentity(t, "patient")
	author := testIdentity(t, "author")
	grantee := testIdentity(t, "grantee")
	aad := []byte("rec-1|patient|lab")
	ek := mustEpoch(t, patient, "lab", 1)
	s, err := SealRecord([]byte("hello"), aad, ek.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SealRecord([]byte("hello"), []byte("rec-2|patient|lab"), ek.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	self, err := WrapForSelf(author, s.DEK, aad)
	if err != nil {
		t.Fatal(err)
	}
	ctx := []byte("patient|lab|1|grantee")
	grant, err := WrapEpochKey(grantee.Box.PublicKey(), ek, ctx)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    func() error
	}{
		{"Open wrong aad", func() error { _, err := Open(s.Ciphertext, s.DEK, []byte("rec-2|patient|lab")); return err }},
		{"Open nil aad", func() error { _, err := Open(s.Ciphertext, s.DEK, nil); return err }},
		{"Open wrong DEK", func() error { _, err := Open(s.Ciphertext, s2.DEK, aad); return err }},
		{"Open zero DEK", func() error { _, err := Open(s.Ciphertext, make([]byte, DEKSize), aad); return err }},
		{"envelope wrong aad (moved to another record)", func() error {
			_, err := OpenEpochEnvelope(ek, s.EpochEnvelope, []byte("rec-2|patient|lab"))
			return err
		}},
		{"envelope wrong epoch", func() error {
			_, err := OpenEpochEnvelope(mustEpoch(t, patient, "lab", 2), s.EpochEnvelope, aad)
			return err
		}},
		{"envelope wrong category", func() error {
			_, err := OpenEpochEnvelope(mustEpoch(t, patient, "imaging", 1), s.EpochEnvelope, aad)
			return err
		}},
		{"envelope wrong patient", func() error {
			_, err := OpenEpochEnvelope(mustEpoch(t, author, "lab", 1), s.EpochEnvelope, aad)
			return err
		}},
		{"envelope with identity key instead of epoch key", func() error {
			_, err := OpenEpochEnvelope(patient.Box, s.EpochEnvelope, aad)
			return err
		}},
		{"self wrong identity", func() error { _, err := UnwrapForSelf(patient, self, aad); return err }},
		{"self wrong aad", func() error { _, err := UnwrapForSelf(author, self, []byte("x")); return err }},
		{"grant wrong grantee", func() error { _, err := UnwrapEpochKey(author.Box, grant, ctx); return err }},
		{"grant wrong ctx", func() error {
			_, err := UnwrapEpochKey(grantee.Box, grant, []byte("patient|lab|2|grantee"))
			return err
		}},
		{"grant envelope used as record envelope", func() error { _, err := OpenEpochEnvelope(grantee.Box, grant, ctx); return err }},
		{"record envelope used as grant", func() error { _, err := UnwrapEpochKey(ek, s.EpochEnvelope, aad); return err }},
		{"commitment wrong plaintext", func() error { return CheckCommitment([]byte("hellO"), s.DEK, s.Commitment) }},
		{"commitment wrong DEK", func() error { return CheckCommitment([]byte("hello"), s2.DEK, s.Commitment) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f(); !errors.Is(err, ErrAuth) {
				t.Errorf("got %v, want ErrAuth", err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	patient := testIdentity(t, "patient")
	ek := mustEpoch(t, patient, "lab", 1)
	s, err := SealRecord([]byte("hello"), nil, ek.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	withVersion := func(b []byte, v byte) []byte { c := bytes.Clone(b); c[0] = v; return c }

	tests := []struct {
		name string
		f    func() error
	}{
		{"SealRecord nil key", func() error { _, err := SealRecord(nil, nil, nil); return err }},
		{"SealRecord X25519 key", func() error { _, err := SealRecord(nil, nil, x25519.PublicKey()); return err }},
		{"Open short DEK", func() error { _, err := Open(s.Ciphertext, s.DEK[:31], nil); return err }},
		{"Open nil DEK", func() error { _, err := Open(s.Ciphertext, nil, nil); return err }},
		{"Open empty", func() error { _, err := Open(nil, s.DEK, nil); return err }},
		{"Open truncated", func() error { _, err := Open(s.Ciphertext[:CiphertextOverhead-1], s.DEK, nil); return err }},
		{"Open version 0", func() error { _, err := Open(withVersion(s.Ciphertext, 0), s.DEK, nil); return err }},
		{"Open version 2", func() error { _, err := Open(withVersion(s.Ciphertext, 2), s.DEK, nil); return err }},
		{"Commit short DEK", func() error { _, err := Commit(nil, make([]byte, 16)); return err }},
		{"CheckCommitment short DEK", func() error { return CheckCommitment(nil, nil, [32]byte{}) }},
		{"OpenEpochEnvelope nil key", func() error { _, err := OpenEpochEnvelope(nil, s.EpochEnvelope, nil); return err }},
		{"OpenEpochEnvelope X25519 key", func() error { _, err := OpenEpochEnvelope(x25519, s.EpochEnvelope, nil); return err }},
		{"OpenEpochEnvelope short", func() error { _, err := OpenEpochEnvelope(ek, s.EpochEnvelope[:100], nil); return err }},
		{"OpenEpochEnvelope long", func() error {
			_, err := OpenEpochEnvelope(ek, append(bytes.Clone(s.EpochEnvelope), 0), nil)
			return err
		}},
		{"OpenEpochEnvelope version", func() error { _, err := OpenEpochEnvelope(ek, withVersion(s.EpochEnvelope, 9), nil); return err }},
		{"WrapForSelf short DEK", func() error { _, err := WrapForSelf(patient, []byte("k"), nil); return err }},
		{"WrapForSelf zero identity", func() error { _, err := WrapForSelf(ident.Private{}, s.DEK, nil); return err }},
		{"UnwrapForSelf zero identity", func() error {
			_, err := UnwrapForSelf(ident.Private{}, make([]byte, SelfEnvelopeSize), nil)
			return err
		}},
		{"UnwrapForSelf short", func() error { _, err := UnwrapForSelf(patient, make([]byte, 10), nil); return err }},
		{"UnwrapForSelf version", func() error { _, err := UnwrapForSelf(patient, make([]byte, SelfEnvelopeSize), nil); return err }},
		{"WrapEpochKey nil grantee", func() error { _, err := WrapEpochKey(nil, ek, nil); return err }},
		{"WrapEpochKey nil epoch key", func() error { _, err := WrapEpochKey(ek.PublicKey(), nil, nil); return err }},
		{"WrapEpochKey X25519 grantee", func() error { _, err := WrapEpochKey(x25519.PublicKey(), ek, nil); return err }},
		{"WrapEpochKey X25519 epoch key", func() error { _, err := WrapEpochKey(ek.PublicKey(), x25519, nil); return err }},
		{"UnwrapEpochKey nil key", func() error { _, err := UnwrapEpochKey(nil, s.EpochEnvelope, nil); return err }},
		{"UnwrapEpochKey empty", func() error { _, err := UnwrapEpochKey(ek, nil, nil); return err }},
		{"ParseEpochPublic short", func() error { _, err := ParseEpochPublic(make([]byte, 32)); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f(); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want ErrMalformed", err)
			}
		})
	}
}

// TestTamper flips one bit in every byte of each sealed artifact. Every
// change must fail: ErrMalformed for the version byte, ErrAuth elsewhere.
func TestTamper(t *testing.T) {
	patient := testIdentity(t, "patient")
	grantee := testIdentity(t, "grantee")
	aad := []byte("rec-1|patient|lab")
	ek := mustEpoch(t, patient, "lab", 1)
	s, err := SealRecord([]byte("glucose 5.4 mmol/L, fasting"), aad, ek.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	self, err := WrapForSelf(patient, s.DEK, aad)
	if err != nil {
		t.Fatal(err)
	}
	grant, err := WrapEpochKey(grantee.Box.PublicKey(), ek, aad)
	if err != nil {
		t.Fatal(err)
	}
	artifacts := []struct {
		name string
		b    []byte
		open func([]byte) error
	}{
		{"ciphertext", s.Ciphertext, func(b []byte) error { _, err := Open(b, s.DEK, aad); return err }},
		{"epoch envelope", s.EpochEnvelope, func(b []byte) error { _, err := OpenEpochEnvelope(ek, b, aad); return err }},
		{"self envelope", self, func(b []byte) error { _, err := UnwrapForSelf(patient, b, aad); return err }},
		{"epoch key envelope", grant, func(b []byte) error { _, err := UnwrapEpochKey(grantee.Box, b, aad); return err }},
	}
	for _, a := range artifacts {
		if err := a.open(a.b); err != nil {
			t.Fatalf("%s: untampered open failed: %v", a.name, err)
		}
		if testing.Short() && len(a.b) > 200 {
			continue
		}
		for i := range a.b {
			c := bytes.Clone(a.b)
			c[i] ^= 1 << (i % 8)
			err := a.open(c)
			want := ErrAuth
			if i == 0 {
				want = ErrMalformed
			}
			if !errors.Is(err, want) {
				t.Fatalf("%s: flipping byte %d: got %v, want %v", a.name, i, err, want)
			}
		}
		for n := range len(a.b) {
			if err := a.open(a.b[:n]); !isSealErr(err) {
				t.Fatalf("%s: truncated to %d: got %v", a.name, n, err)
			}
		}
	}
}

// TestCiphertextSwap: an envelope that delivers another record's DEK can not
// make a ciphertext open (the key check makes the content cipher
// key-committing).
func TestCiphertextSwap(t *testing.T) {
	ek := mustEpoch(t, testIdentity(t, "patient"), "lab", 1)
	a, _ := SealRecord([]byte("a"), []byte("r"), ek.PublicKey())
	b, _ := SealRecord([]byte("a"), []byte("r"), ek.PublicKey())
	if _, err := Open(a.Ciphertext, b.DEK, []byte("r")); !errors.Is(err, ErrAuth) {
		t.Fatalf("got %v, want ErrAuth", err)
	}
}

// TestCommitmentHiding: the commitment depends on the DEK, so equal
// plaintexts under different records commit differently and a small
// plaintext space ("positive"/"negative") cannot be enumerated from the
// ledger by hashing candidates.
func TestCommitmentHiding(t *testing.T) {
	ek := mustEpoch(t, testIdentity(t, "patient"), "lab", 1)
	pt := []byte("positive")
	seen := map[[32]byte]bool{}
	for range 20 {
		s, err := SealRecord(pt, []byte("r"), ek.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if seen[s.Commitment] {
			t.Fatal("two records with the same plaintext share a commitment")
		}
		seen[s.Commitment] = true
		for _, guess := range [][]byte{[]byte("positive"), []byte("negative")} {
			if s.Commitment == sha256.Sum256(guess) {
				t.Fatal("commitment is a plain hash of the plaintext")
			}
		}
		if err := CheckCommitment(pt, s.DEK, s.Commitment); err != nil {
			t.Fatal(err)
		}
		if err := CheckCommitment([]byte("negative"), s.DEK, s.Commitment); !errors.Is(err, ErrAuth) {
			t.Fatalf("wrong plaintext: %v", err)
		}
	}
}

// TestRandomizedSealing: sealing the same input twice gives different
// ciphertexts, envelopes and DEKs.
func TestRandomizedSealing(t *testing.T) {
	patient := testIdentity(t, "patient")
	ek := mustEpoch(t, patient, "lab", 1)
	a, _ := SealRecord([]byte("x"), nil, ek.PublicKey())
	b, _ := SealRecord([]byte("x"), nil, ek.PublicKey())
	if bytes.Equal(a.DEK, b.DEK) || bytes.Equal(a.Ciphertext, b.Ciphertext) || bytes.Equal(a.EpochEnvelope, b.EpochEnvelope) {
		t.Error("sealing is not randomized")
	}
	sa, _ := WrapForSelf(patient, a.DEK, nil)
	sb, _ := WrapForSelf(patient, a.DEK, nil)
	if bytes.Equal(sa, sb) {
		t.Error("self wrapping is not randomized")
	}
}

// TestErrorsLeakNothing: error strings never contain key bytes or plaintext.
func TestErrorsLeakNothing(t *testing.T) {
	patient := testIdentity(t, "patient")
	ek := mustEpoch(t, patient, "lab", 1)
	secret := []byte("SECRET-DIAGNOSIS")
	s, _ := SealRecord(secret, []byte("aad"), ek.PublicKey())
	seed, _ := patient.Box.Bytes()
	errs := []error{}
	_, err := Open(s.Ciphertext, s.DEK, []byte("bad"))
	errs = append(errs, err)
	_, err = Open(s.Ciphertext, s.DEK[:5], nil)
	errs = append(errs, err)
	_, err = OpenEpochEnvelope(ek, s.EpochEnvelope[:5], nil)
	errs = append(errs, err)
	errs = append(errs, CheckCommitment([]byte("x"), s.DEK, s.Commitment))
	for _, err := range errs {
		msg := err.Error()
		for _, b := range [][]byte{secret, s.DEK, s.DEK[:5], seed} {
			if strings.Contains(msg, string(b)) || strings.Contains(strings.ToLower(msg), strings.ToLower(string(b))) ||
				strings.Contains(msg, hexString(b)) {
				t.Errorf("error %q leaks secret bytes", msg)
			}
		}
	}
}

func hexString(b []byte) string { return new(big.Int).SetBytes(b).Text(16) }

// Property: Open inverts SealRecord for any plaintext and aad, and the
// epoch envelope yields the DEK.
func TestQuickRoundTrip(t *testing.T) {
	ek := mustEpoch(t, testIdentity(t, "patient"), "lab", 1)
	f := func(plaintext, aad []byte) bool {
		s, err := SealRecord(plaintext, aad, ek.PublicKey())
		if err != nil {
			return false
		}
		dek, err := OpenEpochEnvelope(ek, s.EpochEnvelope, aad)
		if err != nil || !bytes.Equal(dek, s.DEK) {
			return false
		}
		pt, err := Open(s.Ciphertext, dek, aad)
		return err == nil && bytes.Equal(pt, plaintext) && CheckCommitment(pt, dek, s.Commitment) == nil
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 50}); err != nil {
		t.Error(err)
	}
}

// Property: self wrapping round-trips and any other aad fails.
func TestQuickSelf(t *testing.T) {
	self := testIdentity(t, "author")
	f := func(dek [DEKSize]byte, aad, other []byte) bool {
		env, err := WrapForSelf(self, dek[:], aad)
		if err != nil {
			return false
		}
		got, err := UnwrapForSelf(self, env, aad)
		if err != nil || !bytes.Equal(got, dek[:]) {
			return false
		}
		_, err = UnwrapForSelf(self, env, other)
		return bytes.Equal(aad, other) || errors.Is(err, ErrAuth)
	}
	if err := quick.Check(f, nil); err != nil {
		t.Error(err)
	}
}

// Property: random multi-byte corruption of a ciphertext never opens and
// never panics.
func TestRandomCorruption(t *testing.T) {
	ek := mustEpoch(t, testIdentity(t, "patient"), "lab", 1)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 300 {
		pt := make([]byte, r.IntN(300))
		rand.Read(pt)
		s, err := SealRecord(pt, []byte{byte(i)}, ek.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		c := bytes.Clone(s.Ciphertext)
		for range 1 + r.IntN(4) {
			c[r.IntN(len(c))] ^= byte(1 + r.IntN(255))
		}
		if _, err := Open(c, s.DEK, []byte{byte(i)}); !isSealErr(err) {
			t.Fatalf("iteration %d: corrupted ciphertext: %v", i, err)
		}
	}
}

// Property: wrapped epoch keys round-trip for arbitrary contexts.
func TestQuickEpochKeyWrap(t *testing.T) {
	patient := testIdentity(t, "patient")
	grantee := testIdentity(t, "grantee")
	f := func(cat uint8, epoch uint64, ctx []byte) bool {
		ek, err := EpochKey(patient, string(rune('a'+cat%26)), epoch)
		if err != nil {
			return false
		}
		env, err := WrapEpochKey(grantee.Box.PublicKey(), ek, ctx)
		if err != nil {
			return false
		}
		got, err := UnwrapEpochKey(grantee.Box, env, ctx)
		return err == nil && bytes.Equal(got.PublicKey().Bytes(), ek.PublicKey().Bytes())
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 30}); err != nil {
		t.Error(err)
	}
}

// TestKeysUnchanged guards against wiping key material seal does not own:
// crypto/hpke's PrivateKey.Bytes returns the key's internal seed, so zeroing
// it "for hygiene" would corrupt the caller's identity and epoch keys.
func TestKeysUnchanged(t *testing.T) {
	patient := testIdentity(t, "patient")
	grantee := testIdentity(t, "grantee")
	before, _ := patient.Box.Bytes()
	before = bytes.Clone(before)
	ek := mustEpoch(t, patient, "lab", 1)
	ekBefore, _ := ek.Bytes()
	ekBefore = bytes.Clone(ekBefore)

	s, _ := SealRecord([]byte("x"), nil, ek.PublicKey())
	env, _ := WrapForSelf(patient, s.DEK, nil)
	if _, err := UnwrapForSelf(patient, env, nil); err != nil {
		t.Fatal(err)
	}
	grant, _ := WrapEpochKey(grantee.Box.PublicKey(), ek, nil)
	gk, err := UnwrapEpochKey(grantee.Box, grant, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustEpoch(t, patient, "lab", 2)

	after, _ := patient.Box.Bytes()
	ekAfter, _ := ek.Bytes()
	gkBytes, _ := gk.Bytes()
	if !bytes.Equal(before, after) || !bytes.Equal(ekBefore, ekAfter) || !bytes.Equal(gkBytes, ekBefore) {
		t.Fatal("seal modified key material it does not own")
	}
}

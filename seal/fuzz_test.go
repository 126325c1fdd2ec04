package seal

import (
	"bytes"
	"testing"
)

// The fuzz targets check that hostile input never panics and only ever
// yields one of the package's sentinel errors. Seeds come from the golden
// vectors so they are deterministic.
//
// Most mutated envelopes have the wrong length and stop at the size check, so
// the HPKE targets also XOR the fuzz input into a valid envelope: that keeps
// the size right and drives every input through decapsulation and the AEAD.
//
// Note: while a worker is inside HPKE-heavy inputs, "go test -fuzz" may print
// "execs: N (0/sec)" for seconds at a time; the worker is running, only its
// progress report is late (golang/go#51484).

// overlay returns a copy of valid with fuzz XORed into it.
func overlay(valid, fuzz []byte) []byte {
	c := bytes.Clone(valid)
	for i, b := range fuzz {
		c[i%len(c)] ^= b
	}
	return c
}

// checkErr fails on any error that is not a seal sentinel.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !isSealErr(err) {
		t.Fatalf("unexpected error type: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	g := loadGolden(f)
	for _, r := range g.Records {
		f.Add([]byte(r.Ciphertext), []byte(r.DEK), []byte(r.AAD)) // valid record: must open
	}
	r := g.Records[1]
	f.Add([]byte(r.Ciphertext[:CiphertextOverhead-1]), []byte(r.DEK), []byte(r.AAD)) // one byte short of the minimum
	f.Add([]byte(r.Ciphertext[:CiphertextOverhead]), []byte(r.DEK), []byte(r.AAD))   // minimum size, wrong tag
	f.Add(append([]byte{2}, r.Ciphertext[1:]...), []byte(r.DEK), []byte(r.AAD))      // unknown version
	f.Add([]byte(r.Ciphertext), []byte(r.DEK[:16]), []byte(r.AAD))                   // short DEK
	f.Add([]byte(r.Ciphertext), make([]byte, DEKSize), []byte(r.AAD))                // wrong DEK
	f.Add([]byte{}, []byte{}, []byte{})                                              // empty everything
	f.Fuzz(func(t *testing.T, ct, dek, aad []byte) {
		pt, err := Open(ct, dek, aad)
		if err != nil {
			if !isSealErr(err) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		// Only an authentic ciphertext opens; then so must its re-encryption.
		if len(ct) != len(pt)+CiphertextOverhead {
			t.Fatalf("opened %d-byte ciphertext to %d bytes", len(ct), len(pt))
		}
		ct2, err := encrypt(dek, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if pt2, err := Open(ct2, dek, aad); err != nil || !bytes.Equal(pt, pt2) {
			t.Fatalf("re-encryption does not round-trip: %v", err)
		}
	})
}

func FuzzOpenEpochEnvelope(f *testing.F) {
	g := loadGolden(f)
	patient := testIdentity(f, g.Patient)
	for _, r := range g.Records {
		if r.Category == "lab" && r.Epoch == 1 {
			f.Add([]byte(r.EpochEnvelope), []byte(r.AAD)) // valid envelope for the fuzzed epoch key: must open
			f.Add([]byte(r.EpochEnvelope), []byte("other record"))
		}
	}
	env := g.Records[0].EpochEnvelope
	f.Add([]byte(env), []byte(g.Records[0].AAD))                             // envelope sealed to another epoch
	f.Add([]byte(env[:EpochEnvelopeSize-1]), []byte{})                       // one byte short
	f.Add(make([]byte, EpochEnvelopeSize), []byte{})                         // right size, version 0, all zero
	f.Add(append([]byte{1}, make([]byte, EpochEnvelopeSize-1)...), []byte{}) // right size and version, zero KEM shares
	f.Add([]byte{}, []byte{})                                                // empty
	ek, err := EpochKey(patient, "lab", 1)
	if err != nil {
		f.Fatal(err)
	}
	valid := g.Records[1].EpochEnvelope
	f.Fuzz(func(t *testing.T, env, aad []byte) {
		_, err := OpenEpochEnvelope(ek, overlay(valid, env), aad)
		checkErr(t, err)
		dek, err := OpenEpochEnvelope(ek, env, aad)
		if err != nil {
			if !isSealErr(err) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if len(dek) != DEKSize {
			t.Fatalf("opened a %d-byte DEK", len(dek))
		}
	})
}

func FuzzUnwrapEpochKey(f *testing.F) {
	g := loadGolden(f)
	grantee := testIdentity(f, g.Grantee)
	for _, gr := range g.Grants {
		f.Add([]byte(gr.Envelope), []byte(gr.Ctx))          // valid grant: must unwrap
		f.Add([]byte(gr.Envelope), []byte("wrong context")) // wrong ctx
	}
	env := g.Grants[0].Envelope
	f.Add(append([]byte{7}, env[1:]...), []byte(g.Grants[0].Ctx))       // unknown version
	f.Add([]byte(env[:100]), []byte{})                                  // truncated
	f.Add([]byte(g.Records[0].EpochEnvelope), []byte(g.Records[0].AAD)) // a record envelope: other domain label
	f.Add([]byte{}, []byte{})                                           // empty
	valid := g.Grants[0].Envelope
	f.Fuzz(func(t *testing.T, env, ctx []byte) {
		_, err := UnwrapEpochKey(grantee.Box, overlay(valid, env), ctx)
		checkErr(t, err)
		k, err := UnwrapEpochKey(grantee.Box, env, ctx)
		if err != nil {
			if !isSealErr(err) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if k == nil || k.KEM().ID() != grantee.Box.KEM().ID() {
			t.Fatal("unwrapped a key of the wrong type")
		}
	})
}

// FuzzParseEpochPublic: epoch public keys come from patients' transactions.
// No input panics, and an accepted key is exactly the bytes given, so a
// grantee wraps to the key the ledger shows. The fuzz input is also XORed
// into a valid key, which keeps the size right and drives it through the
// KEM's own checks.
func FuzzParseEpochPublic(f *testing.F) {
	valid := testIdentity(f, "epoch").Public().Box
	f.Add([]byte{}, false)
	f.Add([]byte{1}, true)
	f.Add(valid, false)
	f.Fuzz(func(t *testing.T, in []byte, over bool) {
		if over && len(in) > 0 {
			in = overlay(valid, in)
		}
		k, err := ParseEpochPublic(in)
		checkErr(t, err)
		if err == nil && !bytes.Equal(k.Bytes(), in) {
			t.Fatal("an accepted key encodes to other bytes")
		}
	})
}

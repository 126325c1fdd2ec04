package seal

import (
	"bytes"
	"testing"
)

// FuzzUnwrapForSelf feeds an author's self envelope (WrapForSelf) arbitrary
// bytes and AAD. It must never panic, fail only with a seal sentinel, and
// open only the authentic envelope under its own AAD. As in the HPKE
// targets, the input is also XORed into a valid envelope, so that most runs
// get past the size check and reach the AEAD.
func FuzzUnwrapForSelf(f *testing.F) {
	g := loadGolden(f)
	author := testIdentity(f, g.Author)
	for _, r := range g.Records {
		f.Add([]byte(r.SelfEnvelope), []byte(r.AAD)) // valid golden self envelope: must open to its DEK
	}
	r := g.Records[0]
	env := []byte(r.SelfEnvelope)
	f.Add(env, []byte("another record"))                                          // right envelope, wrong AAD
	f.Add(env[:SelfEnvelopeSize-1], []byte(r.AAD))                                // one byte short
	f.Add(append(bytes.Clone(env), 0), []byte(r.AAD))                             // one byte long
	f.Add(append([]byte{Version + 1}, env[1:]...), []byte(r.AAD))                 // unknown version
	f.Add(make([]byte, SelfEnvelopeSize), []byte{})                               // right size, version 0
	f.Add(append([]byte{Version}, make([]byte, SelfEnvelopeSize-1)...), []byte{}) // right version, zero salt and tag
	f.Add([]byte(g.Records[0].EpochEnvelope), []byte(r.AAD))                      // an epoch envelope in its place
	f.Add([]byte{}, []byte{})                                                     // empty
	valid := bytes.Clone(env)
	want := map[string][]byte{}
	for _, r := range g.Records {
		want[string(r.SelfEnvelope)+"\x00"+string(r.AAD)] = r.DEK
	}
	f.Fuzz(func(t *testing.T, env, aad []byte) {
		_, err := UnwrapForSelf(author, overlay(valid, env), aad)
		checkErr(t, err)
		dek, err := UnwrapForSelf(author, env, aad)
		if err != nil {
			if !isSealErr(err) {
				t.Fatalf("unexpected error type: %v", err)
			}
			if dek != nil {
				t.Fatal("a DEK returned with an error")
			}
			return
		}
		if len(dek) != DEKSize {
			t.Fatalf("opened a %d-byte DEK", len(dek))
		}
		if w, ok := want[string(env)+"\x00"+string(aad)]; ok && !bytes.Equal(w, dek) {
			t.Fatal("golden envelope opened to the wrong DEK")
		}
		// Anything that opens must be authentic: a re-wrap round-trips.
		env2, err := WrapForSelf(author, dek, aad)
		if err != nil {
			t.Fatal(err)
		}
		if d2, err := UnwrapForSelf(author, env2, aad); err != nil || !bytes.Equal(d2, dek) {
			t.Fatalf("re-wrap does not round-trip: %v", err)
		}
	})
}

package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"runtime"
	"testing"
)

func TestSignVerify(t *testing.T) {
	admin, other := testKey(t, "admin"), testKey(t, "other")
	tests := []struct {
		name    string
		mutate  func(x *Tx) // applied after signing by admin
		chainID string
		pub     ed25519.PublicKey
		wantErr bool
	}{
		{name: "valid", chainID: testChain, pub: admin.Public().Sign},
		{name: "other chain ID", chainID: "medchain-other", pub: admin.Public().Sign, wantErr: true},
		{name: "chain ID as prefix", chainID: testChain + "x", pub: admin.Public().Sign, wantErr: true},
		{name: "empty chain ID", chainID: "", pub: admin.Public().Sign, wantErr: true},
		{
			name:    "re-signed by another key, checked against it",
			mutate:  func(x *Tx) { _ = x.Sign(testChain, other.Sign) },
			chainID: testChain, pub: other.Public().Sign, wantErr: true, // key does not belong to signer
		},
		{
			name:    "re-signed by another key, checked against signer's",
			mutate:  func(x *Tx) { _ = x.Sign(testChain, other.Sign) },
			chainID: testChain, pub: admin.Public().Sign, wantErr: true,
		},
		{name: "nonce raised", mutate: func(x *Tx) { x.Nonce++ }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "nonce lowered", mutate: func(x *Tx) { x.Nonce-- }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "type changed", mutate: func(x *Tx) { x.Type = TypeMemberAdd }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "body changed", mutate: func(x *Tx) { x.Body = []byte(`{"public":"x","name":"y"}`) }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "signature truncated", mutate: func(x *Tx) { x.Sig = x.Sig[:63] }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "signature missing", mutate: func(x *Tx) { x.Sig = nil }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "signature bit flipped", mutate: func(x *Tx) { x.Sig[5] ^= 1 }, chainID: testChain, pub: admin.Public().Sign, wantErr: true},
		{name: "short public key", chainID: testChain, pub: admin.Public().Sign[:31], wantErr: true},
		{name: "nil public key", chainID: testChain, pub: nil, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := signed(t, admin, TypeOrgAdd, 7, orgAddBody(t))
			if tc.mutate != nil {
				tc.mutate(x)
			}
			err := x.Verify(tc.chainID, tc.pub)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestSignBytesDomain checks that the signed message starts with the domain
// and chain ID, and that no two (chain ID, transaction) pairs collide by
// moving bytes between them.
func TestSignBytesDomain(t *testing.T) {
	x := signed(t, testKey(t, "admin"), TypeOrgAdd, 7, orgAddBody(t))
	a, err := x.SignBytes("ab")
	if err != nil {
		t.Fatal(err)
	}
	b, err := x.SignBytes("a")
	if err != nil {
		t.Fatal(err)
	}
	if want := Domain + "\x00ab\x00{"; string(a[:len(want)]) != want {
		t.Errorf("SignBytes starts %q, want %q", a[:len(want)], want)
	}
	if string(a) == string(b) {
		t.Error("SignBytes equal for different chain IDs")
	}
	withSig, _ := x.SignBytes("ab")
	x.Sig = nil
	withoutSig, _ := x.SignBytes("ab")
	if string(withSig) != string(withoutSig) {
		t.Error("SignBytes depends on the signature")
	}
}

// TestDecodeThenVerify checks the path a node takes: the decoded golden
// vectors verify under the test chain and no other.
func TestDecodeThenVerify(t *testing.T) {
	tests := []struct{ vector, key string }{
		{"valid-org-add", "admin"},
		{"valid-member-add", "org"},
		{"valid-patient-add", "patient"},
		{"max-size", "admin"},
	}
	for _, tc := range tests {
		t.Run(tc.vector, func(t *testing.T) {
			x, _, err := Decode(readVector(t, tc.vector))
			if err != nil {
				t.Fatal(err)
			}
			pub := testKey(t, tc.key).Public().Sign
			if err := x.Verify(testChain, pub); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := x.Verify("medchain-other", pub); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify on another chain = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestVerifyReusesItsMessage verifies a large transaction and a small one
// in turn, so that each builds its message in a buffer the other left
// longer or shorter: every verification must still decide on its own
// bytes alone. Verifying the large one again must not copy its body anew
// (the message buffer is reused, not allocated).
func TestVerifyReusesItsMessage(t *testing.T) {
	key := testKey(t, "author")
	var batch RecordBatch
	for i := range 200 {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		x := hex.EncodeToString(h[:])
		batch.Records = append(batch.Records, RecordPut{Patient: key.ID(), Category: "laboratory",
			ContentType: "application/fhir+json", Size: 2048, Ciphertext: x, Commitment: x, EpochEnv: x, SelfEnv: x})
	}
	big := signed(t, key, TypeRecordBatch, 1, batch)
	small := signed(t, key, TypeOrgAdd, 2, orgAddBody(t))
	forged := signed(t, key, TypeOrgAdd, 3, orgAddBody(t))
	forged.Nonce++
	for range 3 {
		for _, c := range []struct {
			name string
			x    *Tx
			ok   bool
		}{{"batch", big, true}, {"small", small, true}, {"forged", forged, false}} {
			if err := c.x.Verify(testChain, key.Public().Sign); (err == nil) != c.ok {
				t.Fatalf("Verify(%s) = %v, want ok %v", c.name, err, c.ok)
			}
		}
	}
	var before, after runtime.MemStats
	runtime.GC() // the pool may be emptied by a collection: one inside the loop below would add a buffer
	runtime.ReadMemStats(&before)
	const n = 10
	for range n {
		if err := big.Verify(testChain, key.Public().Sign); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per >= uint64(len(big.Body)) {
		t.Errorf("Verify of a %d-byte body allocates %d bytes each time: the message is copied anew", len(big.Body), per)
	}
}

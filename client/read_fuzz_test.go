package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/seal"
)

// FuzzGetRecord plays a hostile or broken node: it answers a record read
// with an arbitrary HTTP status and body. GetRecord decodes the answer,
// checks it against the ledger's hashes and decrypts; it must never panic,
// and it may return plaintext only if that is the record's true plaintext
// (a node cannot forge the AEAD, the envelope or the commitment).
//
// The seeds start from a valid patient read built with real keys, so that
// mutations reach the hash checks, the HPKE unwrap and the commitment.
func FuzzGetRecord(f *testing.F) {
	const chain = "medchain-fuzz"
	s := sha256.Sum256([]byte("client-fuzz/sign/patient"))
	b := sha256.Sum256([]byte("client-fuzz/box/patient"))
	patient, err := ident.FromSeeds(s[:], b[:])
	if err != nil {
		f.Fatal(err)
	}
	plaintext := []byte(`{"resourceType":"Observation","code":"glucose","valueQuantity":5.4}`)
	ek, err := seal.EpochKey(patient, "laboratory", 0)
	if err != nil {
		f.Fatal(err)
	}
	aad := RecordAAD(chain, patient.ID(), "laboratory", 0)
	sealed, err := seal.SealRecord(plaintext, aad, ek.PublicKey())
	if err != nil {
		f.Fatal(err)
	}
	ctHash := hex.EncodeToString(sealed.CiphertextHash[:])
	id := RecordID(ctHash)
	valid := readResult{
		Record: Record{ID: id, Patient: patient.ID(), Author: patient.ID(), Category: "laboratory", ContentType: "application/json",
			Size: int64(len(plaintext)), Ciphertext: ctHash, Commitment: hex.EncodeToString(sealed.Commitment[:]),
			EpochEnv: blob.Hash(sealed.EpochEnvelope), SelfEnv: strings.Repeat("0", 64), Height: 3},
		Height: 4, Ciphertext: sealed.Ciphertext, EpochEnv: sealed.EpochEnvelope, KeyKind: "patient",
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	authentic := js(valid)
	f.Add(200, authentic) // the authentic answer: must decrypt to the plaintext
	mut := func(edit func(r *readResult)) []byte { r := valid; edit(&r); return js(r) }
	f.Add(200, mut(func(r *readResult) { r.Ciphertext = append([]byte{}, r.Ciphertext[:len(r.Ciphertext)-1]...) })) // ciphertext cut short
	f.Add(200, mut(func(r *readResult) { r.Record.Commitment = strings.Repeat("ab", 32) }))                         // wrong commitment
	f.Add(200, mut(func(r *readResult) { r.Record.Commitment = "zz" }))                                             // malformed commitment
	f.Add(200, mut(func(r *readResult) { r.Record.Category = "imaging" }))                                          // other AAD
	f.Add(200, mut(func(r *readResult) { r.Record.Patient = "mc1" + strings.Repeat("0", 40) }))                     // served as grantee
	f.Add(200, mut(func(r *readResult) { r.Record.Patient, r.Record.Author = "x", patient.ID() }))                  // served as author
	f.Add(200, mut(func(r *readResult) { r.EpochEnv = nil }))                                                       // no epoch envelope
	f.Add(200, []byte(`{"record":{"id":"r`+ctHash[:32]+`x","ciphertext":"ab"}}`))                                   // short ciphertext hash, ID not echoed
	f.Add(200, []byte(`{"record":{"id":"`+id+`","ciphertext":""}}`))                                                // id echoed, no ciphertext hash
	f.Add(200, []byte(`{"record":{"id":"r0"}}`))                                                                    // another record
	f.Add(200, []byte(`null`))                                                                                      // JSON null
	f.Add(200, []byte(`[]`))                                                                                        // wrong JSON type
	f.Add(200, []byte{})                                                                                            // empty body
	f.Add(403, []byte(`{"error":"unauthorized: access denied"}`))                                                   // refusal
	f.Add(403, []byte(`{"tx":"ab","height":0,"code":6,"log":"denied in the block"}`))                               // refusal as a result
	f.Add(500, []byte("<html>oops</html>"))                                                                         // not JSON
	f.Add(204, []byte{})                                                                                            // 2xx without a body
	f.Add(999, []byte(`{"error":1}`))                                                                               // odd status, wrong type

	var mu chan struct{} = make(chan struct{}, 1)
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/status":
			w.Write([]byte(`{"chain_id":"` + chain + `","height":5}`))
		case strings.HasPrefix(r.URL.Path, "/v1/actors/"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not registered"}`))
		default:
			w.WriteHeader(status)
			w.Write(body)
		}
	}))
	f.Cleanup(srv.Close)
	c := New(srv.URL)

	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 999 {
			st = 200 + (st%800+800)%800 // WriteHeader panics outside 1xx-9xx; 1xx are informational
		}
		if knownShortHashPanic(id, b) {
			t.Skip("known client bug, see TestGetRecordShortCiphertextHash")
		}
		mu <- struct{}{}
		defer func() { <-mu }()
		status, body = st, b
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pt, rec, err := c.GetRecord(ctx, patient, id, "treatment")
		if ctx.Err() != nil {
			t.Fatalf("GetRecord hung on HTTP %d %q: %v", st, b, err)
		}
		if err != nil && st == 200 && bytes.Equal(b, authentic) {
			t.Fatalf("the authentic answer did not decrypt: %v", err)
		}
		if err != nil {
			if pt != nil {
				t.Fatalf("plaintext returned with error %v", err)
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if !bytes.Equal(pt, plaintext) {
			t.Fatalf("GetRecord returned %q, which is not the record's plaintext", pt)
		}
		if rec.ID != id {
			t.Fatalf("record %q returned for %q", rec.ID, id)
		}
	})
}

// knownShortHashPanic reports a body that echoes the record ID with a
// ciphertext hash under 32 characters: GetRecord then calls RecordID on it,
// which slices [:32] and panics. TestGetRecordShortCiphertextHash pins the
// bug; drop this filter once it is fixed.
func knownShortHashPanic(id string, b []byte) bool {
	var rr readResult
	return json.Unmarshal(b, &rr) == nil && rr.Record.ID == id && len(rr.Record.Ciphertext) < 32
}

// TestGetRecordShortCiphertextHash: a node that answers a read with the
// right record ID but a ciphertext hash shorter than 32 characters must get
// an error, not crash the client (found by FuzzGetRecord).
func TestGetRecordShortCiphertextHash(t *testing.T) {
	k, err := ident.Generate()
	if err != nil {
		t.Fatal(err)
	}
	id := "r" + strings.Repeat("a", 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/status":
			w.Write([]byte(`{"chain_id":"c"}`))
		case strings.HasPrefix(r.URL.Path, "/v1/actors/"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not registered"}`))
		default:
			w.Write([]byte(`{"record":{"id":"` + id + `","ciphertext":"ab"}}`))
		}
	}))
	defer srv.Close()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("GetRecord panicked on a hostile node's answer: %v", p)
		}
	}()
	if _, _, err := New(srv.URL).GetRecord(context.Background(), k, id, "treatment"); err == nil {
		t.Fatal("GetRecord accepted a record whose ciphertext hash is 2 characters")
	}
}

package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/medchain/medchain/tx"
)

// TestRecordEpochFollowsRevocation: once a revocation starts a new key epoch,
// records sealed to the old one are refused, in the revoking block and in
// every block after it, even though the old epoch number was cached.
func TestRecordEpochFollowsRevocation(t *testing.T) {
	w := newWorld(t)
	grant := w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}})
	w.mustDeliver(grant)
	consentID := "c" + tx.Hash(grant)[:32]
	seq := 0
	record := func(epoch uint64) []byte {
		seq++
		h := sha256.Sum256([]byte{byte(seq)})
		x := hex.EncodeToString(h[:])
		return w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: []tx.RecordPut{{Patient: w.patient.ID(),
			Category: "laboratory", ContentType: "application/fhir+json", Size: 10, Epoch: epoch,
			Ciphertext: x, Commitment: x, EpochEnv: x, SelfEnv: x}}})
	}
	if code, log := w.deliver(record(0)); code != CodeOK {
		t.Fatalf("record at epoch 0: %d %s", code, log) // caches epoch 0
	}
	var epochs []tx.EpochPub
	for _, e := range patientAdd(w.patient).Epochs {
		e.Epoch = 1
		epochs = append(epochs, e)
	}
	// The grant is for writing: revoke it and rotate every category, with
	// a record at each epoch after it in the same block.
	revoke := w.sign(w.patient, tx.TypeConsentRevoke, &tx.ConsentRevoke{Consent: consentID, Epochs: epochs})
	regrant := w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}})
	codes := w.block(revoke, regrant, record(0), record(1))
	want := []uint32{CodeOK, CodeOK, CodeInvalid, CodeOK}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("revoking block codes = %v, want %v", codes, want)
		}
	}
	tests := []struct {
		epoch uint64
		code  uint32
	}{{0, CodeInvalid}, {1, CodeOK}, {2, CodeInvalid}}
	for _, tc := range tests {
		raw := record(tc.epoch)
		if code, log := w.checkTx(raw); code != tc.code {
			t.Errorf("CheckTx record at epoch %d: code %d (%s), want %d", tc.epoch, code, log, tc.code)
		}
		if code, log := w.deliver(raw); code != tc.code {
			t.Errorf("record at epoch %d: code %d (%s), want %d", tc.epoch, code, log, tc.code)
		}
	}
}

// TestAuthorizeRecordDecidesAsAuthorizeRead: for a record already read,
// AuthorizeRecord gives the same consent or the same refusal as
// AuthorizeRead, for the patient, the author, a granted reader, a reader
// with no consent, another patient, an unregistered reader, a purpose no
// consent names and a malformed purpose; and gives it alike with the
// node's cache empty (read from the ledger) and then full (one look at
// the cache for both the reader and the consents).
func TestAuthorizeRecordDecidesAsAuthorizeRead(t *testing.T) {
	w := newWorld(t)
	reader, stranger, other := newKey(t), newKey(t), newKey(t)
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(reader, "physician")))
	w.mustDeliver(w.sign(w.orgB, tx.TypeMemberAdd, memberAdd(stranger, "physician")))
	w.mustDeliver(w.sign(other, tx.TypePatientAdd, patientAdd(other)))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: reader.Public().ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}, Purposes: []string{"treatment"}}))
	put := recordMaker(w.patient.ID())()
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordPut, &put))
	id := "r" + put.Ciphertext[:32]
	rec, err := w.app.GetRecord(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, who, purpose string
		allowed            bool
		cached             bool // the decision leaves the reader's actor in the cache
	}{
		{"patient", w.patient.ID(), "treatment", true, false},
		{"author", w.memberA.ID(), "treatment", true, false},
		{"granted reader", reader.Public().ID(), "treatment", true, true},
		{"no consent", stranger.Public().ID(), "treatment", false, true},
		{"another patient", other.Public().ID(), "treatment", false, true},
		{"unregistered", newKey(t).Public().ID(), "treatment", false, false},
		{"purpose not granted", reader.Public().ID(), "research", false, true},
		{"malformed purpose", reader.Public().ID(), "Treatment!", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantID, _, wantErr := w.app.AuthorizeRead(tc.who, id, tc.purpose)
			if (wantErr == nil) != tc.allowed {
				t.Fatalf("AuthorizeRead: %v; allowed want %v", wantErr, tc.allowed)
			}
			w.app.cache = cache{}
			for _, pass := range []string{"cache empty", "cache full"} {
				gotID, gotErr := w.app.AuthorizeRecord(tc.who, rec, tc.purpose)
				if gotID != wantID || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
					t.Errorf("%s: AuthorizeRecord = %q, %v; AuthorizeRead = %q, %v", pass, gotID, gotErr, wantID, wantErr)
				}
			}
			if _, ok := w.app.cache.actor(tc.who); ok != tc.cached {
				t.Errorf("reader's actor cached after the decisions: %v, want %v", ok, tc.cached)
			}
		})
	}
}

// TestAccessSeesConsentRevokedInItsBlock: a reader whose consent the node
// has cached, and who is refused once a block revokes it, is refused by a
// read later in that same block, and allowed again by a grant earlier in
// the block after that: a decision in a block reads the consents as the
// block has left them, never the cache's committed ones.
func TestAccessSeesConsentRevokedInItsBlock(t *testing.T) {
	w := newWorld(t)
	reader := newKey(t)
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(reader, "physician")))
	grant := func() []byte {
		return w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
			Grantee: reader.Public().ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}})
	}
	g := grant()
	w.mustDeliver(g)
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	put := recordMaker(w.patient.ID())()
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordPut, &put))
	id := "r" + put.Ciphertext[:32]
	access := func() []byte {
		return w.sign(reader, tx.TypeAccess, &tx.Access{Record: id, Purpose: "treatment"})
	}
	w.mustDeliver(access())
	if _, ok := w.app.cache.patientConsents(w.patient.ID()); !ok {
		t.Fatal("the patient's consents are not cached after a read: the test would not test the cache")
	}
	var epochs []tx.EpochPub
	for _, e := range patientAdd(w.patient).Epochs {
		e.Epoch = 1
		epochs = append(epochs, e)
	}
	revoke := w.sign(w.patient, tx.TypeConsentRevoke, &tx.ConsentRevoke{Consent: "c" + tx.Hash(g)[:32], Epochs: epochs})
	codes := w.block(revoke, access(), grant(), access())
	if want := []uint32{CodeOK, CodeUnauthorized, CodeOK, CodeOK}; !slices.Equal(codes, want) {
		t.Fatalf("codes of revoke, read, grant, read in one block = %v, want %v", codes, want)
	}
}

package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
// with no consent, a purpose no consent names and a malformed purpose.
func TestAuthorizeRecordDecidesAsAuthorizeRead(t *testing.T) {
	w := newWorld(t)
	reader, stranger := newKey(t), newKey(t)
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(reader, "physician")))
	w.mustDeliver(w.sign(w.orgB, tx.TypeMemberAdd, memberAdd(stranger, "physician")))
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
	}{
		{"patient", w.patient.ID(), "treatment", true},
		{"author", w.memberA.ID(), "treatment", true},
		{"granted reader", reader.Public().ID(), "treatment", true},
		{"no consent", stranger.Public().ID(), "treatment", false},
		{"purpose not granted", reader.Public().ID(), "research", false},
		{"malformed purpose", reader.Public().ID(), "Treatment!", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantID, _, wantErr := w.app.AuthorizeRead(tc.who, id, tc.purpose)
			gotID, gotErr := w.app.AuthorizeRecord(tc.who, rec, tc.purpose)
			if (wantErr == nil) != tc.allowed {
				t.Fatalf("AuthorizeRead: %v; allowed want %v", wantErr, tc.allowed)
			}
			if gotID != wantID || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("AuthorizeRecord = %q, %v; AuthorizeRead = %q, %v", gotID, gotErr, wantID, wantErr)
			}
		})
	}
}

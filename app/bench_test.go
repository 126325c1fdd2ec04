package app

import (
	"testing"

	"github.com/medchain/medchain/tx"
)

// BenchmarkRecordBatch measures the state machine alone on record writes:
// CheckTx then FinalizeBlock and Commit of blocks of 8 batches of 256
// records by one author under a write consent, reported per record.
func BenchmarkRecordBatch(b *testing.B) {
	w := newWorld(b)
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	const batches, perBatch = 8, 256
	record := recordMaker(w.patient.ID())
	b.ResetTimer()
	for done := 0; done < b.N; done += batches * perBatch {
		b.StopTimer()
		txs := make([][]byte, batches)
		for i := range txs {
			var body tx.RecordBatch
			for range perBatch {
				body.Records = append(body.Records, record())
			}
			txs[i] = w.sign(w.memberA, tx.TypeRecordBatch, &body)
		}
		b.StartTimer()
		for _, raw := range txs {
			if code, log := w.checkTx(raw); code != CodeOK {
				b.Fatalf("CheckTx: %d %s", code, log)
			}
		}
		for i, c := range w.block(txs...) {
			if c != CodeOK {
				b.Fatalf("batch %d: code %d", i, c)
			}
		}
	}
}

// BenchmarkAuthorizeRead measures one consent decision on a committed
// record by a member the patient granted reading, as the API makes before
// serving it, with the record, the reader and the patient's consents in the
// caches.
func BenchmarkAuthorizeRead(b *testing.B) {
	w := newWorld(b)
	readerKey := newKey(b)
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(readerKey, "physician")))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: readerKey.Public().ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}}))
	rec := recordMaker(w.patient.ID())()
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordPut, &rec))
	id, reader := "r"+rec.Ciphertext[:32], readerKey.Public().ID()
	if consentID, _, err := w.app.AuthorizeRead(reader, id, "treatment"); err != nil || consentID == "" {
		b.Fatalf("AuthorizeRead: consent %q, %v; want one that allows it", consentID, err)
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := w.app.AuthorizeRead(reader, id, "treatment"); err != nil {
			b.Fatal(err)
		}
	}
}

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

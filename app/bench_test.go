package app

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	seq := 0
	record := func() tx.RecordPut {
		seq++
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(seq)))
		x := hex.EncodeToString(h[:])
		return tx.RecordPut{Patient: w.patient.ID(), Category: "laboratory", ContentType: "application/fhir+json",
			Size: 2048, Ciphertext: x, Commitment: x, EpochEnv: x, SelfEnv: x}
	}
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

package app

import (
	"encoding/json"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/tx"
)

// prefetchWorld is a world whose member may write the patient's laboratory
// records, with one record already committed.
func prefetchWorld(t *testing.T) (*world, func() tx.RecordPut, tx.RecordPut) {
	w := newWorld(t)
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	record := recordMaker(w.patient.ID())
	committed := record()
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordPut, &committed))
	return w, record, committed
}

// TestPrefetchChangesNothing executes one block with everything prefetched,
// then the same block again with nothing prefetched, and compares: every
// result and the app hash must be the same. The block holds what the
// prefetcher must not get wrong: a record already committed, one written
// twice in a batch, one written by two transactions of the block, a bad
// record, and a single record.put.
func TestPrefetchChangesNothing(t *testing.T) {
	w, record, committed := prefetchWorld(t)
	batch := func(recs ...tx.RecordPut) []byte {
		return w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: recs})
	}
	a, twice := record(), record()
	bad := record()
	bad.Category = "astrology"
	single := record()
	txs := [][]byte{
		batch(a, record(), record()),
		batch(record(), committed),    // exists: the batch fails
		batch(twice, record(), twice), // twice in one batch: fails
		batch(record(), a),            // a, written by the first: fails
		batch(record(), bad),          // bad category: fails
		w.sign(w.memberA, tx.TypeRecordPut, &single),
		batch(record(), record(), record(), record()),
	}
	for i, raw := range txs {
		if code, log := w.checkTx(raw); code != CodeOK && i != 1 && i != 4 {
			t.Fatalf("CheckTx of tx %d: %d %s", i, code, log)
		}
	}
	// The prefetcher must have something to get wrong.
	pre := w.app.prefetchTx(txs[1], w.height+1, 0, true)
	if pre == nil || !(*pre)["r"+committed.Ciphertext[:32]].committed {
		t.Fatal("prefetchTx did not find the committed record")
	}

	run := func(mode int) *abci.ResponseFinalizeBlock {
		w.app.prefetchMode = mode
		w.app.block = nil // as if FinalizeBlock had never run at this height
		return w.finalize(txs...)
	}
	with := run(prefetchAll) // first: it finds the verified transactions
	without := run(prefetchOff)
	want := []uint32{CodeOK, CodeExists, CodeExists, CodeExists, CodeInvalid, CodeOK, CodeOK}
	for i := range txs {
		g, h := with.TxResults[i], without.TxResults[i]
		if g.Code != h.Code || g.Log != h.Log {
			t.Errorf("tx %d: prefetched %d %q, not %d %q", i, g.Code, g.Log, h.Code, h.Log)
		}
		if g.Code != want[i] {
			t.Errorf("tx %d: code %d, want %d (%s)", i, g.Code, want[i], g.Log)
		}
	}
	if string(with.AppHash) != string(without.AppHash) {
		t.Fatalf("app hash %X with prefetch, %X without", with.AppHash, without.AppHash)
	}
	w.commit(without.AppHash)
	got, err := w.app.GetRecord("r" + single.Ciphertext[:32])
	if err != nil || got.Author != w.memberA.ID() || got.Height != w.height {
		t.Errorf("committed single record = %+v, %v", got, err)
	}
}

// TestPrefetchConcurrent runs blocks with the prefetcher on its own
// goroutine, as FinalizeBlock does, and checks each against the same block
// without it (run it with -race).
func TestPrefetchConcurrent(t *testing.T) {
	w, record, _ := prefetchWorld(t)
	for range 3 {
		var txs [][]byte
		for range 8 {
			var body tx.RecordBatch
			for range 64 {
				body.Records = append(body.Records, record())
			}
			raw := w.sign(w.memberA, tx.TypeRecordBatch, &body)
			if code, log := w.checkTx(raw); code != CodeOK {
				t.Fatalf("CheckTx: %d %s", code, log)
			}
			txs = append(txs, raw)
		}
		w.app.prefetchMode = prefetchAuto
		w.app.block = nil
		with := w.finalize(txs...)
		w.app.prefetchMode = prefetchOff
		w.app.block = nil
		without := w.finalize(txs...)
		if string(with.AppHash) != string(without.AppHash) {
			t.Fatalf("app hash %X with prefetch, %X without", with.AppHash, without.AppHash)
		}
		for i, r := range with.TxResults {
			if r.Code != CodeOK {
				t.Fatalf("tx %d: %d %s", i, r.Code, r.Log)
			}
		}
		w.commit(without.AppHash)
	}
}

// TestPrefetchedValue checks that a prefetched record value is the bytes
// putRecord writes.
func TestPrefetchedValue(t *testing.T) {
	w, record, _ := prefetchWorld(t)
	r := record()
	raw := w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: []tx.RecordPut{r}})
	if code, log := w.checkTx(raw); code != CodeOK {
		t.Fatalf("CheckTx: %d %s", code, log)
	}
	pre := w.app.prefetchTx(raw, 7, 42, true)
	if pre == nil {
		t.Fatal("nothing prefetched for a verified batch")
	}
	got := (*pre)["r"+r.Ciphertext[:32]]
	want, err := json.Marshal(newRecord(w.memberA.ID(), &r, 7, 42))
	if err != nil {
		t.Fatal(err)
	}
	if got.committed || string(got.value) != string(want) {
		t.Errorf("prefetched %+v, want value %s", got, want)
	}
}

// TestPrefetchSkipsSharedIDs checks that records of one transaction that
// share an ID get nothing prefetched: a value keyed by the ID would belong
// to only one of them.
func TestPrefetchSkipsSharedIDs(t *testing.T) {
	w, record, _ := prefetchWorld(t)
	r, other := record(), record()
	twin := r
	twin.ContentType = "text/plain" // same ciphertext, so the same ID
	raw := w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: []tx.RecordPut{r, other, twin}})
	if code, log := w.checkTx(raw); code != CodeOK {
		t.Fatalf("CheckTx: %d %s", code, log)
	}
	pre := w.app.prefetchTx(raw, 7, 42, true)
	if pre == nil {
		t.Fatal("nothing prefetched for a verified batch")
	}
	if _, ok := (*pre)["r"+r.Ciphertext[:32]]; ok {
		t.Error("a value was prefetched for an ID two records share")
	}
	if _, ok := (*pre)["r"+other.Ciphertext[:32]]; !ok {
		t.Error("the other record was not prefetched")
	}
}

package app

import (
	"testing"

	"github.com/medchain/medchain/tx"
)

// TestDeferredIDCheckChangesNothing executes blocks with record IDs checked
// after the block (with and without the prefetcher) and one by one, and
// compares every result and the app hash. It also checks which blocks had
// to run again: only those naming a committed ID, whether the transaction
// naming it otherwise succeeded (the ID is answered by state.Delta.Root's
// merge) or failed anyway (answered by a lookup).
func TestDeferredIDCheckChangesNothing(t *testing.T) {
	w, record, committed := prefetchWorld(t)
	batch := func(recs ...tx.RecordPut) []byte {
		return w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: recs})
	}
	bad := func() tx.RecordPut {
		r := record()
		r.Category = "astrology"
		return r
	}
	twice := record()
	tests := []struct {
		name  string
		txs   [][]byte
		want  []uint32
		again bool // the block runs a second time, checking each ID
	}{
		{"all new", [][]byte{batch(record(), record(), record()), batch(record())},
			[]uint32{CodeOK, CodeOK}, false},
		{"committed ID in a batch that would succeed", [][]byte{batch(record(), committed), batch(record())},
			[]uint32{CodeExists, CodeOK}, true},
		{"committed ID in a batch that fails later anyway", [][]byte{batch(committed, bad()), batch(record())},
			[]uint32{CodeExists, CodeOK}, true},
		{"committed ID after the record that fails", [][]byte{batch(bad(), committed), batch(record())},
			[]uint32{CodeInvalid, CodeOK}, false},
		{"one ID written twice in the block", [][]byte{batch(twice), batch(record(), twice)},
			[]uint32{CodeOK, CodeExists}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(ids, prefetch int) ([]uint32, []string, string) {
				w.app.idMode, w.app.prefetchMode = ids, prefetch
				w.app.block = nil // as if FinalizeBlock had never run at this height
				res := w.finalize(tc.txs...)
				var codes []uint32
				var logs []string
				for _, r := range res.TxResults {
					codes, logs = append(codes, r.Code), append(logs, r.Log)
				}
				return codes, logs, string(res.AppHash)
			}
			wantCodes, wantLogs, wantHash := run(idsEach, prefetchOff)
			for i, c := range wantCodes {
				if c != tc.want[i] {
					t.Fatalf("checking each ID: tx %d: code %d, want %d (%s)", i, c, tc.want[i], wantLogs[i])
				}
			}
			for _, prefetch := range []int{prefetchAll, prefetchOff, prefetchAuto} {
				codes, logs, hash := run(idsAfter, prefetch)
				for i := range codes {
					if codes[i] != wantCodes[i] || logs[i] != wantLogs[i] {
						t.Errorf("prefetch mode %d: tx %d: %d %q, checking each: %d %q", prefetch, i, codes[i], logs[i], wantCodes[i], wantLogs[i])
					}
				}
				if hash != wantHash {
					t.Errorf("prefetch mode %d: app hash %X, checking each %X", prefetch, hash, wantHash)
				}
				if again := !w.app.run.assumeNew; again != tc.again {
					t.Errorf("prefetch mode %d: ran again: %v, want %v", prefetch, again, tc.again)
				}
				if !tc.again && len(w.app.run.assumed) == 0 {
					t.Errorf("prefetch mode %d: no record ID was deferred", prefetch)
				}
			}
		})
	}
	w.app.idMode, w.app.prefetchMode = idsAfter, prefetchAuto
}

// TestFirstBlockChecksEachID: the first block after genesis runs on the
// genesis writes, which a second run could not start from again, so it
// checks each record ID as it goes.
func TestFirstBlockChecksEachID(t *testing.T) {
	n := newNode(t, "", newKey(t))
	n.finalize()
	if n.app.run.fresh || n.app.run.assumeNew {
		t.Fatalf("the first block after genesis deferred its record ID checks")
	}
	n.commit(n.app.run.root)
	n.finalize()
	if !n.app.run.fresh || !n.app.run.assumeNew {
		t.Fatalf("the second block did not defer its record ID checks")
	}
}

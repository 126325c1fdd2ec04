package app

import (
	"context"
	"slices"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/tx"
)

// speculationBlock is a block whose result depends on everything a
// speculation could get wrong: a consent granted in the block and used by
// a read later in it (the patient is touched), records that name the
// block's height and time, a record already committed and a single
// record.put. other is the same block without its last transaction,
// swapped the same block with its last two transactions swapped.
func speculationBlock(t *testing.T) (w *world, block, other, swapped [][]byte) {
	w, record, committed := prefetchWorld(t)
	batch := func(recs ...tx.RecordPut) []byte {
		return w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: recs})
	}
	single := record()
	block = [][]byte{
		w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
			Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}}),
		batch(record(), record(), record()),
		w.sign(w.memberA, tx.TypeAccess, &tx.Access{Record: "r" + committed.Ciphertext[:32], Purpose: "treatment"}),
		batch(record(), committed), // exists: the batch fails
		w.sign(w.memberA, tx.TypeRecordPut, &single),
	}
	for i, raw := range block {
		if code, log := w.checkTx(raw); code != CodeOK && i != 2 && i != 3 {
			t.Fatalf("CheckTx of tx %d: %d %s", i, code, log)
		}
	}
	n := len(block)
	swapped = append(append(slices.Clone(block[:n-2]), block[n-1]), block[n-2])
	return w, block, block[:n-1], swapped
}

// TestSpeculationChangesNothing executes blocks ahead of FinalizeBlock
// (from PrepareProposal, from ProcessProposal, from a proposal that then
// lost to another) and checks each FinalizeBlock answer against the same
// block executed without speculation: every result and the app hash.
func TestSpeculationChangesNothing(t *testing.T) {
	tests := []struct {
		name string
		// proposals are executed ahead, in order; the decided block is
		// the last one unless decide says otherwise.
		proposals []string // "block", "other" or "swapped"
		shift     time.Duration
		prepare   bool // the first proposal through PrepareProposal
		decide    string
		adopted   bool // FinalizeBlock uses a speculation
	}{
		{name: "proposed here", proposals: []string{"block"}, prepare: true, decide: "block", adopted: true},
		{name: "proposed by a peer", proposals: []string{"block"}, decide: "block", adopted: true},
		{name: "proposal prepared then processed", proposals: []string{"block", "block"}, prepare: true, decide: "block", adopted: true},
		{name: "round change to another block", proposals: []string{"other", "block"}, decide: "block", adopted: true},
		{name: "another block decided", proposals: []string{"other"}, decide: "block"},
		{name: "same transactions in another order decided", proposals: []string{"swapped"}, decide: "block"},
		{name: "fewer transactions decided", proposals: []string{"block"}, prepare: true, decide: "other"},
		{name: "another time decided", proposals: []string{"block"}, shift: time.Millisecond, decide: "block"},
		{name: "nothing proposed", decide: "block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, block, other, swapped := speculationBlock(t)
			txs := map[string][][]byte{"block": block, "other": other, "swapped": swapped}
			h := w.height + 1
			at := blockAt(h)

			w.app.speculateMode = speculateOff
			want := w.finalize(txs[tc.decide]...)
			w.app.block, w.app.run = nil, nil // as if FinalizeBlock had not run
			w.app.speculateMode = speculateOn
			for i, p := range tc.proposals {
				propTime := at.Add(tc.shift)
				if i == 0 && tc.prepare {
					res, err := w.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{
						Txs: txs[p], MaxTxBytes: 1 << 30, Height: h, Time: propTime})
					if err != nil || len(res.Txs) != len(txs[p]) {
						t.Fatalf("PrepareProposal: %d txs, %v", len(res.Txs), err)
					}
					continue
				}
				res, err := w.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{
					Txs: txs[p], Height: h, Time: propTime})
				if err != nil || res.Status != abci.ResponseProcessProposal_ACCEPT {
					t.Fatalf("ProcessProposal: %v, %v", res, err)
				}
			}
			spec := w.app.spec
			got := w.finalize(txs[tc.decide]...)
			if adopted := spec != nil && w.app.run == spec; adopted != tc.adopted {
				t.Fatalf("FinalizeBlock adopted the speculation: %v, want %v", adopted, tc.adopted)
			}
			if w.app.spec != nil {
				t.Fatal("a speculation outlived FinalizeBlock")
			}
			for i := range want.TxResults {
				g, h := got.TxResults[i], want.TxResults[i]
				if g.Code != h.Code || g.Log != h.Log {
					t.Errorf("tx %d: %d %q, without speculation %d %q", i, g.Code, g.Log, h.Code, h.Log)
				}
			}
			if string(got.AppHash) != string(want.AppHash) {
				t.Fatalf("app hash %X, without speculation %X", got.AppHash, want.AppHash)
			}
			w.commit(got.AppHash)
			if events, err := w.app.AccessLog(w.patient.ID()); err != nil || len(events) != 1 {
				t.Errorf("%d access events committed (%v), want 1", len(events), err)
			}
		})
	}
}

// TestCloseStopsSpeculation checks that Close leaves no block executing:
// the store may close right after it.
func TestCloseStopsSpeculation(t *testing.T) {
	w, block, _, _ := speculationBlock(t)
	h := w.height + 1
	if _, err := w.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{
		Txs: block, Height: h, Time: blockAt(h)}); err != nil {
		t.Fatal(err)
	}
	r := w.app.spec
	if r == nil {
		t.Fatal("ProcessProposal started no speculation")
	}
	w.app.Close()
	select {
	case <-r.done:
	default:
		t.Fatal("Close returned while the speculation was executing")
	}
	if w.app.spec != nil {
		t.Fatal("Close left a speculation behind")
	}
}

package app

import "github.com/medchain/medchain/state"

// A new record's ID must not be committed already: FinalizeBlock refuses a
// transaction that names one. Asking the committed state about each ID as
// the block runs is a Pebble lookup apiece (a memtable search, mostly for a
// key that is not there), about a quarter of what a block spends per
// record. But the block asks the same question of the same store again
// when it computes its app hash: state.Delta.Root merges every key the
// block writes into its bucket's committed entries, and so finds, for no
// lookup of its own, whether each was there (state.Delta.Replaces).
//
// So a block that runs on a delta of its own over the committed state
// (every block but the first after genesis) takes each record ID that no
// earlier transaction of the block wrote to be new, notes it, and checks
// the notes once the block has run: an ID its writes still hold is
// answered by the merge, and one only a failed transaction named (its
// writes thrown away) by a lookup. If any was committed, the block runs
// again from a new delta, checking each ID as it goes. Its results are
// then exactly those of that careful run; the first run's are used only
// when no ID it took to be new was committed, and then every check it
// made answered as the careful run's would have, so its results are the
// same too. TestDeferredIDCheckChangesNothing checks both paths.
//
// A transaction naming a committed ID costs its block a second run, and
// never more: the second run defers nothing. Only an author the patient
// allowed to write can sign one, and the batch is refused whole, so the
// author pays for it too. CheckTx refuses a single record.put naming one
// (not a batch: that lookup per record would cost more than the rest of
// its check), and a proposer can include either without CheckTx.

// Record ID check modes, for tests.
const (
	idsAfter = iota // checked after the block runs, when it can be run again
	idsEach         // checked one by one as the block runs
)

// assumedCommitted reports whether any record ID r took to be new is in
// the committed state (or whether that could not be read, in which case
// the careful run reads it again and fails as it should). r's delta must
// have its root computed.
func (a *App) assumedCommitted(r *blockRun) bool {
	for _, key := range r.assumed {
		if replaces, known := r.delta.Replaces(key); known {
			if replaces {
				return true
			}
			continue
		}
		if exists, err := has(a.store, key); err != nil || exists {
			return true
		}
	}
	return false
}

// restart readies r to run again on delta, forgetting the last run.
func (r *blockRun) restart(delta *state.Delta) {
	r.delta.Discard()
	r.delta, r.res, r.results, r.newBlobs = delta, nil, nil, nil
	r.touched = map[string]bool{}
	r.root, r.err = nil, nil
	r.assumeNew, r.assumed = false, nil
}

package app

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// A block's execution depends only on the committed state and on the
// block's height, time and transactions. All three are known when the
// block is proposed, before CometBFT has written the proposal to its
// write-ahead log (an fsync per 64 KiB part) and collected the votes:
// tens of milliseconds per block in which the consensus goroutine waits on
// the disk and the network. So the application starts executing a proposed
// block then, on its own goroutine, and FinalizeBlock adopts the result
// when the decided block is the one executed: same height, same time, the
// same transactions byte for byte. Otherwise (another proposal was
// decided, or none was executed) FinalizeBlock stops the speculation,
// throws its writes away and executes the block itself. Either way it
// returns exactly what executing the decided block returns;
// TestSpeculationChangesNothing checks it.
//
// Executions never overlap: a new speculation first stops the previous
// one, and FinalizeBlock waits for the one it adopts or stops, so at
// Commit nothing else is executing. The committed state does not change
// between a block's proposal and its commit, which is what makes a result
// computed early the right one.

// Speculation modes, for tests.
const (
	speculateOn = iota
	speculateOff
)

// errStopped ends a speculation no longer wanted.
var errStopped = errors.New("speculative execution stopped")

// blockRun is one execution of a block: its input, its writes, its
// results, and what Commit hands on.
type blockRun struct {
	height int64
	time   int64 // block time, unix nanoseconds
	txs    [][]byte

	delta    *state.Delta
	res      []*abci.ExecTxResult
	results  []Result
	newBlobs []string        // blobs the block's new records and envelopes need
	touched  map[string]bool // patients whose consents the block changes
	root     []byte
	err      error

	// fresh: delta was begun on the committed state and nothing else has
	// written to it, so the block can be run again on a new one.
	fresh bool
	// assumeNew: record IDs are taken to be new to the committed state
	// while the block runs and checked all at once after it (idcheck.go);
	// assumed holds the state keys so taken.
	assumeNew bool
	assumed   [][]byte

	stop atomic.Bool
	done chan struct{} // closed when execution ends
}

func newBlockRun(delta *state.Delta, height, time int64, txs [][]byte) *blockRun {
	return &blockRun{height: height, time: time, txs: txs, delta: delta,
		touched: map[string]bool{}, done: make(chan struct{})}
}

// is reports whether r executes the block at height and time with txs.
func (r *blockRun) is(height, time int64, txs [][]byte) bool {
	if r.height != height || r.time != time || len(r.txs) != len(txs) {
		return false
	}
	for i := range txs {
		if !bytes.Equal(r.txs[i], txs[i]) {
			return false
		}
	}
	return true
}

// execBlock executes r's block: once with its record IDs checked after the
// run when it can (idcheck.go), and, if one of them was committed already,
// again with each checked as the block goes.
func (a *App) execBlock(r *blockRun) {
	defer close(r.done)
	r.assumeNew = r.fresh && a.idMode == idsAfter
	a.runBlock(r)
	if r.err != nil || !r.assumeNew || !a.assumedCommitted(r) {
		return
	}
	a.log.Debug("block names a committed record ID: executing it again, checking each", "height", r.height)
	r.restart(a.store.Begin())
	a.runBlock(r)
}

// runBlock executes r's transactions in order on its delta, then computes
// the app hash.
func (a *App) runBlock(r *blockRun) {
	e := env{w: r.delta, height: r.height, time: r.time, final: true, run: r}
	putTime(r.delta, r.time)
	r.res = make([]*abci.ExecTxResult, len(r.txs))
	r.results = make([]Result, 0, len(r.txs))
	pf := a.startPrefetch(r.txs, r.height, r.time, !r.assumeNew)
	defer pf.finish()
	for i, raw := range r.txs {
		if r.stop.Load() {
			r.err = errStopped
			return
		}
		e.hash, e.pre = tx.Hash(raw), pf.take(i)
		_, err := a.execute(e, raw, 0)
		res := &abci.ExecTxResult{Code: codeOf(err)}
		if err != nil {
			res.Log = err.Error()
		}
		r.res[i] = res
		r.results = append(r.results, Result{Hash: e.hash, Height: r.height, Code: res.Code, Log: res.Log})
	}
	if r.err = r.delta.Prepare(); r.err == nil {
		r.root, r.err = r.delta.Root()
	}
}

// speculate starts executing a proposed block, unless it is being executed
// already. Only the first block after InitChain, which builds on genesis
// writes not yet committed, is never speculated.
func (a *App) speculate(height, time int64, txs [][]byte) {
	if a.speculateMode == speculateOff || a.block != nil || len(txs) == 0 {
		return
	}
	if a.spec != nil && a.spec.is(height, time, txs) {
		return
	}
	a.dropSpeculation()
	r := newBlockRun(a.store.Begin(), height, time, txs)
	r.fresh = true
	a.spec = r
	go a.execBlock(r)
}

// adopt returns the speculation if it executed the block at height and
// time with txs, after it ends; any other it stops and waits for.
func (a *App) adopt(height, time int64, txs [][]byte) *blockRun {
	r := a.spec
	if r == nil || !r.is(height, time, txs) {
		if r != nil {
			a.log.Debug("speculative execution discarded: another block was decided", "height", height, "executed", r.height)
		}
		a.dropSpeculation()
		return nil
	}
	a.spec = nil
	<-r.done
	return r
}

func (a *App) dropSpeculation() {
	if r := a.spec; r != nil {
		r.stop.Store(true)
		<-r.done
		r.delta.Discard()
		a.spec = nil
	}
}

// Close stops a block executing ahead of FinalizeBlock, if any, and waits
// for it. Call it once consensus has stopped and before the store closes.
func (a *App) Close() { a.dropSpeculation() }

// PrepareProposal proposes the mempool's transactions up to the size limit,
// as CometBFT's default does, and starts executing the block they make.
func (a *App) PrepareProposal(ctx context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	res, err := a.BaseApplication.PrepareProposal(ctx, req)
	if err != nil {
		return nil, err
	}
	a.speculate(req.Height, req.Time.UnixNano(), res.Txs)
	return res, nil
}

// ProcessProposal accepts the proposal (every check runs when it executes)
// and starts executing it, unless it is the block being executed already.
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	a.speculate(req.Height, req.Time.UnixNano(), req.Txs)
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

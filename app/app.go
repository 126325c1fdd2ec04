// Package app is medchain's ABCI 2.0 application: the deterministic state
// machine that CometBFT drives. It checks and applies transactions, keeps
// the state in [state.Store], and answers the node's reads from committed
// state without waiting behind consensus.
//
// Nothing here reads the local clock, iterates a map into the state or uses
// floating point: every node that applies the same blocks reaches the same
// app hash.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Version is reported to CometBFT in Info.
const Version = "0.1.0"

// Genesis is the application part of the genesis file.
type Genesis struct {
	// Admins are network admins' public keys (ident.Public strings).
	Admins []string `json:"admins"`
	// Nodes are the nodes' own identities, which sign access batches.
	Nodes []string `json:"nodes,omitempty"`
	// StateVersion is the chain's state layout; 0 means 1 (see
	// [StateVersion]).
	StateVersion int `json:"state_version,omitempty"`
}

// StateVersion is the state layout a new chain's genesis names. Version 2
// leaves the ledger's derived indexes out of the state's commitment
// (derivedPrefixes); version 1, a genesis that names none, commits every
// key. A chain keeps the version its genesis names, so the app hashes its
// blocks carry stay the ones a replay computes.
const StateVersion = 2

// derivedPrefixes returns the state keys that version 2 leaves out of the
// commitment, each derived from committed keys: a patient's index of
// records, from each record's patient; and the access requests already
// recorded, from the access events, whose keys name the request.
// Execution reads the recorded requests (a replayed request is refused),
// so a node whose copy of those differs computes a different app hash at
// its next use; the record index answers queries only. `medchain verify`
// compares both with a replay's.
func derivedPrefixes(version int) ([]string, error) {
	switch version {
	case 0, 1:
		return nil, nil
	case 2:
		return []string{"accessreq/", "precord/"}, nil
	}
	return nil, fmt.Errorf("genesis app_state.state_version %d: this build of medchain knows versions 1 and %d; run a newer one", version, StateVersion)
}

// Result is the outcome of a committed transaction.
type Result struct {
	Hash   string `json:"tx"`
	Height int64  `json:"height"`
	Code   uint32 `json:"code"`
	Log    string `json:"log,omitempty"`
}

// App is the ABCI application. Create it with [New].
type App struct {
	abci.BaseApplication
	chainID  string
	store    *state.Store
	log      *slog.Logger
	programs programs
	cache    cache
	verified verifiedCache
	keys     keyCache
	// prefetchMode, speculateMode and idMode are on but in tests that
	// compare blocks executed with and without the prefetcher, speculation
	// or the deferred record ID check.
	prefetchMode  int
	speculateMode int
	idMode        int

	// Consensus connection only: the genesis writes until the first block,
	// then the block FinalizeBlock executed, to be committed; and the
	// block being executed ahead of FinalizeBlock, if any.
	block *state.Delta
	run   *blockRun
	spec  *blockRun

	// blockTime is the last committed block's time (unix ns), read at
	// every CheckTx and every decision the API asks for.
	blockTime atomic.Int64

	checkMu sync.Mutex
	pending map[string]uint64 // nonces accepted into the mempool since the last commit

	waitMu  sync.Mutex
	waiters map[string][]chan Result

	// BlobCheck, if set, is asked in CheckTx whether this node holds the
	// blobs a transaction names, so that no entry point (the API or
	// CometBFT's RPC) admits a record whose contents no node can serve.
	// It never runs in FinalizeBlock: what a node holds is not consensus.
	BlobCheck func(names []string) error

	// OnCommit, if set, is called after each commit with the blobs that the
	// block's new records need. It must not block.
	OnCommit func(blobs []string)
}

// New returns an application over store for chainID.
func New(chainID string, store *state.Store, log *slog.Logger) *App {
	a := &App{
		chainID: chainID,
		store:   store,
		log:     log,
		pending: map[string]uint64{},
		waiters: map[string][]chan Result{},
	}
	a.blockTime.Store(committedTime(store))
	return a
}

// ChainID returns the chain this application serves.
func (a *App) ChainID() string { return a.chainID }

// Store returns the committed state, for reads.
func (a *App) Store() *state.Store { return a.store }

// Info reports exactly the last committed height and app hash, so that
// CometBFT replays whatever a crash cut off.
func (a *App) Info(context.Context, *abci.RequestInfo) (*abci.ResponseInfo, error) {
	h := a.store.Height()
	res := &abci.ResponseInfo{Data: "medchain", Version: Version, LastBlockHeight: h}
	if h > 0 {
		res.LastBlockAppHash = a.store.Root()
	}
	return res, nil
}

// InitChain writes the genesis admins. They are committed with block 1.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	if req.ChainId != a.chainID {
		return nil, fmt.Errorf("genesis chain %q, application configured for %q", req.ChainId, a.chainID)
	}
	var g Genesis
	if len(req.AppStateBytes) > 0 {
		if err := json.Unmarshal(req.AppStateBytes, &g); err != nil {
			return nil, fmt.Errorf("genesis app_state: %w", err)
		}
	}
	derived, err := derivedPrefixes(g.StateVersion)
	if err != nil {
		return nil, err
	}
	if err := a.store.SetDerived(derived); err != nil {
		return nil, fmt.Errorf("genesis state version %d: %w", g.StateVersion, err)
	}
	a.block = a.store.Begin()
	for _, s := range g.Admins {
		pub, err := ident.ParsePublic(s)
		if err != nil {
			return nil, fmt.Errorf("genesis admin: %w", err)
		}
		if err := putActor(a.block, &Actor{ID: pub.ID(), Kind: KindAdmin, Public: s, Name: "admin"}); err != nil {
			return nil, err
		}
	}
	for _, s := range g.Nodes {
		pub, err := ident.ParsePublic(s)
		if err != nil {
			return nil, fmt.Errorf("genesis node: %w", err)
		}
		if err := putActor(a.block, &Actor{ID: pub.ID(), Kind: KindNode, Public: s, Name: "node"}); err != nil {
			return nil, err
		}
	}
	root, err := a.block.Root()
	if err != nil {
		return nil, err
	}
	return &abci.ResponseInitChain{AppHash: root}, nil
}

// CheckTx runs every check against committed state and the nonces already
// in the mempool. It is cheap to reject: decoding and a size check come
// before the signature.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	hash := tx.Hash(req.Tx)
	t, body, err := a.verify(a.store, req.Tx, hash, false)
	if err != nil {
		return &abci.ResponseCheckTx{Code: codeOf(err), Log: err.Error()}, nil
	}
	if a.BlobCheck != nil {
		if err := a.BlobCheck(blobNames(body)); err != nil {
			return &abci.ResponseCheckTx{Code: CodeMissingBlob, Log: err.Error()}, nil
		}
	}
	a.checkMu.Lock()
	defer a.checkMu.Unlock()
	h := a.store.Height()
	if _, err := a.execute(env{w: a.store.Begin(), hash: hash, height: h + 1, time: a.BlockTime()}, req.Tx, a.pending[t.Signer]); err != nil {
		return &abci.ResponseCheckTx{Code: codeOf(err), Log: err.Error()}, nil
	}
	a.pending[t.Signer] = t.Nonce
	return &abci.ResponseCheckTx{Code: CodeOK}, nil
}

// FinalizeBlock executes the block's transactions in order on a fresh delta
// and returns the app hash the state will have once committed. A block
// already executed since its proposal (speculate.go) is not executed again.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	t := req.Time.UnixNano()
	r := a.adopt(req.Height, t, req.Txs)
	if r == nil {
		base := a.block // the genesis writes, before the first block
		if base == nil {
			base = a.store.Begin()
		}
		r = newBlockRun(base, req.Height, t, req.Txs)
		r.fresh = a.block == nil
		a.execBlock(r)
	}
	if r.err != nil {
		return nil, fmt.Errorf("compute app hash at height %d: %w", req.Height, r.err)
	}
	a.block, a.run = r.delta, r
	return &abci.ResponseFinalizeBlock{TxResults: r.res, AppHash: r.root}, nil
}

// Commit persists the block FinalizeBlock executed atomically, then tells
// those waiting on its transactions.
func (a *App) Commit(context.Context, *abci.RequestCommit) (*abci.ResponseCommit, error) {
	r := a.run
	if r == nil {
		return nil, errors.New("commit with no block executed: CometBFT calls FinalizeBlock first, so this is a bug in the caller")
	}
	if _, err := a.store.Commit(r.delta, r.height); err != nil {
		return nil, err
	}
	a.blockTime.Store(r.time)
	a.block, a.run = nil, nil
	a.cache.forget(r.touched)
	a.checkMu.Lock()
	clear(a.pending) // the mempool rechecks what is left and refills this
	a.checkMu.Unlock()
	a.notify(r.results)
	if a.OnCommit != nil && len(r.newBlobs) > 0 {
		a.OnCommit(r.newBlobs)
	}
	a.log.Debug("committed", "height", r.height, "txs", len(r.results))
	return &abci.ResponseCommit{}, nil
}

// Wait registers interest in a transaction's commit. The returned channel
// receives its result once; cancel must be called if the caller gives up.
func (a *App) Wait(hash string) (ch <-chan Result, cancel func()) {
	c := make(chan Result, 1)
	a.waitMu.Lock()
	a.waiters[hash] = append(a.waiters[hash], c)
	a.waitMu.Unlock()
	return c, func() {
		a.waitMu.Lock()
		defer a.waitMu.Unlock()
		ws := a.waiters[hash]
		for i, w := range ws {
			if w == c {
				a.waiters[hash] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(a.waiters[hash]) == 0 {
			delete(a.waiters, hash)
		}
	}
}

func (a *App) notify(results []Result) {
	a.waitMu.Lock()
	defer a.waitMu.Unlock()
	for _, r := range results {
		for _, c := range a.waiters[r.Hash] {
			c <- r
		}
		delete(a.waiters, r.Hash)
	}
}

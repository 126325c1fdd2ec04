// Package verify checks a stopped node's whole history offline: every block's
// hash link, transaction root and validator signatures, and the application
// state, by replaying every block from genesis into a fresh state and
// comparing app hashes. It names the first place where anything fails.
//
// verify only reads; it never repairs or writes a node's home.
package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/store"
	"github.com/cometbft/cometbft/types"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/state"
)

// Report is the outcome of a verification.
type Report struct {
	OK           bool   `json:"ok"`
	Blocks       int64  `json:"blocks"`
	Records      int64  `json:"records"`
	StateKeys    int    `json:"state_keys"`
	Blobs        int    `json:"blobs"`
	BlobsMissing int    `json:"blobs_missing"`
	Error        string `json:"error,omitempty"`
}

// ErrBroken reports history that does not hold; the message names where.
var ErrBroken = errors.New("history broken")

// Home verifies the node home at dir. The node must be stopped.
func Home(ctx context.Context, home string) (rep Report, err error) {
	var c *checker
	defer func() {
		// CometBFT's stores panic on undecodable bytes; that is a finding.
		if r := recover(); r != nil {
			where := "chain"
			if c != nil && c.at > 0 {
				where = fmt.Sprintf("block %d", c.at)
			}
			err = fmt.Errorf("%w: %s: unreadable data: %v", ErrBroken, where, r)
		}
		rep.OK = err == nil
	}()
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return rep, err
	}
	genesis, err := types.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return rep, fmt.Errorf("%w: genesis: %v", ErrBroken, err)
	}
	data := filepath.Join(home, "data")
	ro := &opt.Options{ReadOnly: true}
	bdb, err := dbm.NewGoLevelDBWithOpts("blockstore", data, ro)
	if err != nil {
		return rep, fmt.Errorf("open block store: %w (is the node still running? stop it first)", err)
	}
	defer bdb.Close()
	sdb, err := dbm.NewGoLevelDBWithOpts("state", data, ro)
	if err != nil {
		return rep, fmt.Errorf("open consensus state: %w (is the node still running? stop it first)", err)
	}
	defer sdb.Close()
	nodeState, err := state.OpenReadOnly(filepath.Join(home, node.AppDir))
	if err != nil {
		return rep, fmt.Errorf("%w: application state: %v", ErrBroken, err)
	}
	defer nodeState.Close()

	c = &checker{
		chainID: cfg.ChainID, genesis: genesis,
		blocks: store.NewBlockStore(bdb), states: sm.NewStore(sdb, sm.StoreOptions{}),
	}
	defer func() {
		for _, f := range c.closers {
			_ = f()
		}
	}()
	if err := c.replay(ctx, &rep); err != nil {
		return rep, err
	}
	if err := c.compareState(nodeState, &rep); err != nil {
		return rep, err
	}
	return rep, checkBlobs(filepath.Join(home, node.BlobDir), nodeState, &rep)
}

// checkBlobs checks every stored blob against its name, and counts the
// blobs that committed records need but this node does not hold yet (a
// lagging node fetches them from peers; that is not corruption).
func checkBlobs(dir string, s *state.Store, rep *Report) error {
	bs, err := blob.OpenReadOnly(dir)
	if err != nil {
		return fmt.Errorf("%w: blob store: %v", ErrBroken, err)
	}
	defer bs.Close()
	err = bs.Walk(func(name string) error {
		if _, err := bs.Get(name); err != nil {
			return fmt.Errorf("%w: blob %s: %v", ErrBroken, name, err)
		}
		rep.Blobs++
		return nil
	})
	if err != nil {
		return err
	}
	view := app.New("", s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return view.Blobs(func(name string) {
		if !bs.Has(name) {
			rep.BlobsMissing++
		}
	})
}

type checker struct {
	chainID string
	genesis *types.GenesisDoc
	blocks  *store.BlockStore
	states  sm.Store
	replica *app.App
	rstore  *state.Store
	at      int64 // the height being checked, to name it on a panic
	closers []func() error
}

// replay walks the chain from genesis and re-executes it.
func (c *checker) replay(ctx context.Context, rep *Report) error {
	if c.blocks.Base() > 1 {
		return fmt.Errorf("%w: blocks below %d were pruned; verify needs the whole history", ErrBroken, c.blocks.Base())
	}
	rs, err := state.Open("")
	if err != nil {
		return err
	}
	c.rstore = rs
	c.closers = append(c.closers, rs.Close)
	c.replica = app.New(c.chainID, rs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	appHash, err := c.initChain(ctx)
	if err != nil {
		return err
	}
	var prev types.BlockID
	var lastResults []byte
	top := c.blocks.Height()
	for h := int64(1); h <= top; h++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.at = h
		b, id, err := c.checkBlock(h, top, prev)
		if err != nil {
			return err
		}
		if !bytes.Equal(b.AppHash, appHash) {
			return fmt.Errorf("%w: block %d: header app hash %X, replay gives %X", ErrBroken, h, b.AppHash, appHash)
		}
		if h > 1 && !bytes.Equal(b.LastResultsHash, lastResults) {
			return fmt.Errorf("%w: block %d: results hash does not match replay of block %d", ErrBroken, h, h-1)
		}
		appHash, lastResults, err = c.execute(ctx, b)
		if err != nil {
			return fmt.Errorf("%w: replay block %d: %v", ErrBroken, h, err)
		}
		prev = id
		rep.Blocks = h
	}
	return nil
}

func (c *checker) initChain(ctx context.Context) ([]byte, error) {
	vals := make([]abci.ValidatorUpdate, 0, len(c.genesis.Validators))
	for _, v := range c.genesis.Validators {
		vals = append(vals, abci.UpdateValidator(v.PubKey.Bytes(), v.Power, "ed25519"))
	}
	res, err := c.replica.InitChain(ctx, &abci.RequestInitChain{
		ChainId: c.genesis.ChainID, Time: c.genesis.GenesisTime, Validators: vals,
		AppStateBytes: c.genesis.AppState, InitialHeight: c.genesis.InitialHeight,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: genesis: %v", ErrBroken, err)
	}
	return res.AppHash, nil
}

// checkBlock checks block h's integrity, link to prev and commit signatures.
func (c *checker) checkBlock(h, top int64, prev types.BlockID) (*types.Block, types.BlockID, error) {
	fail := func(format string, args ...any) (*types.Block, types.BlockID, error) {
		return nil, types.BlockID{}, fmt.Errorf("%w: block %d: %s", ErrBroken, h, fmt.Sprintf(format, args...))
	}
	b := c.blocks.LoadBlock(h)
	meta := c.blocks.LoadBlockMeta(h)
	if b == nil || meta == nil {
		return fail("missing or unreadable")
	}
	if err := b.ValidateBasic(); err != nil {
		return fail("invalid: %v", err)
	}
	if b.ChainID != c.chainID || b.Height != h {
		return fail("header names chain %q height %d", b.ChainID, b.Height)
	}
	if !bytes.Equal(b.DataHash, b.Txs.Hash()) {
		return fail("transaction Merkle root does not match its transactions")
	}
	if !bytes.Equal(b.Hash(), meta.BlockID.Hash) {
		return fail("hash %X does not match the stored block ID %X", b.Hash(), meta.BlockID.Hash)
	}
	if h > 1 && !b.LastBlockID.Equals(prev) {
		return fail("does not link to block %d", h-1)
	}
	vals, err := c.states.LoadValidators(h)
	if err != nil {
		return fail("validator set: %v", err)
	}
	if !bytes.Equal(b.ValidatorsHash, vals.Hash()) {
		return fail("validators hash does not match the validator set")
	}
	commit := c.blocks.LoadSeenCommit(h)
	if h < top {
		next := c.blocks.LoadBlock(h + 1)
		if next == nil {
			return fail("block %d missing or unreadable", h+1)
		}
		commit = next.LastCommit
	}
	if commit == nil {
		return fail("no commit")
	}
	if err := vals.VerifyCommit(c.chainID, meta.BlockID, h, commit); err != nil {
		return fail("commit signatures: %v", err)
	}
	return b, meta.BlockID, nil
}

func (c *checker) execute(ctx context.Context, b *types.Block) (appHash, results []byte, err error) {
	txs := make([][]byte, len(b.Txs))
	for i, t := range b.Txs {
		txs[i] = t
	}
	res, err := c.replica.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{
		Txs: txs, Hash: b.Hash(), Height: b.Height, Time: b.Time,
		NextValidatorsHash: b.NextValidatorsHash, ProposerAddress: b.ProposerAddress,
	})
	if err != nil {
		return nil, nil, err
	}
	if _, err := c.replica.Commit(ctx, &abci.RequestCommit{}); err != nil {
		return nil, nil, err
	}
	return res.AppHash, types.NewResults(res.TxResults).Hash(), nil
}

// compareState checks the node's own state store, byte for byte, against
// its commitment and against the replay.
func (c *checker) compareState(s *state.Store, rep *Report) error {
	n, err := s.Check()
	rep.StateKeys = n
	if err != nil {
		return fmt.Errorf("%w: application state: %v", ErrBroken, err)
	}
	top := c.blocks.Height()
	want := c.rstore.Root()
	switch s.Height() {
	case top:
	case top - 1:
		// Stopped between saving block top and committing it: the node
		// replays it at the next start. Block top's header carries the app
		// hash after top-1, which the replay already matched.
		want = c.blocks.LoadBlock(top).AppHash
	default:
		return fmt.Errorf("%w: application state is at height %d, the block store at %d: one of them lost data (check data/app and data/blockstore.db)", ErrBroken, s.Height(), top)
	}
	if !bytes.Equal(s.Root(), want) {
		return fmt.Errorf("%w: application state at height %d: app hash %X, replay gives %X", ErrBroken, s.Height(), s.Root(), want)
	}
	// The indexes the commitment leaves out (state version 2) are checked
	// against the ones the replay rebuilt. A node stopped before committing
	// block top has one block fewer of them; its next start replays it.
	if s.Height() == top {
		if err := s.CompareDerived(c.rstore); err != nil {
			return fmt.Errorf("%w: application state at height %d: %v (this node's index was changed outside medchain; the keys it derives from match the chain: restore data/app from a backup taken with the node stopped)", ErrBroken, s.Height(), err)
		}
	}
	rep.Records = countRecords(s)
	return nil
}

func countRecords(s *state.Store) int64 {
	var n int64
	_ = s.Scan([]byte("record/"), func(_, _ []byte) bool { n++; return true })
	return n
}

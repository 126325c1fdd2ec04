// Package node wires a medchain node together: CometBFT consensus in
// process, the application and its state, and the HTTP API. It owns start-up
// and clean shutdown; the parts it wires hold the logic.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Where the application state and the blobs live inside a home.
const (
	AppDir  = "data/app"
	BlobDir = "data/blobs"
)

// Node is a running medchain node.
type Node struct {
	home      string
	cfg       *Config
	log       *slog.Logger
	store     *state.Store
	app       *app.App
	comet     *cmtnode.Node
	server    *http.Server
	ln        net.Listener
	blobs     *replicator
	blobStore *blob.Store
	outbox    *outbox
	ctx       context.Context // ends at Stop
	bg        sync.WaitGroup  // background work that uses the stores
	cancel    context.CancelFunc
}

// Options tune a node at start.
type Options struct {
	// CometLogLevel filters CometBFT's own logs: "error" (default), "info", "debug".
	CometLogLevel string
}

// Start opens home and starts consensus and the API. Stop it with [Node.Stop].
func Start(home string, log *slog.Logger, o Options) (*Node, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	n := &Node{home: home, cfg: cfg, log: log}
	if err := n.start(o); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(o Options) error {
	cc := n.cfg.CometConfig(n.home)
	if err := cc.ValidateBasic(); err != nil {
		return fmt.Errorf("node config: %w", err)
	}
	store, err := state.Open(filepath.Join(n.home, AppDir))
	if err != nil {
		return err
	}
	n.store = store
	n.app = app.New(n.cfg.ChainID, store, n.log)
	nodeKey, err := p2p.LoadNodeKey(cc.NodeKeyFile())
	if err != nil {
		return fmt.Errorf("load node key: %w", err)
	}
	if err := n.startBlobs(nodeKey, cc.GenesisFile()); err != nil {
		return err
	}
	id, err := loadIdentity(n.home)
	if err != nil {
		return err
	}
	if n.outbox, err = openOutbox(filepath.Join(n.home, OutboxDir), id, n.cfg.ChainID, n.log); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("api listen on %s: %w (is another node running? pick another api_addr in %s)", n.cfg.APIAddr, err, ConfigFile)
	}
	n.ln = ln
	comet, err := cmtnode.NewNode(cc,
		privval.LoadFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile()),
		nodeKey,
		proxy.NewConnSyncLocalClientCreator(n.app),
		cmtnode.DefaultGenesisDocProviderFunc(cc),
		DBProvider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation),
		cometLogger(o.CometLogLevel),
	)
	if err != nil {
		return fmt.Errorf("create consensus node: %w", err)
	}
	if err := comet.Start(); err != nil {
		return fmt.Errorf("start consensus node: %w", err)
	}
	n.comet = comet
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.outbox.run(n.ctx, n, 100*time.Millisecond)
	}()
	n.server = &http.Server{
		Handler:           api.NewHandler(n, n.blobs, n.cfg.MaxBodyBytes, n.log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       api.ReadTimeout,
		IdleTimeout:       120 * time.Second,
	}
	go func() {
		if err := n.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("api server stopped", "err", err)
		}
	}()
	n.log.Info("node started", "chain_id", n.cfg.ChainID, "node_id", nodeKey.ID(), "api", "http://"+n.cfg.APIAddr, "height", store.Height())
	return nil
}

// Stop shuts down the API, then consensus, then closes the state: nothing
// committed is lost, and a block in progress is replayed at the next start.
func (n *Node) Stop() {
	if n.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.server.Shutdown(ctx)
		cancel()
	} else if n.ln != nil {
		n.ln.Close()
	}
	if n.comet != nil && n.comet.IsRunning() {
		if err := n.comet.Stop(); err != nil {
			n.log.Error("stop consensus", "err", err)
		}
		n.comet.Wait()
	}
	if n.app != nil {
		n.app.Close()
	}
	if n.cancel != nil {
		n.cancel()
		n.bg.Wait()
	}
	if n.outbox != nil {
		if err := n.outbox.close(); err != nil {
			n.log.Error("close outbox", "err", err)
		}
	}
	if n.blobStore != nil {
		if err := n.blobStore.Close(); err != nil {
			n.log.Error("close blob store", "err", err)
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Error("close state", "err", err)
		}
	}
}

// Status implements api.Backend.
func (n *Node) Status() api.Status {
	h, root := n.store.Committed()
	st := api.Status{ChainID: n.cfg.ChainID, Height: h, AppHash: fmt.Sprintf("%X", root)}
	if n.comet != nil {
		st.NodeID = string(n.comet.NodeInfo().ID())
		// medchain has no validator updates yet: the set is genesis's.
		st.Validators = len(n.comet.GenesisDoc().Validators)
		st.Peers = n.comet.Switch().Peers().Size()
	}
	return st
}

// StoreBlobs keeps blobs here and on enough peers, as an upload through the
// API would.
func (n *Node) StoreBlobs(ctx context.Context, blobs [][]byte) error {
	b, err := blob.NewBatch(blobs)
	if err != nil {
		return err
	}
	_, err = n.blobs.StoreBlobs(ctx, b)
	return err
}

// APIURL returns the base URL of the node's API.
func (n *Node) APIURL() string { return "http://" + n.cfg.APIAddr }

// App implements api.Backend.
func (n *Node) App() *app.App { return n.app }

// Submit implements api.Backend: it checks raw through the mempool, then
// waits until the block that carries it commits.
func (n *Node) Submit(ctx context.Context, raw []byte) (app.Result, error) {
	wait, res, err := n.checkTx(raw)
	if err != nil || wait == nil {
		return res, err
	}
	return wait(ctx)
}

// SubmitAsync puts raw in the mempool without waiting for its block; wait,
// when not nil, waits for the commit. Submissions from one goroutine reach
// the mempool in order.
func (n *Node) SubmitAsync(raw []byte) (wait func(context.Context) (app.Result, error), res app.Result, err error) {
	return n.checkTx(raw)
}

// checkTx puts raw in the mempool. If the mempool takes it, wait waits for
// its commit; otherwise wait is nil and res says why.
func (n *Node) checkTx(raw []byte) (wait func(context.Context) (app.Result, error), res app.Result, err error) {
	hash := tx.Hash(raw)
	// Decode and check the signature here, on the caller's goroutine: the
	// mempool runs CheckTx one at a time, and finds the result cached.
	_, _, _ = n.app.VerifyTx(raw)
	done, cancel := n.app.Wait(hash)
	checked := make(chan *abci.ResponseCheckTx, 1)
	err = n.comet.Mempool().CheckTx(raw, func(r *abci.ResponseCheckTx) { checked <- r }, mempool.TxInfo{})
	if errors.Is(err, mempool.ErrTxInCache) {
		cancel()
		return nil, app.Result{Hash: hash, Code: app.CodeReplay, Log: "this exact transaction was already submitted; sign a new one with a fresh nonce"}, nil
	}
	if err != nil {
		cancel()
		return nil, app.Result{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	if r := <-checked; r.Code != app.CodeOK {
		cancel()
		return nil, app.Result{Hash: hash, Code: r.Code, Log: r.Log}, nil
	}
	return func(ctx context.Context) (app.Result, error) {
		defer cancel()
		select {
		case r := <-done:
			return r, nil
		case <-ctx.Done():
			return app.Result{}, fmt.Errorf("transaction %s accepted but not committed yet: %w", hash, ctx.Err())
		}
	}, app.Result{}, nil
}

// RecordAccess implements api.Backend: the read is durable here before it
// is served, and reaches the ledger in the next access batch.
func (n *Node) RecordAccess(raw []byte) error { return n.outbox.add(raw) }

func (n *Node) startBlobs(key *p2p.NodeKey, genesisFile string) error {
	bs, err := blob.Open(filepath.Join(n.home, BlobDir))
	if err != nil {
		return err
	}
	n.blobStore = bs
	peers, err := parseAPIPeers(n.cfg.APIPeers)
	if err != nil {
		return fmt.Errorf("%s: %w", ConfigFile, err)
	}
	g, err := types.GenesisDocFromFile(genesisFile)
	if err != nil {
		return fmt.Errorf("read genesis: %w", err)
	}
	n.blobs = newReplicator(bs, n.cfg.ChainID, key, peers, len(g.Validators), n.log)
	n.app.OnCommit = n.blobs.want
	n.app.BlobCheck = func(names []string) error {
		for _, b := range names {
			if !bs.Has(b) {
				return fmt.Errorf("blob %s is not stored on this node; upload it (POST /v1/blobs) before the transaction that names it", b)
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.ctx, n.cancel = ctx, cancel
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		// Catch up on blobs committed while this node was away, then keep
		// fetching what new blocks name.
		var names []string
		_ = n.app.Blobs(func(name string) { names = append(names, name) })
		n.blobs.want(names)
		n.blobs.run(ctx)
	}()
	return nil
}

func cometLogger(level string) cmtlog.Logger {
	if level == "" {
		level = "error"
	}
	l := cmtlog.NewTMLogger(cmtlog.NewSyncWriter(os.Stderr))
	opt, err := cmtlog.AllowLevel(level)
	if err != nil {
		opt = cmtlog.AllowError()
	}
	return cmtlog.NewFilter(l, opt)
}

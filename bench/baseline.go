package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	abci "github.com/cometbft/cometbft/abci/types"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"

	"github.com/medchain/medchain/node"
)

// kvApp is CometBFT's example key-value application, with the same commit
// notification medchain's application gives its submitters.
type kvApp struct {
	*kvstore.Application
	mu      sync.Mutex
	waiters map[string]chan struct{}
	block   []string
	commits atomic.Int64
}

func (a *kvApp) FinalizeBlock(ctx context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.block = a.block[:0]
	for _, t := range req.Txs {
		s := sha256.Sum256(t)
		a.block = append(a.block, hex.EncodeToString(s[:]))
	}
	return a.Application.FinalizeBlock(ctx, req)
}

func (a *kvApp) Commit(ctx context.Context, req *abci.RequestCommit) (*abci.ResponseCommit, error) {
	res, err := a.Application.Commit(ctx, req)
	a.commits.Add(1)
	a.mu.Lock()
	for _, h := range a.block {
		if c, ok := a.waiters[h]; ok {
			close(c)
			delete(a.waiters, h)
		}
	}
	a.mu.Unlock()
	return res, err
}

func (a *kvApp) wait(raw []byte) chan struct{} {
	s := sha256.Sum256(raw)
	c := make(chan struct{})
	a.mu.Lock()
	a.waiters[hex.EncodeToString(s[:])] = c
	a.mu.Unlock()
	return c
}

// baselineRun is what one run of the baseline measured.
type baselineRun struct {
	txPerS float64
	cost   phaseCost // per transaction
}

// baseline runs the kvstore application on as many nodes as medchain's run
// (homes written the same way, under dir, so configured exactly alike) and
// feeds it count transactions of txBytes bytes from the same number of
// concurrent submitters as medchain's authors, spread over the nodes, each
// waiting for its commits.
func baseline(ctx context.Context, o Options, dir string, count, txBytes int) (baselineRun, error) {
	homes, err := baselineHomes(o, dir)
	if err != nil {
		return baselineRun{}, err
	}
	var nodes []*cmtnode.Node
	var apps []*kvApp
	defer func() {
		for _, n := range nodes {
			_ = n.Stop()
			n.Wait()
		}
	}()
	for _, home := range homes {
		n, app, err := startKV(home)
		if err != nil {
			return baselineRun{}, err
		}
		nodes, apps = append(nodes, n), append(apps, app)
	}
	for nodes[0].BlockStore().Height() < 2 {
		select {
		case <-ctx.Done():
			return baselineRun{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := afterCommit(ctx, apps[0].commits.Load); err != nil {
		return baselineRun{}, fmt.Errorf("baseline: %w", err)
	}
	cpu := startCPU()
	start := time.Now()
	// The same pipelined submission as medchain's writes: each submitter
	// puts all its transactions in the mempool, then waits for each commit.
	// At most as many transactions in flight per submitter as medchain's
	// authors have records in flight (Depth batches).
	inflight := max(1, o.Depth) * max(1, o.Batch)
	err = parallel(o.Authors, o.Authors, func(a int) error {
		var waits []chan struct{}
		wait := func(done chan struct{}) error {
			select {
			case <-done:
				return nil
			case <-time.After(120 * time.Second):
				return fmt.Errorf("kvstore transaction not committed after 120 s")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for i := a; i < count; i += o.Authors {
			if len(waits) == inflight {
				if err := wait(waits[0]); err != nil {
					return err
				}
				waits = waits[1:]
			}
			key := fmt.Sprintf("k%09d", i)
			val := make([]byte, max(1, txBytes-len(key)-1))
			for j := range val {
				val[j] = 'a' + byte((i+j)%26)
			}
			raw := []byte(key + "=" + string(val))
			n, app := nodes[a%len(nodes)], apps[a%len(apps)]
			done := app.wait(raw)
			checked := make(chan uint32, 1)
			if err := n.Mempool().CheckTx(raw, func(r *abci.ResponseCheckTx) { checked <- r.Code }, mempool.TxInfo{}); err != nil {
				return err
			}
			if code := <-checked; code != 0 {
				return fmt.Errorf("kvstore rejected a transaction: code %d", code)
			}
			waits = append(waits, done)
		}
		for _, done := range waits {
			if err := wait(done); err != nil {
				return err
			}
		}
		return nil
	})
	run := baselineRun{txPerS: float64(count) / time.Since(start).Seconds(), cost: cpu.stop(count)}
	return run, err
}

// baselineHomes writes the baseline's node homes in dir, on the ports
// above medchain's.
func baselineHomes(o Options, dir string) ([]string, error) {
	base := o.BasePort + 50
	if o.Validators == 1 {
		home := dir
		_, err := node.Init(node.InitOptions{Home: home, ChainID: "kvstore-baseline", BlockTime: o.BlockTime,
			APIAddr: addr(base, 2), RPCAddr: addr(base, 1), P2PAddr: addr(base, 0)})
		return []string{home}, err
	}
	tn, err := node.Testnet(node.TestnetOptions{Out: dir, Validators: o.Validators,
		BasePort: base, ChainID: "kvstore-baseline", BlockTime: o.BlockTime})
	var homes []string
	for _, n := range tn {
		homes = append(homes, n.Home)
	}
	return homes, err
}

// startKV starts a CometBFT node with the kvstore application in home.
func startKV(home string) (*cmtnode.Node, *kvApp, error) {
	cfg, err := node.LoadConfig(home)
	if err != nil {
		return nil, nil, err
	}
	cc := cfg.CometConfig(home)
	app := &kvApp{Application: kvstore.NewPersistentApplication(filepath.Join(home, "data", "kvstore")), waiters: map[string]chan struct{}{}}
	nk, err := p2p.LoadNodeKey(cc.NodeKeyFile())
	if err != nil {
		return nil, nil, err
	}
	n, err := cmtnode.NewNode(cc, privval.LoadFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile()), nk,
		proxy.NewConnSyncLocalClientCreator(app), cmtnode.DefaultGenesisDocProviderFunc(cc), node.DBProvider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation), cmtlog.NewNopLogger())
	if err != nil {
		return nil, nil, err
	}
	if err := n.Start(); err != nil {
		return nil, nil, err
	}
	return n, app, nil
}

// maxWarmUp bounds the transactions of the baseline's warm-up run.
const maxWarmUp = 100_000

// warmUp runs the baseline once before medchain's writes, untimed for the
// ratio. Whichever system runs second in this process runs on memory the
// first one's run left the Go runtime and the C allocator, and takes far
// fewer page faults (docs/performance.md, "Which runs first"): run last,
// the baseline alone had that advantage. With the warm-up, each timed run
// follows a run of the other system.
//
// It feeds at most maxWarmUp transactions: enough to warm the memory, and
// a run of --records 1000000 does not spend another minute on it.
func (w *workload) warmUp(ctx context.Context, rep *Report) error {
	n := min(w.o.Records, maxWarmUp)
	w.o.logf("baseline warm-up: CometBFT kvstore, %d transactions of %d bytes", n, w.txBytes)
	// Its homes stay until the run's scratch directory goes: CometBFT can
	// still be writing into them for a moment after its nodes stop.
	run, err := baseline(ctx, w.o, filepath.Join(w.dir, "baseline-warmup"), n, w.txBytes)
	if err != nil {
		return err
	}
	w.o.logf("baseline warm-up: %.0f tx/s", run.txPerS)
	rep.BaselineWarmupTxPerS, rep.BaselineWarmupFaultsPerTx = run.txPerS, run.cost.faults
	return nil
}

// afterCommit returns once commits reports one more commit than it did
// when called: a timed write phase starts just after its node's commit,
// medchain's and the baseline's alike. Where the first proposal falls in
// the block cycle then differs neither between runs nor between the two
// systems: started at any other moment, an idle node proposes as soon as
// the first transaction arrives, a block of one batch, and the rest wait a
// whole cycle. An idle node commits an empty block at least every second.
func afterCommit(ctx context.Context, commits func() int64) error {
	from := commits()
	deadline := time.Now().Add(10 * time.Second)
	for commits() == from {
		if time.Now().After(deadline) {
			return fmt.Errorf("no block committed in 10 s: the node has stopped producing blocks (a full disk or an overloaded machine); free space or stop other work, then run the bench again")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

package bench

import (
	"context"
	"crypto/hpke"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// Setup pipelines its transactions instead of waiting out a block for each:
// a window keeps many in the mempool at once and waits for their blocks in
// the background. The bounds stay well inside the mempool's 20,000
// transactions and 256 MiB (node.Config.CometConfig): a patient.add is about
// 25 KB, a consent.grant about 1 KB.
const (
	addWindow   = 2000 // patient.add transactions awaiting their block
	grantWindow = 2000 // consent.grant transactions of each kind awaiting their block
	grantBatch  = 256  // patients whose grant envelopes are stored in one blob write
)

// sealChunk is how many records' plaintexts seal holds at once.
const sealChunk = 4096

// window bounds the transactions in flight: submit returns once the mempool
// has taken a transaction, and a goroutine waits for its block. The first
// failure cancels ctx with its cause, which stops every submitter and waiter
// sharing ctx.
type window struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	slots  chan struct{}
	wg     sync.WaitGroup
}

func newWindow(ctx context.Context, cancel context.CancelCauseFunc, size int) *window {
	return &window{ctx: ctx, cancel: cancel, slots: make(chan struct{}, size)}
}

// fail records err as the first failure, unless there was one already, and
// returns the cause that stopped the pipeline.
func (wn *window) fail(err error) error {
	wn.cancel(err)
	return context.Cause(wn.ctx)
}

// submit waits for a free slot and puts raw in n's mempool. Once raw's block
// commits it calls then (when not nil) before it frees the slot, so work
// that then hands on is bounded by the window too. what names the
// transaction in errors. Submissions from one goroutine to one node reach
// the mempool in order.
func (wn *window) submit(n *node.Node, raw []byte, what string, then func() error) error {
	select {
	case wn.slots <- struct{}{}:
	case <-wn.ctx.Done():
		return context.Cause(wn.ctx)
	}
	wait, res, err := n.SubmitAsync(raw)
	if err == nil && wait == nil {
		err = fmt.Errorf("rejected by CheckTx (code %d): %s", res.Code, res.Log)
	}
	if err != nil {
		<-wn.slots
		return wn.fail(fmt.Errorf("%s: %w", what, err))
	}
	wn.wg.Add(1)
	go func() {
		defer wn.wg.Done()
		defer func() { <-wn.slots }()
		res, err := wait(wn.ctx)
		if err == nil && res.Code != app.CodeOK {
			err = fmt.Errorf("rejected in block %d (code %d): %s", res.Height, res.Code, res.Log)
		}
		if err == nil && then != nil {
			err = then()
		}
		if err != nil {
			wn.fail(fmt.Errorf("%s: %w", what, err))
		}
	}()
	return nil
}

// wait waits for every transaction submitted so far and returns the first
// failure, if any. No submit may run concurrently with it.
func (wn *window) wait() error {
	wn.wg.Wait()
	if wn.ctx.Err() != nil {
		return context.Cause(wn.ctx)
	}
	return nil
}

// progress logs a phase's progress at every tenth of its total.
type progress struct {
	o     Options
	what  string
	total int64
	done  atomic.Int64
}

func (p *progress) add(k int) {
	n := p.done.Add(int64(k))
	prev := n - int64(k)
	if p.total > 0 && prev*10/p.total != n*10/p.total {
		p.o.logf("setup: %s %d/%d (%d%%)", p.what, n, p.total, n*100/p.total)
	}
}

// generateParallel makes n identities on every core: ML-KEM key generation
// is most of a patient's setup cost after registration itself.
func generateParallel(n int) ([]ident.Private, error) {
	out := make([]ident.Private, n)
	err := parallel(n, runtime.NumCPU(), func(i int) error {
		k, err := ident.Generate()
		if err != nil {
			return fmt.Errorf("identity %d: %w", i, err)
		}
		out[i] = k
		return nil
	})
	return out, err
}

// patientSetup is the state shared by the patient registration pipeline:
// registerPatient prepares a patient's transactions and submits its
// patient.add; when that commits, its consent grants go to grant, which
// stores their key envelopes for many patients at once and submits them.
type patientSetup struct {
	ctx        context.Context
	adds       *window         // patient.add
	grants     *window         // write consents
	reads      *window         // read consents, each sent once its patient's write consent commits
	ready      chan *grantWork // patients registered, grants not yet submitted
	boxes      []hpke.PublicKey
	registered *progress
	granted    *progress
}

// grantWork is one registered patient's consents, signed and ready.
type grantWork struct {
	p     int
	blobs [][]byte  // the reader's wrapped epoch keys
	raws  [2][]byte // write consent for the author, read consent for the reader
}

// pipelineSetup registers every patient and grants its consents, with at
// most addWindow registrations and grantWindow grants of each kind awaiting
// their blocks.
func (w *workload) pipelineSetup(ctx context.Context) error {
	o := w.o
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ps := &patientSetup{
		ctx:        pctx,
		adds:       newWindow(pctx, cancel, addWindow),
		grants:     newWindow(pctx, cancel, grantWindow),
		reads:      newWindow(pctx, cancel, grantWindow),
		ready:      make(chan *grantWork, grantBatch),
		boxes:      make([]hpke.PublicKey, len(w.members)),
		registered: &progress{o: o, what: "patients registered", total: int64(o.Patients)},
		granted:    &progress{o: o, what: "consents granted", total: 2 * int64(o.Patients)},
	}
	for i, m := range w.members {
		b, err := m.Public().BoxKey()
		if err != nil {
			return fmt.Errorf("member %d: %w", i, err)
		}
		ps.boxes[i] = b
	}
	granting := make(chan error, 1)
	go func() {
		err := w.grant(ps)
		if err != nil {
			err = ps.grants.fail(err)
		}
		granting <- err
	}()
	err := parallel(o.Patients, runtime.NumCPU(), func(p int) error {
		if err := w.registerPatient(ps, p); err != nil {
			return ps.adds.fail(err)
		}
		return nil
	})
	if werr := ps.adds.wait(); err == nil {
		err = werr
	}
	close(ps.ready) // every committed registration has handed on its grants
	if gerr := <-granting; err == nil {
		err = gerr
	}
	if werr := ps.grants.wait(); err == nil {
		err = werr
	}
	if werr := ps.reads.wait(); err == nil { // after grants: its waiters submit here
		err = werr
	}
	return err
}

// submitInOrder puts one signer's transactions in node n's mempool in
// nonce order (CheckTx accepts a signer's next nonce while the previous one
// is pending) and waits for all of their blocks: back to back on a single
// node; one block at a time on a network (peers > 0), where a later one was
// seen committed before an earlier one, whose nonce was then stale (once in
// eight 4-validator runs; how gossip reordered them is not pinned down).
func submitInOrder(ctx context.Context, n *node.Node, peers int, raws [][]byte, what func(i int) string) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	size := max(1, len(raws))
	if peers > 0 {
		size = 1
	}
	win := newWindow(cctx, cancel, size)
	for i, raw := range raws {
		if err := win.submit(n, raw, what(i), nil); err != nil {
			break
		}
	}
	return win.wait()
}

// epochKeys derives a patient's first epoch keys as client.EpochPubs does,
// and keeps the private halves of benchCategories' (in that order) for the
// reader's grant to wrap, so they are derived once.
func epochKeys(k ident.Private) ([]tx.EpochPub, []hpke.PrivateKey, error) {
	eps := make([]tx.EpochPub, 0, len(consent.Categories))
	keys := make([]hpke.PrivateKey, len(benchCategories))
	for _, c := range consent.Categories {
		ek, err := seal.EpochKey(k, c, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("epoch key of %s: %w", c, err)
		}
		eps = append(eps, tx.EpochPub{Category: c, Epoch: 0, Key: ek.PublicKey().Bytes()})
		if i := slices.Index(benchCategories, c); i >= 0 {
			keys[i] = ek
		}
	}
	return eps, keys, nil
}

// grantActions are what a patient's two consents allow: its author writes,
// its reader reads.
var grantActions = [2]string{"write", "read"}

// consents wraps patient p's epoch keys (keys, in benchCategories order) for
// its reader and signs its two grants: write consent for its author, read
// consent with the wrapped keys for its reader.
func (w *workload) consents(ps *patientSetup, p int, keys []hpke.PrivateKey) (*grantWork, error) {
	k := w.patients[p]
	pid := k.ID()
	rd := w.members[w.reader[p]]
	rid := rd.ID()
	g := &grantWork{p: p, blobs: make([][]byte, 0, len(benchCategories))}
	envs := make([]tx.KeyEnvelope, 0, len(benchCategories))
	for i, cat := range benchCategories {
		env, err := seal.WrapEpochKey(ps.boxes[w.reader[p]], keys[i], client.KeyContext(w.chain, pid, cat, 0, rid))
		if err != nil {
			return nil, fmt.Errorf("wrap the %s epoch key for the reader: %w", cat, err)
		}
		g.blobs = append(g.blobs, env)
		envs = append(envs, tx.KeyEnvelope{Category: cat, Epoch: 0, Holder: rid, Blob: blob.Hash(env)})
	}
	grantees := [2]string{w.members[w.author[p]].ID(), rid}
	for j := range g.raws {
		body := tx.ConsentGrant{Grantee: grantees[j], Categories: benchCategories, Purposes: []string{"treatment"}, Actions: []string{grantActions[j]}}
		if j == 1 {
			body.Keys = envs
		}
		raw, err := w.signed(k, tx.TypeConsentGrant, body)
		if err != nil {
			return nil, fmt.Errorf("sign the %s consent: %w", grantActions[j], err)
		}
		g.raws[j] = raw
	}
	return g, nil
}

// pack moves the blobs of records into one allocation: sealed one by one,
// they are three allocations each whose size classes waste about 300 bytes
// a record, 300 MB a million records.
func pack(records []pending) {
	n, k := 0, 0
	for _, r := range records {
		for _, b := range r.blobs {
			n += len(b)
		}
		k += len(r.blobs)
	}
	buf := make([]byte, 0, n)
	hdrs := make([][]byte, 0, k)
	for i := range records {
		r := &records[i]
		from := len(hdrs)
		for _, b := range r.blobs {
			at := len(buf)
			buf = append(buf, b...)
			hdrs = append(hdrs, buf[at:len(buf):len(buf)])
		}
		r.blobs = hdrs[from:len(hdrs):len(hdrs)]
	}
}

// synced waits until every node has committed the blocks node 0 has: a
// transaction checked on another node sees what node 0 saw commit.
func (w *workload) synced(ctx context.Context) error {
	return w.syncedAt(ctx, w.nodes[0].Status().Height)
}

// syncedAt waits until every node has committed height h.
func (w *workload) syncedAt(ctx context.Context, h int64) error {
	deadline := time.Now().Add(60 * time.Second)
	for i, n := range w.nodes {
		for n.Status().Height < h {
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d is still below height %d after 60 s", i, h)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

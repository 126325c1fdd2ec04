package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// categories the workload writes; each patient consents to all of them.
var benchCategories = []string{"laboratory", "vital-signs", "clinical-note", "imaging"}

// record is one record of the workload as the bench keeps it for the whole
// run: who writes it, whose it is and its ID, and no pointer. The bench
// shares its process with the node, whose garbage collector goes through
// whatever the bench keeps on every cycle: kept with their transaction
// bodies, 300,000 records were half the heap it scanned
// (docs/performance.md, "Reads at scale: the tail").
type record struct {
	author, patient int32
	id              [16]byte // the ID is "r" and these bytes in hex (client.RecordID)
}

// ID returns the record's ID.
func (r *record) ID() string { return "r" + hex.EncodeToString(r.id[:]) }

// pending is what writing a record takes, kept only until it is written.
type pending struct {
	body  tx.RecordPut
	blobs [][]byte // nil once stored
}

type workload struct {
	o           Options
	dir         string
	chain       string
	nodes       []*node.Node
	homes       []string
	admin       ident.Private
	orgs        []ident.Private
	members     []ident.Private // authors first, then readers
	patients    []ident.Private // nil after seal; see patientIDs
	patientIDs  []string
	author      []int // patient -> member index that writes for it
	reader      []int // patient -> member index that reads under consent
	records     []record
	pending     []pending // records[pendingFrom+i] is written with pending[i]
	pendingFrom int
	written     []int // indexes into records, in commit order
	txBytes     int
	setupDu     int64
	rng         *rand.Rand
}

func newWorkload(ctx context.Context, o Options, dir string) (*workload, error) {
	w := &workload{o: o, dir: dir, chain: "medchain-bench", rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	var err error
	if w.admin, err = ident.Generate(); err != nil {
		return nil, err
	}
	admins := []string{w.admin.Public().String()}
	if o.Validators == 1 {
		home := filepath.Join(dir, "node0")
		_, err = node.Init(node.InitOptions{Home: home, ChainID: w.chain, Admins: admins, BlockTime: o.BlockTime,
			APIAddr: addr(o.BasePort, 2), RPCAddr: addr(o.BasePort, 1), P2PAddr: addr(o.BasePort, 0)})
		w.homes = []string{home}
	} else {
		var tn []node.TestnetNode
		tn, err = node.Testnet(node.TestnetOptions{Out: filepath.Join(dir, "net"), Validators: o.Validators, BasePort: o.BasePort, ChainID: w.chain, Admins: admins, BlockTime: o.BlockTime})
		for _, n := range tn {
			w.homes = append(w.homes, n.Home)
		}
	}
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, h := range w.homes {
		n, err := node.Start(h, quiet, node.Options{CometLogLevel: "none"})
		if err != nil {
			w.close()
			return nil, err
		}
		w.nodes = append(w.nodes, n)
	}
	o.logf("started %d node(s); waiting for the first blocks", len(w.nodes))
	return w, w.waitHeight(ctx, 2)
}

func addr(base, off int) string { return fmt.Sprintf("127.0.0.1:%d", base+off) }

func (w *workload) close() {
	for _, n := range w.nodes {
		n.Stop()
	}
	w.nodes = nil
}

func (w *workload) waitHeight(ctx context.Context, h int64) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if w.nodes[0].Status().Height >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no block after 60 s")
}

// nonces hands out strictly increasing nonces, shared by all signers.
var nonceCounter atomic.Uint64

func nextNonce() uint64 {
	for {
		now := uint64(time.Now().UnixNano())
		old := nonceCounter.Load()
		n := max(now, old+1)
		if nonceCounter.CompareAndSwap(old, n) {
			return n
		}
	}
}

func (w *workload) signed(key ident.Private, typ tx.Type, body any) ([]byte, error) {
	t, err := tx.New(typ, key.ID(), nextNonce(), body)
	if err != nil {
		return nil, err
	}
	if err := t.Sign(w.chain, key.Sign); err != nil {
		return nil, err
	}
	return t.Encode()
}

// parallel runs f(i) for i in [0,n) on up to k goroutines.
func parallel(n, k int, f func(i int) error) error {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs error
		wg   sync.WaitGroup
	)
	for range min(n, k) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if errs == nil {
						errs = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func generate(n int) ([]ident.Private, error) {
	out := make([]ident.Private, n)
	for i := range out {
		k, err := ident.Generate()
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// setup registers organizations, members, patients and their consents.
// Transactions are pipelined: many wait in the mempool together instead of
// each waiting out its block before the next is sent.
func (w *workload) setup(ctx context.Context) error {
	o := w.o
	var err error
	nOrgs := 4
	if w.orgs, err = generate(nOrgs); err != nil {
		return err
	}
	if w.members, err = generate(o.Authors * 2); err != nil {
		return err
	}
	o.logf("setup: generating %d patient identities on %d cores", o.Patients, runtime.NumCPU())
	if w.patients, err = generateParallel(o.Patients); err != nil {
		return fmt.Errorf("patient identities: %w", err)
	}
	// Who writes and who reads for each patient. Nothing else draws from
	// w.rng before this, so a seed gives the workload it always gave.
	w.author = make([]int, o.Patients)
	w.reader = make([]int, o.Patients)
	for p := range w.author {
		w.author[p] = w.rng.IntN(o.Authors)
		w.reader[p] = o.Authors + w.rng.IntN(o.Authors)
	}
	o.logf("setup: %d organizations, %d members, %d patients", nOrgs, len(w.members), o.Patients)
	// One signer's transactions go to one node, back to back, in nonce order.
	orgs := make([][]byte, nOrgs)
	for i, org := range w.orgs {
		if orgs[i], err = w.signed(w.admin, tx.TypeOrgAdd, tx.OrgAdd{Public: org.Public().String(), Name: fmt.Sprintf("Hospital %d", i)}); err != nil {
			return err
		}
	}
	if err := submitInOrder(ctx, w.nodes[0], len(w.nodes)-1, orgs, func(i int) string { return fmt.Sprintf("org add %d", i) }); err != nil {
		return err
	}
	if err := w.synced(ctx); err != nil { // each org's members go to its own node
		return err
	}
	err = parallel(nOrgs, nOrgs, func(oi int) error {
		var raws [][]byte
		for m := oi; m < len(w.members); m += nOrgs {
			raw, err := w.signed(w.orgs[oi], tx.TypeMemberAdd, tx.MemberAdd{Public: w.members[m].Public().String(), Role: "physician"})
			if err != nil {
				return err
			}
			raws = append(raws, raw)
		}
		return submitInOrder(ctx, w.nodes[oi%len(w.nodes)], len(w.nodes)-1, raws, func(i int) string { return fmt.Sprintf("member add %d", oi+i*nOrgs) })
	})
	if err != nil {
		return err
	}
	o.logf("setup: registering patients and granting consents (up to %d registrations and %d grants awaiting blocks)", addWindow, 2*grantWindow)
	if err := w.pipelineSetup(ctx); err != nil {
		return err
	}
	w.setupDu, err = du(w.homes[0])
	return err
}

// registerPatient derives patient p's epoch keys, signs its patient.add and
// its two consent grants, and submits the patient.add. Once that commits,
// the grants go to grant: they need the patient on the ledger.
func (w *workload) registerPatient(ps *patientSetup, p int) error {
	k := w.patients[p]
	eps, keys, err := epochKeys(k)
	if err != nil {
		return fmt.Errorf("patient %d: %w", p, err)
	}
	raw, err := w.signed(k, tx.TypePatientAdd, tx.PatientAdd{Public: k.Public().String(), Epochs: eps})
	if err != nil {
		return fmt.Errorf("patient %d: %w", p, err)
	}
	g, err := w.consents(ps, p, keys) // signed after the patient.add: higher nonces
	if err != nil {
		return fmt.Errorf("patient %d: %w", p, err)
	}
	return ps.adds.submit(w.nodes[p%len(w.nodes)], raw, fmt.Sprintf("register patient %d", p), func() error {
		ps.registered.add(1)
		select {
		case ps.ready <- g:
			return nil
		case <-ps.ctx.Done():
			return context.Cause(ps.ctx)
		}
	})
}

// grant submits the consents of registered patients as they arrive: it
// stores the key envelopes of up to grantBatch patients in one blob write
// per node, then puts each patient's write consent in the mempool, and its
// read consent once that commits. Sent back to back, the two could reach
// another validator's block out of nonce order, and the second would fail.
func (w *workload) grant(ps *patientSetup) error {
	for {
		var batch []*grantWork
		select {
		case g, ok := <-ps.ready:
			if !ok {
				return nil
			}
			batch = append(batch, g)
		case <-ps.ctx.Done():
			return context.Cause(ps.ctx)
		}
	fill:
		for len(batch) < grantBatch {
			select {
			case g, ok := <-ps.ready:
				if !ok {
					break fill
				}
				batch = append(batch, g)
			default:
				break fill
			}
		}
		blobs := make([][][]byte, len(w.nodes))
		for _, g := range batch {
			i := g.p % len(w.nodes)
			blobs[i] = append(blobs[i], g.blobs...)
		}
		for i, b := range blobs {
			if len(b) == 0 {
				continue
			}
			if err := w.nodes[i].StoreBlobs(ps.ctx, b); err != nil {
				return fmt.Errorf("store %d consent key envelopes on node %d: %w", len(b), i, err)
			}
		}
		for _, g := range batch {
			n := w.nodes[g.p%len(w.nodes)]
			what := func(j int) string { return fmt.Sprintf("consent grant (%s) of patient %d", grantActions[j], g.p) }
			read := func() error {
				ps.granted.add(1)
				return ps.reads.submit(n, g.raws[1], what(1), func() error { ps.granted.add(1); return nil })
			}
			if err := ps.grants.submit(n, g.raws[0], what(0), read); err != nil {
				return err
			}
		}
	}
}

// fhirLike returns a FHIR-like JSON observation of about size bytes.
func fhirLike(rng *rand.Rand, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"%d-%d"}]},"valueQuantity":{"value":%d,"unit":"mg/dL"},"note":"`, rng.IntN(99999), rng.IntN(9), rng.IntN(400))
	const alphabet = "abcdefghijklmnopqrstuvwxyz      "
	for b.Len() < size-3 {
		b.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	b.WriteString(`"}`)
	return b.Bytes()
}

// seal encrypts every record as its author's client would. This is client
// work, measured here but kept out of the write figures. Plaintexts are
// made a chunk at a time, in the order the seed gives, and dropped once
// sealed: a record keeps only what the writes send.
func (w *workload) seal(ctx context.Context, rep *Report) error {
	o := w.o
	total := o.Records + o.PacedRecords // the paced writes' after the others
	w.records, w.pending = make([]record, total), make([]pending, total)
	ids := packedIDs(w.patients) // shared by each patient's records
	o.logf("sealing %d records (client side)", total)
	plain := make([][]byte, sealChunk)
	var took time.Duration // sealing alone, as SealPerS always measured
	for lo := 0; lo < total; lo += sealChunk {
		hi := min(lo+sealChunk, total)
		for i := lo; i < hi; i++ {
			p := w.rng.IntN(o.Patients)
			size := 1024 + w.rng.IntN(3*1024+1)
			if o.BigEvery > 0 && i%o.BigEvery == o.BigEvery-1 {
				size = 1 << 20
			}
			cat := benchCategories[w.rng.IntN(len(benchCategories))]
			w.records[i] = record{author: int32(w.author[p]), patient: int32(p)}
			w.pending[i] = pending{body: tx.RecordPut{Patient: ids[p], Category: cat, ContentType: "application/fhir+json"}}
			plain[i-lo] = fhirLike(w.rng, size)
		}
		start := time.Now()
		err := parallel(hi-lo, runtime.NumCPU(), func(j int) error {
			i := lo + j
			r, pd := &w.records[i], &w.pending[i]
			pk, err := seal.EpochKey(w.patients[r.patient], pd.body.Category, 0)
			if err != nil {
				return fmt.Errorf("record %d: epoch key: %w", i, err)
			}
			aad := client.RecordAAD(w.chain, pd.body.Patient, pd.body.Category, 0)
			s, err := seal.SealRecord(plain[j], aad, pk.PublicKey())
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			self, err := seal.WrapForSelf(w.members[r.author], s.DEK, aad)
			if err != nil {
				return fmt.Errorf("record %d: wrap for its author: %w", i, err)
			}
			pd.blobs = [][]byte{s.Ciphertext, s.EpochEnvelope, self}
			pd.body.Size = int64(len(plain[j]))
			pd.body.Ciphertext = hex.EncodeToString(s.CiphertextHash[:])
			pd.body.Commitment = hex.EncodeToString(s.Commitment[:])
			pd.body.EpochEnv = blob.Hash(s.EpochEnvelope)
			pd.body.SelfEnv = blob.Hash(self)
			id := client.RecordID(pd.body.Ciphertext)
			if n, err := hex.Decode(r.id[:], []byte(id[1:])); err != nil || n != len(r.id) || r.ID() != id {
				return fmt.Errorf("record %d: ID %q is not r and %d hex bytes", i, id, len(r.id))
			}
			plain[j] = nil
			return nil
		})
		took += time.Since(start)
		if err != nil {
			return err
		}
		pack(w.pending[lo:hi])
		if err := ctx.Err(); err != nil {
			return err
		}
		if prev := lo * 10 / total; prev != hi*10/total {
			o.logf("sealed %d/%d records (%d%%)", hi, total, hi*100/total)
		}
	}
	rep.SealPerS = float64(total) / took.Seconds()
	// Only setup and seal use the patients' keys (8.5 KB of HPKE key
	// each, and a signing key Go's ed25519 keeps expanded in a cache of a
	// few objects): drop them for the rest of the run, and keep the IDs.
	w.patientIDs, w.patients = ids, nil
	return nil
}

// measureTxBytes sets txBytes, the size of one record's own transaction:
// the size of the baseline's transactions.
func (w *workload) measureTxBytes() error {
	raw, err := w.signed(w.members[0], tx.TypeRecordPut, w.pending[0].body)
	if err != nil {
		return err
	}
	w.txBytes = len(raw)
	return nil
}

// writes has every author submit its records concurrently.
func (w *workload) writes(ctx context.Context, rep *Report) error {
	o := w.o
	queues := make([][]int, o.Authors)
	for i, r := range w.records[:o.Records] {
		queues[r.author] = append(queues[r.author], i)
	}
	o.logf("writing %d records from %d authors", o.Records, o.Authors)
	lat := make([]time.Duration, o.Records)
	var mu sync.Mutex
	var top int64 // the highest block holding a record
	if err := afterCommit(ctx, func() int64 { return w.nodes[0].Status().Height }); err != nil {
		return fmt.Errorf("writes: %w", err)
	}
	h0 := w.nodes[0].Status().Height
	end := o.phase("writes")
	cpu := startCPU()
	start := time.Now()
	batch := max(1, o.Batch)
	rep.Batch = batch
	depth := max(1, o.Depth)
	err := parallel(o.Authors, o.Authors, func(a int) error {
		type inflight struct {
			chunk []int
			t0    time.Time
			wait  func(context.Context) (app.Result, error)
		}
		var sent []inflight
		q := queues[a]
		for len(q) > 0 || len(sent) > 0 {
			// Pipelined: up to depth batches in flight per author.
			for len(q) > 0 && len(sent) < depth {
				chunk := q[:min(batch, len(q))]
				q = q[len(chunk):]
				t0 := time.Now()
				wait, err := w.writeChunk(ctx, a, chunk)
				if err != nil {
					return err
				}
				sent = append(sent, inflight{chunk, t0, wait})
			}
			s := sent[0]
			sent = sent[1:]
			res, err := s.wait(ctx)
			if err != nil {
				return err
			}
			if res.Code != app.CodeOK {
				return fmt.Errorf("record write rejected (code %d): %s", res.Code, res.Log)
			}
			d := time.Since(s.t0)
			mu.Lock()
			for _, i := range s.chunk {
				lat[i] = d
			}
			w.written = append(w.written, s.chunk...)
			top = max(top, res.Height)
			mu.Unlock()
		}
		return nil
	})
	el := time.Since(start)
	c := cpu.stop(len(w.written))
	rep.WriteCPUUsPerRecord, rep.WriteCPUBusy, rep.WriteFaultsPerRecord = c.cpuUs, c.busy, c.faults
	rep.WriteSteal = c.steal
	end()
	// The records' sealed contents, dropped as each was stored, are left to
	// the runtime, which hands memory it no longer needs back to the system
	// in the background. Forcing it all back here (debug.FreeOSMemory), as
	// the bench once did, also took the node's own free heap, which shares
	// this process: the reads then faulted every page of it in again, which
	// no running node does, at ~13 µs a fault on a virtual machine without
	// hardware page tables (docs/performance.md, "Page faults").
	rep.Records = len(w.written)
	rep.RecordsPerS = float64(len(w.written)) / el.Seconds()
	rep.WriteP50Ms, rep.WriteP99Ms = percentile(lat, 50), percentile(lat, 99)
	if blocks := w.nodes[0].Status().Height - h0; blocks > 0 {
		rep.BlockIntervalMs = float64(el.Milliseconds()) / float64(blocks)
	}
	o.logf("writes: %.0f records/s, p50 %.0f ms, p99 %.0f ms", rep.RecordsPerS, rep.WriteP50Ms, rep.WriteP99Ms)
	if err != nil {
		return err
	}
	// Only the paced writes' records remain to be written: see record.
	w.pending, w.pendingFrom = slices.Clone(w.pending[o.Records:]), o.Records
	// Each author waited for its own node's commit; the decisions and
	// reads that follow ask every node about every record.
	return w.syncedAt(ctx, top)
}

// writeChunk stores the blobs of records and puts them in the mempool: one
// record.put, or one record.batch for several.
func (w *workload) writeChunk(ctx context.Context, a int, chunk []int) (func(context.Context) (app.Result, error), error) {
	var blobs [][]byte
	var body tx.RecordBatch
	for _, i := range chunk {
		pd := &w.pending[i-w.pendingFrom]
		blobs = append(blobs, pd.blobs...)
		body.Records = append(body.Records, pd.body)
	}
	n := w.nodes[a%len(w.nodes)]
	if err := n.StoreBlobs(ctx, blobs); err != nil {
		return nil, err
	}
	for _, i := range chunk {
		w.pending[i-w.pendingFrom].blobs = nil // the nodes hold them now
	}
	var raw []byte
	var err error
	if len(chunk) == 1 {
		raw, err = w.signed(w.members[a], tx.TypeRecordPut, body.Records[0])
	} else {
		raw, err = w.signed(w.members[a], tx.TypeRecordBatch, body)
	}
	if err != nil {
		return nil, err
	}
	wait, res, err := n.SubmitAsync(raw)
	if err != nil {
		return nil, err
	}
	if wait == nil {
		return nil, fmt.Errorf("record write rejected (code %d): %s", res.Code, res.Log)
	}
	return wait, nil
}

// reads has readers fetch random records under their consents through the
// HTTP API, as a clinician's client does. Decryption is client work and is
// left out.
func (w *workload) reads(ctx context.Context, rep *Report) error {
	o := w.o
	if o.Reads == 0 {
		return nil
	}
	byPatient := indexByPatient(w.records, w.written, len(w.reader))
	patients := byPatient.patients()
	k := max(o.ReadBatch, 1)
	f, err := w.readPhase("reads", byPatient, patients, k, o.Seed)
	if err != nil {
		return err
	}
	rep.Reads, rep.ReadBatch = f.n, k
	rep.ReadsPerS, rep.ReadP50Ms, rep.ReadP99Ms = f.perS, f.p50, f.p99
	rep.ReadCPUUsPerRead, rep.ReadCPUBusy, rep.ReadFaultsPerRead, rep.ReadSteal = f.cost.cpuUs, f.cost.busy, f.cost.faults, f.cost.steal
	rep.SingleReadsPerS, rep.SingleReadP50Ms, rep.SingleReadP99Ms = f.perS, f.p50, f.p99
	rep.SingleReadCPUUs, rep.SingleReadFaultsPerRead, rep.SingleReadSteal = f.cost.cpuUs, f.cost.faults, f.cost.steal
	read, seen := f.n, f.patients
	if k > 1 {
		// The same number of records again, one per request, so that every
		// run also shows what a one-record read costs.
		if f, err = w.readPhase("single-reads", byPatient, patients, 1, o.Seed^0x5eed); err != nil {
			return err
		}
		rep.SingleReadsPerS, rep.SingleReadP50Ms, rep.SingleReadP99Ms = f.perS, f.p50, f.p99
		rep.SingleReadCPUUs, rep.SingleReadFaultsPerRead, rep.SingleReadSteal = f.cost.cpuUs, f.cost.faults, f.cost.steal
		read, seen = read+f.n, append(seen, f.patients...)
	}
	// The paced reads measure a node at a steady load, not one still
	// recording the reads of the closed-loop phases: those phases' access
	// events reach the ledger first, untimed.
	if o.PacedReadRate > 0 && o.PacedReads > 0 {
		if err := w.accounted(ctx, seen, read); err != nil {
			return err
		}
	}
	paced, err := w.pacedReads(ctx, rep, byPatient, patients)
	if err != nil {
		return err
	}
	return w.accounted(ctx, append(seen, paced...), read+len(paced))
}

// accounted waits until the patients' access logs on the ledger hold one
// event for each record read, no fewer and no more: every disclosure the
// bench caused must reach the patient, once. Untimed.
func (w *workload) accounted(ctx context.Context, patients []int, want int) error {
	patients = slices.Compact(slices.Sorted(slices.Values(patients))) // a copy: the caller's stays as it was
	a := w.nodes[0].App()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := 0
		for _, p := range patients {
			evs, err := a.AccessLog(w.patientIDs[p])
			if err != nil {
				return fmt.Errorf("access log of patient %d: %w", p, err)
			}
			got += len(evs)
		}
		switch {
		case got > want:
			return fmt.Errorf("%d access events on the ledger for %d records read", got, want)
		case got == want:
			w.o.logf("access events: %d on the ledger, one per record read", got)
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%d of %d access events on the ledger 60 s after the reads", got, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readFigures are one read phase's measurements: records read per second,
// request latency percentiles in ms, and the phase's cost per record read.
type readFigures struct {
	n              int
	perS, p50, p99 float64
	cost           phaseCost
	patients       []int // whose records each request read
}

// readPhase reads --reads records with --readers concurrent readers, k per
// request.
func (w *workload) readPhase(name string, byPatient byPatient, patients []int, k int, seed uint64) (readFigures, error) {
	o := w.o
	requests := (o.Reads + k - 1) / k
	o.logf("%s: %d records with %d readers, %d per request", name, o.Reads, o.Readers, k)
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Readers}}
	defer hc.CloseIdleConnections()
	lat := make([]time.Duration, requests)
	who := make([]int, requests)
	var read atomic.Int64 // a patient with fewer than k records gives fewer
	end := o.phase(name)
	cpu := startCPU()
	start := time.Now()
	err := parallel(requests, o.Readers, func(i int) error {
		// Request i reads records of one patient, as a clinician opening
		// the patient's chart would: k distinct ones (or all the patient
		// has), the last request only what is left of --reads.
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		p := patients[rng.IntN(len(patients))]
		who[i] = p
		recs := byPatient.of(p)
		n := min(k, o.Reads-i*k, len(recs))
		ids := make([]string, 0, n)
		for _, j := range rng.Perm(len(recs))[:n] {
			ids = append(ids, w.records[recs[j]].ID())
		}
		t0 := time.Now()
		err := w.read(hc, w.nodes[i%len(w.nodes)].APIURL(), w.members[w.reader[p]], ids, k > 1)
		lat[i] = time.Since(t0)
		read.Add(int64(n))
		return err
	})
	el := time.Since(start)
	f := readFigures{n: int(read.Load()), patients: who}
	f.cost = cpu.stop(f.n)
	end()
	f.perS = float64(f.n) / el.Seconds()
	f.p50, f.p99 = percentile(lat, 50), percentile(lat, 99)
	o.logf("%s: %.0f records/s, p50 %.1f ms, p99 %.1f ms per request", name, f.perS, f.p50, f.p99)
	return f, err
}

// read reads ids as reader through the node at api: one record by
// POST /v1/records/{id}/read, or, when many, all of them by one access.many
// request to POST /v1/records/read. The whole answer is read; decoding it
// (base64 and JSON) is the reader's work, like decryption, and is done
// only to report a failure.
func (w *workload) read(hc *http.Client, api string, reader ident.Private, ids []string, many bool) error {
	url, typ, body := api+"/v1/records/"+ids[0]+"/read", tx.TypeAccess, any(tx.Access{Record: ids[0], Purpose: "treatment"})
	want := []byte(`{"record":{"id":"` + ids[0] + `"`)
	if many {
		url, typ, body = api+"/v1/records/read", tx.TypeAccessMany, tx.AccessMany{Records: ids, Purpose: "treatment"}
		want = []byte(`{"reads":[{"record":{"id":"` + ids[0] + `"`)
	}
	raw, err := w.signed(reader, typ, body)
	if err != nil {
		return err
	}
	resp, err := hc.Post(url, "application/json", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Log string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		return fmt.Errorf("read %s: HTTP %d %s%s", ids[0], resp.StatusCode, e.Error, e.Log)
	}
	// The whole answer is read, as a reader would; only its start is kept.
	// (Collecting it with io.ReadAll, its buffer grown as it came, was an
	// eighth of the read phase's CPU at 100,000 records.)
	head := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, want) {
		return fmt.Errorf("read %s: the answer does not begin with the record read (%q, %v)", ids[0], head, err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("read %s: %w", ids[0], err)
	}
	return nil
}

// footprint is the growth of node0's home per record written.
func (w *workload) footprint(rep *Report) error {
	n, err := du(w.homes[0])
	if err != nil {
		return err
	}
	if rep.Records > 0 {
		rep.BytesPerRecord = float64(n-w.setupDu) / float64(rep.Records)
	}
	return nil
}

func du(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return nil
	})
	return n, err
}

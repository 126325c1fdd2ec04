package app

import (
	"sync"
	"sync/atomic"

	"github.com/medchain/medchain/tx"
)

// prefetch does, on a second goroutine while FinalizeBlock executes a block
// in order, the part of each new record's work that depends only on the
// committed state and the transaction: the record's encoded state value
// and, in a block that checks record IDs as it goes (idcheck.go), whether
// the ID is already committed. It walks the block from
// its last transaction back and stops where the in-order execution has got
// to, so the two split the block between two cores.
//
// Nothing it computes is a decision. The committed state cannot change
// during FinalizeBlock, so its answers are the ones the in-order execution
// would read; that execution still checks the block's own earlier writes
// itself (state.Delta.Pending) and makes every check. A transaction the
// prefetcher did not reach, or found no verified form of, is executed
// without it. TestPrefetchChangesNothing checks that blocks reach the same
// state and results with and without it.
type prefetch struct {
	ready []atomic.Pointer[txPrefetch] // by transaction index
	next  atomic.Int64                 // the first transaction FinalizeBlock has not started
	stop  atomic.Bool
	wg    sync.WaitGroup
}

// Prefetch modes, for tests: prefetchAll computes everything before the
// block executes, prefetchOff nothing.
const (
	prefetchAuto = iota
	prefetchOff
	prefetchAll
)

// txPrefetch is what was prefetched for one record transaction, by record
// ID.
type txPrefetch map[string]recordPrefetch

type recordPrefetch struct {
	committed bool   // the ID is in the committed state
	value     []byte // the record's state value, as putRecord encodes it
}

// startPrefetch starts the prefetcher for a block at height and time,
// looking up whether each record ID is committed if lookup is set. Call
// finish before FinalizeBlock returns.
func (a *App) startPrefetch(txs [][]byte, height, time int64, lookup bool) *prefetch {
	p := &prefetch{ready: make([]atomic.Pointer[txPrefetch], len(txs))}
	switch {
	case a.prefetchMode == prefetchOff || len(txs) < 2 && a.prefetchMode == prefetchAuto:
		return p // nothing to split
	case a.prefetchMode == prefetchAll:
		for i, raw := range txs {
			if pre := a.prefetchTx(raw, height, time, lookup); pre != nil {
				p.ready[i].Store(pre)
			}
		}
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := len(txs) - 1; i >= 0 && !p.stop.Load() && int64(i) >= p.next.Load(); i-- {
			if pre := a.prefetchTx(txs[i], height, time, lookup); pre != nil {
				p.ready[i].Store(pre)
			}
		}
	}()
	return p
}

// take marks transaction i as started and returns what was prefetched for
// it, or nil.
func (p *prefetch) take(i int) txPrefetch {
	p.next.Store(int64(i + 1))
	if pre := p.ready[i].Load(); pre != nil {
		return *pre
	}
	return nil
}

// finish stops the prefetcher and waits for it.
func (p *prefetch) finish() {
	p.stop.Store(true)
	p.wg.Wait()
}

func (a *App) prefetchTx(raw []byte, height, time int64, lookup bool) *txPrefetch {
	v, ok := a.verified.get(tx.Hash(raw), false)
	if !ok {
		return nil
	}
	var recs []tx.RecordPut
	switch b := v.body.(type) {
	case *tx.RecordBatch:
		recs = b.Records
	case *tx.RecordPut:
		recs = []tx.RecordPut{*b}
	default:
		return nil
	}
	pre := make(txPrefetch, len(recs))
	var twice []string
	for i := range recs {
		b := &recs[i]
		if checkRecord(b) != nil {
			continue // putRecord refuses it before it would ask
		}
		rec := newRecord(v.t.Signer, b, height, time)
		if _, ok := pre[rec.ID]; ok {
			// Two records with one ID: the batch fails, but a value
			// prefetched by ID would belong to only one of them.
			twice = append(twice, rec.ID)
			continue
		}
		value, err := encodeRecord(&rec)
		if err != nil {
			continue
		}
		var committed bool
		if lookup {
			if committed, err = has(a.store, recordKey(rec.ID)); err != nil {
				continue // execution reads it again, and fails
			}
		}
		pre[rec.ID] = recordPrefetch{committed: committed, value: value}
	}
	for _, id := range twice {
		delete(pre, id)
	}
	return &pre
}

package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/medchain/medchain/app"
)

// paced writes records at a fixed offered rate, open loop, as a hospital
// network's clients send them: each batch leaves on its schedule whether
// or not earlier ones have committed, and its latency runs from the moment
// it was due, so a sender that fell behind is charged for it. The writes
// phase before is closed loop (every author keeps Depth batches in flight,
// all sent at once at the start), which measures throughput; its latency
// is set by how many records the bench keeps in flight (Little's law).
// This phase measures latency at a load the ledger is meant to carry.
//
// Its records are sealed with the others and written after the reads, so
// no other figure sees them.
func (w *workload) paced(ctx context.Context, rep *Report) error {
	o := w.o
	if o.PacedPercent > 0 {
		o.PacedRate = max(1, int(rep.RecordsPerS*float64(o.PacedPercent)/100))
	}
	if o.PacedRate <= 0 || o.PacedRecords <= 0 {
		return nil
	}
	sched := pacedSchedule(w.records, o.Records, o.Authors, max(1, o.Batch), o.PacedRate)
	o.logf("paced writes: %d records at %d records/s offered, %d per transaction", o.PacedRecords, o.PacedRate, max(1, o.Batch))
	lat := make([]time.Duration, len(w.records))
	blocks := make([]int64, len(w.records))
	var (
		mu      sync.Mutex
		waits   sync.WaitGroup
		failed  error
		written int
		last    time.Time
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if failed == nil {
			failed = err
		}
	}
	h0 := w.nodes[0].Status().Height
	defer o.phase("paced-writes")()
	start := time.Now()
	err := parallel(o.Authors, o.Authors, func(a int) error {
		for _, c := range sched[a] {
			chunk, due := c.chunk, start.Add(c.due)
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return ctx.Err()
			}
			tip := w.nodes[a%len(w.nodes)].Status().Height // the height committed as it leaves
			wait, err := w.writeChunk(ctx, a, chunk)
			if err != nil {
				return err
			}
			waits.Add(1)
			go func() {
				defer waits.Done()
				res, err := wait(ctx)
				if err == nil && res.Code != app.CodeOK {
					err = fmt.Errorf("record write rejected (code %d): %s", res.Code, res.Log)
				}
				if err != nil {
					fail(err)
					return
				}
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				for _, i := range chunk {
					lat[i], blocks[i] = now.Sub(due), res.Height-tip
				}
				written += len(chunk)
				if now.After(last) {
					last = now
				}
			}()
		}
		return nil
	})
	waits.Wait()
	if err == nil {
		err = failed
	}
	if err != nil {
		return err
	}
	el := last.Sub(start)
	lat = lat[o.Records:]
	rep.PacedRate, rep.PacedRecords = o.PacedRate, written
	rep.PacedRecordsPerS = float64(written) / el.Seconds()
	rep.PacedWriteP50Ms, rep.PacedWriteP99Ms = percentile(lat, 50), percentile(lat, 99)
	blocks = blocks[o.Records:]
	slices.Sort(blocks)
	rep.PacedWriteP99Blocks = blocks[(len(blocks)-1)*99/100]
	if n := w.nodes[0].Status().Height - h0; n > 0 {
		rep.PacedBlockIntervalMs = float64(el.Milliseconds()) / float64(n)
	}
	o.logf("paced writes: %.0f records/s committed of %d offered, p50 %.0f ms, p99 %.0f ms (committed %d blocks after the tip it was sent at), blocks %.0f ms apart",
		rep.PacedRecordsPerS, o.PacedRate, rep.PacedWriteP50Ms, rep.PacedWriteP99Ms, rep.PacedWriteP99Blocks, rep.PacedBlockIntervalMs)
	return nil
}

// pacedChunk is one transaction's records and when, after the start, it
// is due.
type pacedChunk struct {
	chunk []int
	due   time.Duration
}

// pacedSchedule splits the records from first on into each author's
// transactions of up to batch records and gives each a due time: the
// authors take turns, and a transaction is due when the records before it
// would have been sent at rate, so the offered load is rate however
// unevenly the records fall to authors.
func pacedSchedule(records []record, first, authors, batch, rate int) [][]pacedChunk {
	queues := make([][]int, authors)
	for i := first; i < len(records); i++ {
		a := records[i].author
		queues[a] = append(queues[a], i)
	}
	sched := make([][]pacedChunk, authors)
	sent := 0
	for more := true; more; {
		more = false
		for a, q := range queues {
			if len(q) == 0 {
				continue
			}
			chunk := q[:min(batch, len(q))]
			queues[a] = q[len(chunk):]
			due := time.Duration(float64(sent) / float64(rate) * float64(time.Second))
			sched[a] = append(sched[a], pacedChunk{chunk, due})
			sent += len(chunk)
			more = true
		}
	}
	return sched
}

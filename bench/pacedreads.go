package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// maxPacedReadsInFlight bounds the paced reads' open requests. A sender
// that reaches it waits, and the requests it then sends are charged from
// when they were due.
const maxPacedReadsInFlight = 256

// pacedReads reads one record per request at a fixed offered rate, open
// loop, as a hospital's clinicians open records: each request leaves on
// its schedule whether or not earlier ones have been answered, and its
// latency runs from the moment it was due. The read phases before are
// closed loop (every reader sends its next request when its last is
// answered), which measures throughput; their latency is the readers'
// count over the rate (Little's law), so it grows with anything that
// costs CPU. This phase measures the latency a reader sees at a load the
// node is meant to carry, the figure to compare across ledger sizes.
//
// Each request reads a random record of a random patient, as reader the
// member holding that patient's consent. It returns the patients read,
// one per record, for the access-event count.
func (w *workload) pacedReads(ctx context.Context, rep *Report, byPatient byPatient, patients []int) ([]int, error) {
	o := w.o
	if o.PacedReadRate <= 0 || o.PacedReads <= 0 || len(patients) == 0 {
		return nil, nil
	}
	o.logf("paced reads: %d records at %d requests/s offered, one per request", o.PacedReads, o.PacedReadRate)
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxPacedReadsInFlight}}
	defer hc.CloseIdleConnections()
	lat := make([]time.Duration, o.PacedReads)
	who := make([]int, o.PacedReads)
	var (
		mu     sync.Mutex
		failed error
		open   sync.WaitGroup
		slots  = make(chan struct{}, maxPacedReadsInFlight)
	)
	end := o.phase("paced-reads")
	cpu := startCPU()
	start := time.Now()
	for i := range o.PacedReads {
		due := start.Add(time.Duration(float64(i) / float64(o.PacedReadRate) * float64(time.Second)))
		select {
		case <-time.After(time.Until(due)):
		case <-ctx.Done():
			open.Wait()
			return nil, ctx.Err()
		}
		slots <- struct{}{}
		rng := rand.New(rand.NewPCG(o.Seed^0x9ace, uint64(i)))
		p := patients[rng.IntN(len(patients))]
		recs := byPatient.of(p)
		id := w.records[recs[rng.IntN(len(recs))]].ID()
		who[i] = p
		open.Add(1)
		go func() {
			defer func() { <-slots; open.Done() }()
			err := w.read(hc, w.nodes[i%len(w.nodes)].APIURL(), w.members[w.reader[p]], []string{id}, false)
			lat[i] = time.Since(due)
			if err != nil {
				mu.Lock()
				failed = firstErr(failed, err)
				mu.Unlock()
			}
		}()
	}
	open.Wait()
	el := time.Since(start)
	cost := cpu.stop(o.PacedReads)
	end()
	if failed != nil {
		return nil, failed
	}
	rep.PacedReadRate, rep.PacedReads = o.PacedReadRate, o.PacedReads
	rep.PacedReadsPerS = float64(o.PacedReads) / el.Seconds()
	rep.PacedReadP50Ms, rep.PacedReadP99Ms, rep.PacedReadMaxMs = percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)
	rep.PacedReadCPUUs, rep.PacedReadSteal, rep.PacedReadGCCycles = cost.cpuUs, cost.steal, cost.gcs
	rep.PacedReadFaultsPerRead = cost.faults
	o.logf("paced reads: %.0f records/s answered of %d offered, p50 %.1f ms, p99 %.1f ms, longest %.1f ms; %.2f page faults a read, %d garbage collection cycles",
		rep.PacedReadsPerS, o.PacedReadRate, rep.PacedReadP50Ms, rep.PacedReadP99Ms, rep.PacedReadMaxMs, rep.PacedReadFaultsPerRead, rep.PacedReadGCCycles)
	return who, nil
}

// firstErr keeps the first error.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return fmt.Errorf("paced read: %w", err)
}

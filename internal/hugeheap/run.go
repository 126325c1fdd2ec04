package hugeheap

import (
	"context"
	"runtime/metrics"
	"time"
)

// Run marks the process's heaps at once, and again until ctx is done:
// whenever the Go runtime has mapped more memory, which it checks every
// poll, and every rescan for the C allocator's, which says nothing when
// it maps more. It returns ErrNotAdvisable at once where there is nothing
// to ask for, nil when ctx is done, and otherwise the first error.
//
// A mapping made just before Run marks it may have some pages touched
// already: those stay small, and the rest of the mapping gets huge pages
// as it is first used.
func Run(ctx context.Context, poll, rescan time.Duration) error {
	a, err := NewAdvisor()
	if err != nil {
		return err
	}
	mapped := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	t := time.NewTicker(poll)
	defer t.Stop()
	var last uint64
	var scanned time.Time
	for {
		metrics.Read(mapped)
		now := last // a runtime without the metric leaves Run to its rescans
		if mapped[0].Value.Kind() == metrics.KindUint64 {
			now = mapped[0].Value.Uint64()
		}
		if now != last || time.Since(scanned) >= rescan {
			last, scanned = now, time.Now()
			if _, err := a.Advise(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

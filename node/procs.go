package node

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/medchain/medchain/internal/hugeheap"
)

// UseSpareProcs gives the Go scheduler twice as many Ps (GOMAXPROCS) as
// the process has CPUs, unless the GOMAXPROCS environment variable sets
// them. Call it once, at the start of a process that runs nodes.
//
// A node's latency is set by goroutines that wait on the disk. CometBFT's
// consensus goroutine fsyncs its write-ahead log once for every 64 KiB
// part of each proposal (a block of 2,000 records is about 15) and for
// each vote, and a block commits with a synced write. When a goroutine's
// fsync returns it needs a P to run on: with one P per CPU, all busy with
// CPU-bound work (blobs being stored, batches checked, the next block
// executed), it waits until one of them blocks or is preempted, up to the
// scheduler's 10 ms time slice, after every fsync. With spare Ps it runs
// at once, and the kernel, which favours a thread that has slept,
// time-slices the CPUs among the threads instead. docs/performance.md
// has the measurements.
func UseSpareProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
}

// UseHugePages asks Linux to back the process's heaps, Go's and the C
// allocator's, with transparent huge pages (package hugeheap) until ctx
// is done, unless the MEDCHAIN_HUGE_PAGES
// environment variable is "off". Where the system already gives every
// process huge pages, or none, there is nothing to ask, and it says so
// at debug level. Call it once, at the start of a process that runs
// nodes.
//
// On this project's test machine a page fault costs ~13 µs, and with the
// heap in 4 KiB pages a node's writes took 0.5 – 1.3 faults a record;
// docs/performance.md has the measurements.
func UseHugePages(ctx context.Context, log *slog.Logger) {
	switch v := os.Getenv("MEDCHAIN_HUGE_PAGES"); v {
	case "off":
		log.Debug("huge pages for the heap: off (MEDCHAIN_HUGE_PAGES=off)")
		return
	case "", "on":
	default:
		log.Warn("MEDCHAIN_HUGE_PAGES is neither on nor off: asking for huge pages as by default", "value", v)
	}
	go func() {
		err := hugeheap.Run(ctx, hugePagePoll, hugePageRescan)
		switch {
		case errors.Is(err, hugeheap.ErrNotAdvisable):
			log.Debug("huge pages for the heap: nothing to ask for", "reason", err)
		case err != nil:
			log.Warn("huge pages for the heap: stopped asking", "err", err)
		}
	}()
}

// How often UseHugePages looks for new mappings to mark: every poll it
// reads one runtime metric, the Go runtime's mapped memory, and reads
// /proc/self/maps when that has grown or a rescan has passed (the C
// allocator's mappings, which no metric shows).
const (
	hugePagePoll   = 5 * time.Millisecond
	hugePageRescan = 50 * time.Millisecond
)

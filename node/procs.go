package node

import (
	"context"
	"errors"
	"fmt"
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
// is done, when the MEDCHAIN_HUGE_PAGES environment variable is "on".
// Where the system already gives every process huge pages, or none,
// there is nothing to ask, and it says so at debug level. Call it once,
// at the start of a process that runs nodes.
//
// It is off by default. On this project's test machine, where a page
// fault costs ~13 µs, it made a 10,000-record ledger's reads faster, and
// a 1,000,000-record ledger's writes slower: fewer faults, more CPU a
// record. docs/performance.md has the measurements.
func UseHugePages(ctx context.Context, log *slog.Logger) {
	want, err := hugePagesWanted(os.Getenv("MEDCHAIN_HUGE_PAGES"))
	if err != nil {
		log.Warn("MEDCHAIN_HUGE_PAGES: "+err.Error(), "default", hugePagesDefault)
	}
	if !want {
		log.Debug("huge pages for the heaps: not asked for (MEDCHAIN_HUGE_PAGES)")
		return
	}
	go func() {
		err := hugeheap.Run(ctx, hugePagePoll, hugePageRescan)
		switch {
		case errors.Is(err, hugeheap.ErrNotAdvisable):
			log.Debug("huge pages for the heaps: nothing to ask for", "reason", err)
		case err != nil:
			log.Warn("huge pages for the heaps: stopped asking; the node runs on in small pages (MEDCHAIN_HUGE_PAGES=off does without them from the start)", "err", err)
		}
	}()
}

// hugePagesDefault is what UseHugePages does when MEDCHAIN_HUGE_PAGES is
// not set.
const hugePagesDefault = "off"

// hugePagesWanted reads MEDCHAIN_HUGE_PAGES: "on", "off", or empty for
// the default. Anything else is an error, and the default.
func hugePagesWanted(v string) (bool, error) {
	switch v {
	case "on", "off":
		return v == "on", nil
	case "":
		return hugePagesDefault == "on", nil
	}
	return hugePagesDefault == "on", fmt.Errorf("%q is neither on nor off: set it to on or off, or unset it for the default", v)
}

// How often UseHugePages looks for new mappings to mark: every poll it
// reads one runtime metric, the Go runtime's mapped memory, and reads
// /proc/self/maps when that has grown or a rescan has passed (the C
// allocator's mappings, which no metric shows).
const (
	hugePagePoll   = 5 * time.Millisecond
	hugePageRescan = 50 * time.Millisecond
)

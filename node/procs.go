package node

import (
	"os"
	"runtime"
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

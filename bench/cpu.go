package bench

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// cpuMeter measures the CPU time the whole process spends over a timed
// phase: the nodes and the load generator alike (both run here, on the same
// cores), in user and system mode; the page faults it took, each the
// first touch of a page of memory the process had not used or had handed
// back to the system; and the time the machine's hypervisor took its cores
// for something else (steal time, on Linux), which no process here sees
// but every latency pays; and the garbage collector's cycles completed
// meanwhile, which take cores from everything else in the process.
type cpuMeter struct {
	use     usage
	steal   time.Duration
	stealOK bool
	wall    time.Time
	ok      bool
	gcs     uint64
}

// usage is what the system reports a process has used so far.
type usage struct {
	cpu    time.Duration
	faults int64
}

// phaseCost is what a timed phase cost per unit of work.
type phaseCost struct {
	cpuUs  float64 // CPU time, microseconds
	busy   float64 // the share of the machine's cores kept busy, 0 to 1
	faults float64 // page faults
	steal  float64 // the share of the machine's cores the hypervisor took, 0 to 1 (0 where not reported)
	gcs    uint64  // garbage collection cycles completed during the phase, in all (not per unit)
}

// gcCycles returns how many garbage collection cycles the process has
// completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func startCPU() cpuMeter {
	use, ok := processUsage()
	steal, stealOK := machineSteal()
	return cpuMeter{use: use, steal: steal, stealOK: stealOK, wall: time.Now(), ok: ok, gcs: gcCycles()}
}

// stop returns what the phase cost per unit of work: all zero but the
// collection cycles where the platform does not report process usage.
func (m cpuMeter) stop(units int) phaseCost {
	use, ok := processUsage()
	wall := time.Since(m.wall)
	gcs := gcCycles() - m.gcs
	if !ok || !m.ok || units <= 0 || wall <= 0 {
		return phaseCost{gcs: gcs}
	}
	used := use.cpu - m.use.cpu
	cores := wall.Seconds() * float64(runtime.NumCPU())
	c := phaseCost{
		cpuUs:  float64(used.Microseconds()) / float64(units),
		busy:   used.Seconds() / cores,
		faults: float64(use.faults-m.use.faults) / float64(units),
		gcs:    gcs,
	}
	if steal, ok := machineSteal(); ok && m.stealOK && steal >= m.steal {
		c.steal = (steal - m.steal).Seconds() / cores
	}
	return c
}

package bench

import (
	"runtime"
	"time"
)

// cpuMeter measures the CPU time the whole process spends over a timed
// phase: the nodes and the load generator alike (both run here, on the same
// cores), in user and system mode.
type cpuMeter struct {
	cpu  time.Duration
	wall time.Time
	ok   bool
}

func startCPU() cpuMeter {
	cpu, ok := processCPU()
	return cpuMeter{cpu: cpu, wall: time.Now(), ok: ok}
}

// stop returns the CPU time spent per unit of work, in microseconds, and the
// share of the machine's cores it kept busy (0 to 1). Both are 0 where the
// platform does not report process CPU time.
func (m cpuMeter) stop(units int) (usPerUnit, busy float64) {
	cpu, ok := processCPU()
	wall := time.Since(m.wall)
	if !ok || !m.ok || units <= 0 || wall <= 0 {
		return 0, 0
	}
	used := cpu - m.cpu
	return float64(used.Microseconds()) / float64(units), used.Seconds() / (wall.Seconds() * float64(runtime.NumCPU()))
}

package bench

import (
	"runtime"
	"testing"
)

// TestMeterCountsCollections: a phase's meter counts the collection
// cycles completed during it, and only those.
func TestMeterCountsCollections(t *testing.T) {
	runtime.GC()
	m := startCPU()
	for range 3 {
		runtime.GC()
	}
	if got := m.stop(1).gcs; got < 3 {
		t.Errorf("three forced cycles in the phase, meter counted %d", got)
	}
	if got := startCPU().stop(1).gcs; got > 1 {
		// A cycle the runtime starts by itself may still fall in; three cannot.
		t.Errorf("no cycle forced in the phase, meter counted %d", got)
	}
}

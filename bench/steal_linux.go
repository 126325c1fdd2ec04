package bench

import (
	"os"
	"time"
)

// machineSteal returns the machine's steal time so far (see parseSteal).
func machineSteal() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseSteal(b)
}

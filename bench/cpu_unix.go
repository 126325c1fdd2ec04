//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processUsage returns the user and system CPU time of this process so far,
// and its page faults (minor and major).
func processUsage() (usage, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, false
	}
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), faults: int64(ru.Minflt) + int64(ru.Majflt)}, true
}

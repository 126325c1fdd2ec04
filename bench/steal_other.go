//go:build !linux

package bench

import "time"

// machineSteal is not measured on this platform.
func machineSteal() (time.Duration, bool) { return 0, false }

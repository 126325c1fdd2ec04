package bench

import (
	"bytes"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/stat: USER_HZ, 100 a second on
// every architecture Linux builds Go for.
const userHZ = 100

// parseSteal returns the steal time in /proc/stat's text b: the time, over
// all CPUs since boot, that the hypervisor ran something else while this
// machine's CPUs had work (the eighth figure of the "cpu" line). ok is
// false when b has no such line or the figure is not a count.
func parseSteal(b []byte) (steal time.Duration, ok bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		f := bytes.Fields(line)
		if len(f) == 0 || string(f[0]) != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, false
		}
		ticks, err := strconv.ParseInt(string(f[8]), 10, 64)
		if err != nil || ticks < 0 || ticks > 1<<62/int64(time.Second/userHZ) {
			return 0, false
		}
		return time.Duration(ticks) * (time.Second / userHZ), true
	}
	return 0, false
}

package testnode

import "testing"

func TestPanicked(t *testing.T) {
	for _, tc := range []struct {
		name, output string
		want         bool
	}{
		{"clean", "time=2026-11-26T12:31:02.167Z level=INFO msg=\"node started\"\n", false},
		{"panic", "starting\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:\nmain.main()\n", true},
		{"fatal error", "fatal error: concurrent map writes\n\ngoroutine 7 [running]:\n", true},
		{"recovered and logged by CometBFT", `E[2026-11-26|12:31:13.014] MConnection panicked                         module=p2p err="rejected msg on chID 0x40: unsolicited BlockResponse" stack="goroutine 106 [running]:\nruntime/debug.Stack()\n"` + "\n" +
			`E[2026-11-26|12:31:13.014] Stopping peer for error                      module=p2p err="recovered from panic: rejected msg"` + "\n", false},
		{"the word in a message", "level=INFO msg=\"no panic: all good\" note=\"goroutine count 12\"\n", false},
	} {
		if got := Panicked(tc.output); got != tc.want {
			t.Errorf("%s: Panicked = %v, want %v", tc.name, got, tc.want)
		}
	}
}

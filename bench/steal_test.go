package bench

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

func TestParseSteal(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"kernel 6.18", "cpu  513858 0 81826 281154 8281 0 3773 1249 0 0\ncpu0 256239 0 38073 146827 2767 0 337 603 0 0\nintr 1 2\n", 12490 * time.Millisecond, true},
		{"no steal yet", "cpu  1 2 3 4 5 6 7 0\n", 0, true},
		{"the cpu line after others", "intr 5\ncpu  1 2 3 4 5 6 7 42 0 0", 420 * time.Millisecond, true},
		{"a cpuN line is not the total", "cpu0 1 2 3 4 5 6 7 99\n", 0, false},
		{"too few figures (kernels before 2.6.11)", "cpu  1 2 3 4 5 6 7\n", 0, false},
		{"not a count", "cpu  1 2 3 4 5 6 7 x\n", 0, false},
		{"negative", "cpu  1 2 3 4 5 6 7 -5\n", 0, false},
		{"too large for a duration", "cpu  1 2 3 4 5 6 7 999999999999999999\n", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseSteal([]byte(c.in))
			if got != c.want || ok != c.ok {
				t.Errorf("parseSteal = %v, %v; want %v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// FuzzParseSteal: any text gives a steal time that is not negative, and
// one only if the text has a "cpu" line.
func FuzzParseSteal(f *testing.F) {
	f.Add([]byte("cpu  513858 0 81826 281154 8281 0 3773 1249 0 0\ncpu0 1 2 3 4 5 6 7 8\n"))
	f.Add([]byte("cpu 1 2 3 4 5 6 7 8"))
	f.Add([]byte("\n\ncpu\t1\t2\t3\t4\t5\t6\t7\t+8\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseSteal(b)
		if got < 0 || (!ok && got != 0) {
			t.Fatalf("parseSteal = %v, %v", got, ok)
		}
		if ok && !bytes.Contains(b, []byte("cpu")) {
			t.Fatalf("parseSteal = %v from text with no cpu line", got)
		}
	})
}

// TestMachineSteal: on Linux the bench reads the machine's steal time, and
// it does not go back.
func TestMachineSteal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("steal time is read from Linux's /proc/stat")
	}
	a, ok := machineSteal()
	b, ok2 := machineSteal()
	if !ok || !ok2 || b < a {
		t.Fatalf("machineSteal: %v, %v then %v, %v; want both read, not decreasing", a, ok, b, ok2)
	}
}

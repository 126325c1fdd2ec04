package node

import (
	"runtime"
	"testing"
)

func TestUseSpareProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	tests := []struct {
		env  string
		want int
	}{
		{"", 2 * before},    // doubled
		{"3", before},       // the operator's: left as the runtime set it
		{"garbage", before}, // set at all: left to the runtime too
	}
	for _, tc := range tests {
		t.Run("GOMAXPROCS="+tc.env, func(t *testing.T) {
			runtime.GOMAXPROCS(before)
			t.Setenv("GOMAXPROCS", tc.env)
			UseSpareProcs()
			if got := runtime.GOMAXPROCS(0); got != tc.want {
				t.Errorf("GOMAXPROCS = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestHugePagesWanted(t *testing.T) {
	def := hugePagesDefault == "on"
	tests := []struct {
		env     string
		want    bool
		wantErr bool
	}{
		{"on", true, false},
		{"off", false, false},
		{"", def, false},
		{"yes", def, true},
		{"OFF", def, true}, // spelled as documented, or not at all
	}
	for _, tc := range tests {
		got, err := hugePagesWanted(tc.env)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("hugePagesWanted(%q) = %v, %v; want %v, error %v", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

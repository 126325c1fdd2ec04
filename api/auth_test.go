package api

import (
	"fmt"
	"testing"
	"time"
)

// TestReplayCache: a signature is refused the second time for at least
// 2 × MaxSkew after it was first seen, across a generation change, and
// forgotten after two; other signatures are unaffected.
func TestReplayCache(t *testing.T) {
	var c replayCache
	t0 := time.Unix(1e9, 0)
	sig := []byte("a signature")
	if !c.fresh(sig, t0) {
		t.Fatal("a first signature is not fresh")
	}
	for _, d := range []time.Duration{0, time.Second, MaxSkew, 2 * MaxSkew, 2*MaxSkew + time.Second, 4 * MaxSkew} {
		if c.fresh(sig, t0.Add(d)) {
			t.Fatalf("the signature was accepted again %s after it was first seen", d)
		}
	}
	for i := range 1000 {
		if !c.fresh(fmt.Appendf(nil, "other %d", i), t0.Add(4*MaxSkew)) {
			t.Fatalf("signature %d was refused", i)
		}
	}
	if !c.fresh(sig, t0.Add(10*MaxSkew)) {
		t.Error("the signature is still remembered long after any request carrying it could pass")
	}
}

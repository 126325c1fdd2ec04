package app

import (
	"testing"

	"github.com/medchain/medchain/consent"
)

// TestCacheDropsValuesReadBeforeAForget: a reader that read committed state
// before a commit changed the patient must not leave that value cached.
func TestCacheDropsValuesReadBeforeAForget(t *testing.T) {
	var c cache
	gen := c.generation()
	c.forget(map[string]bool{"p": true}) // a commit lands between read and put
	c.putEpoch(gen, "p/laboratory", 0)
	c.putConsents(gen, "p", []consent.Consent{{ID: "c1"}})
	if _, ok := c.epoch("p/laboratory"); ok {
		t.Error("stale epoch number cached")
	}
	if _, ok := c.patientConsents("p"); ok {
		t.Error("stale consents cached")
	}

	gen = c.generation()
	c.putEpoch(gen, "p/laboratory", 3)
	if n, ok := c.epoch("p/laboratory"); !ok || n != 3 {
		t.Fatalf("epoch = %d, %v; want 3, true", n, ok)
	}
	c.forget(map[string]bool{"q": true})
	if _, ok := c.epoch("p/laboratory"); !ok {
		t.Error("forgetting another patient dropped p's epoch")
	}
	c.forget(map[string]bool{"p": true})
	if _, ok := c.epoch("p/laboratory"); ok {
		t.Error("forget kept p's epoch")
	}
}

package app

import (
	"encoding/json"
	"fmt"
	"testing"
	"unsafe"
)

// TestDecodeActorKind: a decoded actor's kind is the package's own
// constant, the very same bytes, so that checking it reads none of the
// actor's memory; a kind this version does not know is kept as it is.
func TestDecodeActorKind(t *testing.T) {
	for _, kind := range []string{KindAdmin, KindOrg, KindMember, KindPatient, KindNode, "auditor"} {
		a, err := decodeActor(fmt.Appendf(nil, `{"id":"mc1x","kind":%q,"public":"p","height":3}`, kind))
		if err != nil {
			t.Fatalf("kind %q: %v", kind, err)
		}
		if a.Kind != kind || a.ID != "mc1x" || a.Public != "p" || a.Height != 3 {
			t.Errorf("kind %q: decoded %+v", kind, a)
		}
		known := kind != "auditor"
		if shared := unsafe.StringData(a.Kind) == unsafe.StringData(kind); known != shared {
			t.Errorf("kind %q: shares the constant's bytes = %v, want %v", kind, shared, known)
		}
	}
	if _, err := decodeActor([]byte(`{"id":`)); err == nil {
		t.Error("a truncated actor decoded without an error")
	}
}

func FuzzDecodeActor(f *testing.F) {
	f.Add([]byte(`{"id":"mc1x","kind":"member","public":"p","role":"physician","org":"mc1o","height":3}`))
	f.Add([]byte(`{"kind":"patient"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeActor(b)
		if err != nil {
			return
		}
		for _, k := range []string{KindAdmin, KindOrg, KindMember, KindPatient, KindNode} {
			if a.Kind == k && unsafe.StringData(a.Kind) != unsafe.StringData(k) {
				t.Fatalf("kind %q decoded but not made the constant", k)
			}
		}
		var plain Actor
		if err := json.Unmarshal(b, &plain); err != nil {
			t.Fatalf("decodeActor took what encoding/json refuses: %v", err)
		}
		if *a != plain {
			t.Fatalf("decodeActor changed the actor:\n%+v\nwant\n%+v", *a, plain)
		}
	})
}

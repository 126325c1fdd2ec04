package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/medchain/medchain/consent"
)

// TestCacheDropsValuesReadBeforeAForget: a reader that read committed state
// before a commit changed the patient must not leave that value cached.
func TestCacheDropsValuesReadBeforeAForget(t *testing.T) {
	var c cache
	gen := c.generation()
	c.forget(map[string]bool{"p": true}) // a commit lands between read and put
	c.putEpoch(gen, "p", "laboratory", 0)
	c.putConsents(gen, "p", []consent.Consent{{ID: "c1"}})
	if _, ok := c.epoch("p", "laboratory"); ok {
		t.Error("stale epoch number cached")
	}
	if _, ok := c.patientConsents("p"); ok {
		t.Error("stale consents cached")
	}

	gen = c.generation()
	c.putEpoch(gen, "p", "laboratory", 3)
	if n, ok := c.epoch("p", "laboratory"); !ok || n != 3 {
		t.Fatalf("epoch = %d, %v; want 3, true", n, ok)
	}
	c.forget(map[string]bool{"q": true})
	if _, ok := c.epoch("p", "laboratory"); !ok {
		t.Error("forgetting another patient dropped p's epoch")
	}
	c.forget(map[string]bool{"p": true})
	if _, ok := c.epoch("p", "laboratory"); ok {
		t.Error("forget kept p's epoch")
	}
}

// TestCacheEpochsByCategory: each of a patient's categories keeps its own
// epoch number, every category of the vocabulary has room, and one
// outside it is never cached.
func TestCacheEpochsByCategory(t *testing.T) {
	var c cache
	if len(epochNums{}.n) != len(consent.Categories) || len(consent.Categories) > 16 {
		t.Fatalf("epochNums holds %d categories and 16 bits; the vocabulary has %d", len(epochNums{}.n), len(consent.Categories))
	}
	gen := c.generation()
	for i, cat := range consent.Categories {
		c.putEpoch(gen, "p", cat, uint64(10+i))
	}
	c.putEpoch(gen, "q", "imaging", 7)
	c.putEpoch(gen, "p", "no-such-category", 99)
	for i, cat := range consent.Categories {
		if n, ok := c.epoch("p", cat); !ok || n != uint64(10+i) {
			t.Errorf("p %s: %d, %v; want %d", cat, n, ok, 10+i)
		}
	}
	if n, ok := c.epoch("q", "imaging"); !ok || n != 7 {
		t.Errorf("q imaging: %d, %v; want 7", n, ok)
	}
	if _, ok := c.epoch("q", "laboratory"); ok {
		t.Error("q laboratory cached, never put")
	}
	if _, ok := c.epoch("p", "no-such-category"); ok {
		t.Error("a category outside the vocabulary was cached")
	}
}

// TestCacheCopiesKeys: the cache keys a patient by its own copy of the
// ID, never by the caller's string, which may be a window on a
// transaction's bytes that the map would keep alive, or that change.
func TestCacheCopiesKeys(t *testing.T) {
	var c cache
	buf := []byte("p1")
	window := unsafe.String(&buf[0], len(buf))
	gen := c.generation()
	c.putEpoch(gen, window, "imaging", 4)
	c.putConsents(gen, window, []consent.Consent{{ID: "c1", Patient: "p1"}})
	copy(buf, "q2")
	if n, ok := c.epoch("p1", "imaging"); !ok || n != 4 {
		t.Errorf("epoch of p1 after the caller's bytes changed: %d, %v; want 4, true", n, ok)
	}
	if _, ok := c.patientConsents("p1"); !ok {
		t.Error("consents of p1 lost after the caller's bytes changed")
	}
	if _, ok := c.patientConsents("q2"); ok {
		t.Error("the cache keyed p1 by the caller's bytes")
	}
}

// TestCachePatientEntry: a patient's consents and epoch numbers share
// one entry with the bytes of its map key, so a lookup reads one place
// after the map's slot; an ID too long for the entry is keyed by a copy
// elsewhere, and answers the same.
func TestCachePatientEntry(t *testing.T) {
	var c cache
	id := "mc1" + strings.Repeat("ab", 20)
	long := strings.Repeat("x", inlineID+1)
	for _, p := range []string{id, long} {
		gen := c.generation()
		c.putEpoch(gen, p, "imaging", 5)
		set := c.putConsents(gen, p, []consent.Consent{{ID: "c1", Patient: p, Grantee: "m1"}})
		got, ok := c.patientConsents(p)
		if !ok || got != set || len(got.Consents()) != 1 || got.Consents()[0].ID != "c1" {
			t.Fatalf("%d-byte ID: consents %v, %v; want the Set putConsents returned", len(p), got, ok)
		}
		if n, ok := c.epoch(p, "imaging"); !ok || n != 5 {
			t.Errorf("%d-byte ID: epoch %d, %v; want 5, true", len(p), n, ok)
		}
		if again := c.putConsents(gen, p, []consent.Consent{{ID: "c2", Patient: p}}); again != set {
			t.Errorf("%d-byte ID: a second put at the same generation replaced a Set readers may hold", len(p))
		}
	}
	if got := c.longIDs.Bytes(); got != len(long) {
		t.Errorf("%d bytes of IDs copied out of the entries, want %d (the long one only)", got, len(long))
	}
	c.patients.All(func(e *patient) bool {
		k := patientKey(e)
		inEntry := unsafe.StringData(k) == &e.id[0]
		if want := len(k) > 0 && len(k) <= inlineID; inEntry != want {
			t.Errorf("%d-byte ID keyed by the entry's own bytes: %v, want %v", len(k), inEntry, want)
		}
		return true
	})
}

// TestCacheReadersWhilePatientsChange: readers use a Set after they
// unlock, while writers cache epochs and consents and commits forget
// patients; under -race this fails if a cached Set is ever written again.
func TestCacheReadersWhilePatientsChange(t *testing.T) {
	var c cache
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2_000 {
				p := fmt.Sprintf("mc1%040x", i%7)
				gen := c.generation()
				if w%2 == 0 {
					c.putEpoch(gen, p, "imaging", uint64(i))
				}
				set := c.putConsents(gen, p, []consent.Consent{{ID: "c1", Patient: p, Grantee: "m1", Categories: []string{"imaging"}, Actions: []string{"read"}}})
				if cs, ok := c.patientConsents(p); ok {
					set = cs
				}
				if got := set.Consents(); len(got) != 1 || got[0].Patient != p {
					t.Errorf("consents of %s: %+v", p, got)
					return
				}
				if i%5 == w {
					c.forget(map[string]bool{p: true})
				}
			}
		}()
	}
	wg.Wait()
}

// TestCacheStartsAfreshWhenMostlyForgotten: a patient the ledger changes
// is forgotten and read again, and what the cache held of it before stays
// in its blocks; once forgotten entries outnumber live ones the cache
// starts afresh, so its memory stays bounded, and answers as before.
func TestCacheStartsAfreshWhenMostlyForgotten(t *testing.T) {
	var c cache
	for i := range 50_000 {
		p := fmt.Sprintf("p%d", i%10)
		c.putConsents(c.generation(), p, []consent.Consent{{ID: fmt.Sprint("c", i), Patient: p}})
		c.putEpoch(c.generation(), p, "imaging", uint64(i))
		if n, ok := c.epoch(p, "imaging"); !ok || n != uint64(i) {
			t.Fatalf("put %d: epoch %d, %v; want %d", i, n, ok, i)
		}
		if cs, ok := c.patientConsents(p); !ok || cs.Consents()[0].ID != fmt.Sprint("c", i) {
			t.Fatalf("put %d: consents %v, %v", i, cs, ok)
		}
		c.forget(map[string]bool{p: true})
		if c.patientMem.Len() > 2*c.patients.Len()+4096+1 {
			t.Fatalf("after %d forgotten puts: %d entries in memory for %d live ones", i+1, c.patientMem.Len(), c.patients.Len())
		}
	}
}

// TestCacheActorIsACopy: the cache keeps its own copy of an actor, and a
// second put of the same actor returns the first copy.
func TestCacheActorIsACopy(t *testing.T) {
	var c cache
	a := &Actor{ID: "m1", Kind: KindMember, Public: "pub", Role: "physician", Org: "o1", Height: 3}
	got := c.putActor(a)
	if got == a || got.ID != "m1" || got.Public != "pub" || got.Org != "o1" || got.Height != 3 || got.requester.ID != "m1" {
		t.Fatalf("putActor = %+v (same pointer: %v)", got, got == a)
	}
	// One block holds a copy's strings side by side: no object of its own
	// for each (the decoder made five). A member's ID and organization are
	// then the interned ones; a patient's stay in the block.
	p := c.putActor(&Actor{ID: "p1", Kind: KindPatient, Public: "ppub", Name: "Ada", Role: "r", Org: "o"})
	at := unsafe.StringData(p.ID)
	for _, s := range []string{p.ID, p.Public, p.Name, p.Role, p.Org} {
		if unsafe.StringData(s) != at {
			t.Fatalf("%q is not where the string before it ends", s)
		}
		at = (*byte)(unsafe.Add(unsafe.Pointer(at), len(s)))
	}
	a.Public = "changed"
	if again := c.putActor(&Actor{ID: "m1", Kind: KindMember, Public: "other"}); again != got || again.Public != "pub" {
		t.Errorf("a second put replaced the cached actor: %+v", again)
	}
	if cached, ok := c.actor("m1"); !ok || cached != got {
		t.Errorf("actor(m1) = %p, %v; want %p", cached, ok, got)
	}
}

// TestKeyCache checks that only keys that parse are remembered, that a
// remembered key answers without parsing, and that the set stays bounded.
func TestKeyCache(t *testing.T) {
	var c keyCache
	good := newKey(t).Public().Box
	if !c.valid(good) || len(c.ok) != 1 {
		t.Fatalf("valid(good) remembered %d keys, want 1", len(c.ok))
	}
	bad := bytes.Repeat([]byte{0xff}, len(good))
	for _, k := range [][]byte{bad, good[:100], nil} {
		if c.valid(k) {
			t.Errorf("valid(%d bytes of garbage) = true", len(k))
		}
	}
	if len(c.ok) != 1 {
		t.Errorf("garbage remembered: %d keys", len(c.ok))
	}
	// A remembered hash is trusted as it stands: planting the hash of
	// garbage shows the answer came from the set, not from a parse.
	c.ok[sha256.Sum256(bad)] = struct{}{}
	if !c.valid(bad) {
		t.Error("valid ignored the remembered set")
	}
	for i := range uint32(maxKeys) {
		c.ok[sha256.Sum256(binary.BigEndian.AppendUint32(nil, i))] = struct{}{}
	}
	if !c.valid(newKey(t).Public().Box) || len(c.ok) != 1 {
		t.Errorf("a full set was not started afresh: %d keys", len(c.ok))
	}
}

// failingReader fails every read with a storage error.
type failingReader struct{ err error }

func (f failingReader) Get([]byte) ([]byte, error)                      { return nil, f.err }
func (f failingReader) Scan([]byte, func(key, value []byte) bool) error { return f.err }

// TestHasFailsLoudly checks that a storage error is never taken for "not
// there", which would let a duplicate record or a replayed access through.
func TestHasFailsLoudly(t *testing.T) {
	s := memStore(t)
	d := s.Begin()
	d.Set([]byte("k"), []byte("v"))
	disk := errors.New("input/output error")
	for _, c := range []struct {
		name    string
		r       reader
		key     string
		want    bool
		wantErr error
	}{
		{"present", d, "k", true, nil},
		{"absent", d, "other", false, nil},
		{"storage error", failingReader{disk}, "k", false, disk},
	} {
		got, err := has(c.r, []byte(c.key))
		if got != c.want || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("%s: has = %v, %v; want %v, %v", c.name, got, err, c.want, c.wantErr)
		}
	}
}

// TestVerifiedCacheBoundedByBytes: the verified-transaction cache holds at
// most maxVerifiedBytes of encoded transactions, however few they are; a
// taken entry gives its bytes back, and putting a hash twice counts it once.
func TestVerifiedCacheBoundedByBytes(t *testing.T) {
	var c verifiedCache
	const size = 1 << 20 // a record batch's limit
	for i := range 3 * maxVerifiedBytes / size {
		c.put(fmt.Sprint(i), verifiedTx{size: size})
		if c.bytes > maxVerifiedBytes {
			t.Fatalf("after %d puts of %d bytes the cache holds %d bytes; limit %d", i+1, size, c.bytes, maxVerifiedBytes)
		}
		if _, ok := c.get(fmt.Sprint(i), false); !ok {
			t.Fatalf("entry %d missing right after its put", i)
		}
	}
	c = verifiedCache{}
	c.put("a", verifiedTx{size: 100})
	c.put("a", verifiedTx{size: 100})
	c.put("b", verifiedTx{size: 50})
	if c.bytes != 150 {
		t.Fatalf("cache counts %d bytes for entries of 100 and 50 (one put twice); want 150", c.bytes)
	}
	if _, ok := c.get("a", true); !ok || c.bytes != 50 {
		t.Fatalf("after taking a: %d bytes; want 50", c.bytes)
	}
	if _, ok := c.get("a", false); ok {
		t.Fatal("a taken entry is still there")
	}
}

package blob

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
)

// writeOldLayout writes blobs as stores before the sequence layout did:
// 'd' + hash holds a blob, 'h' + hash marks it.
func writeOldLayout(t *testing.T, dir string, blobs ...[]byte) []string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range blobs {
		n := Hash(b)
		if err := db.Set(legacyKey(n), b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Set(legacyMarker(n), nil, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return names
}

func walked(t *testing.T, s *Store) []string {
	t.Helper()
	var names []string
	if err := s.Walk(func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// TestOldLayoutStillServed: a store written in the old layout opens, serves
// its blobs (read-only too), takes new ones in the new layout, and walks
// every blob once, also one stored again in the new layout.
func TestOldLayoutStillServed(t *testing.T) {
	dir := t.TempDir()
	old := writeOldLayout(t, dir, []byte("old one"), []byte("old two"))

	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ro.Get(old[0]); err != nil || string(b) != "old one" {
		t.Fatalf("read-only Get(old) = %q, %v", b, err)
	}
	if !ro.Has(old[1]) || len(walked(t, ro)) != 2 {
		t.Fatalf("read-only: Has(old) %v, walked %v", ro.Has(old[1]), walked(t, ro))
	}
	if _, err := ro.Put([]byte("x")); err == nil {
		t.Fatal("Put on a read-only store succeeded")
	}
	ro.Close()

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fresh, err := s.PutMany([][]byte{[]byte("new one"), []byte("old two")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{{old[0], "old one"}, {old[1], "old two"}, {fresh[0], "new one"}} {
		if b, err := s.Get(c.name); err != nil || string(b) != c.want {
			t.Errorf("Get = %q, %v; want %q", b, err, c.want)
		}
		if !s.Has(c.name) {
			t.Errorf("Has(%q's name) = false", c.want)
		}
	}
	want := []string{old[0], old[1], fresh[0]}
	slices.Sort(want)
	if got := walked(t, s); !slices.Equal(got, want) {
		t.Fatalf("Walk = %v; want each blob once: %v", got, want)
	}
	if s.Has(Hash([]byte("never stored"))) {
		t.Error("Has(never stored) = true")
	}
}

// TestSequenceSurvivesReopen: numbers are never reused after a reopen, so a
// new blob cannot overwrite an old one.
func TestSequenceSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.PutMany([][]byte{[]byte("a"), []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.next != 2 {
		t.Fatalf("next sequence number after reopen = %d; want 2", s.next)
	}
	second, err := s.Put([]byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range append(first, second) {
		if _, err := s.Get(n); err != nil {
			t.Errorf("blob %d after reopen: %v", i, err)
		}
	}
}

// TestIndexWithoutBlob: an index entry that names a number db does not hold
// is corruption, not absence.
func TestIndexWithoutBlob(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name, err := s.Put([]byte("indexed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete(seqKey(0), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of an indexed blob that is gone = %v; want ErrCorrupt", err)
	}
}

// TestConcurrentPutMany: writers storing at once each get numbers of their
// own; every blob reads back, also after a reopen.
func TestConcurrentPutMany(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const writers, batches, perBatch = 8, 20, 10
	names := make([][]string, writers)
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for b := range batches {
				var blobs [][]byte
				for i := range perBatch {
					blobs = append(blobs, fmt.Appendf(nil, "writer %d batch %d blob %d", w, b, i))
				}
				n, err := s.PutMany(blobs)
				if err != nil {
					errs <- err
					return
				}
				names[w] = append(names[w], n...)
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		for w := range writers {
			for k, n := range names[w] {
				want := fmt.Sprintf("writer %d batch %d blob %d", w, k/perBatch, k%perBatch)
				if b, err := s.Get(n); err != nil || string(b) != want {
					t.Fatalf("Get = %q, %v; want %q", b, err, want)
				}
			}
		}
	}
	check(s)
	if s.next != writers*batches*perBatch {
		t.Fatalf("%d numbers taken; want %d", s.next, writers*batches*perBatch)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// TestRecentBlobNotStoredTwice: a blob this process just stored is not
// written again by PutMany (no second copy), but PutNamed, the repair path,
// writes it again.
func TestRecentBlobNotStoredTwice(t *testing.T) {
	s := openTemp(t)
	b := []byte("uploaded twice")
	if _, err := s.PutMany([][]byte{b, []byte("other")}); err != nil {
		t.Fatal(err)
	}
	if s.next != 2 {
		t.Fatalf("%d numbers taken; want 2", s.next)
	}
	names, err := s.PutMany([][]byte{b})
	if err != nil || names[0] != Hash(b) {
		t.Fatalf("PutMany again = %v, %v", names, err)
	}
	if s.next != 2 {
		t.Fatalf("a blob stored again: %d numbers taken; want 2", s.next)
	}
	if got, err := s.Get(names[0]); err != nil || string(got) != string(b) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := s.PutNamed(names[0], b); err != nil {
		t.Fatal(err)
	}
	if s.next != 3 {
		t.Fatalf("PutNamed (repair) did not write: %d numbers taken; want 3", s.next)
	}
	if got, err := s.Get(names[0]); err != nil || string(got) != string(b) {
		t.Fatalf("Get after repair = %q, %v", got, err)
	}
}

// TestDamagedRecentBlobRestored: once a read finds a recently stored
// blob's copy damaged, storing the good bytes again replaces it.
func TestDamagedRecentBlobRestored(t *testing.T) {
	s := openTemp(t)
	b := []byte("to be damaged")
	name, err := s.Put(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(seqKey(0), []byte("to be damaged, but not these bytes"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged copy = %v; want ErrCorrupt", err)
	}
	if _, err := s.PutMany([][]byte{b}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(name); err != nil || string(got) != string(b) {
		t.Fatalf("Get after storing the good bytes again = %q, %v", got, err)
	}
}

// openTemp opens a store in a fresh directory, closed when the test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRecentBlobReadByItsNumber: a blob this process stored is read by the
// number it went in under, without its index lookup; a reopened store,
// which remembers nothing, needs the index.
func TestRecentBlobReadByItsNumber(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("read soon after it was written")
	name, err := s.Put(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.index.Delete(indexKey(name), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(name); err != nil || string(got) != string(b) {
		t.Fatalf("Get of a recent blob without its index entry = %q, %v; want the bytes", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Get(name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after reopen without the index entry = %v; want ErrNotFound", err)
	}
}

// TestBlobsKeepTheOrderGiven: a batch's distinct blobs go in under
// consecutive numbers in the order given (a record's ciphertext beside its
// envelopes), whatever their names' order, and the index, read from disk
// after a reopen, points each name at its own blob.
func TestBlobsKeepTheOrderGiven(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for i := range 40 {
		blobs = append(blobs, fmt.Appendf(nil, "blob %d", i))
	}
	blobs = append(blobs, blobs[3]) // a repeat takes no number
	names, err := s.PutMany(blobs)
	if err != nil {
		t.Fatal(err)
	}
	if slices.IsSorted(names[:40]) {
		t.Fatal("the blobs' names happen to be sorted, so name order and the order given cannot be told apart; pick other blobs")
	}
	for i := range 40 {
		v, closer, err := s.db.Get(seqKey(uint64(i)))
		if err != nil {
			t.Fatalf("number %d: %v", i, err)
		}
		if string(v) != string(blobs[i]) {
			t.Errorf("number %d holds %q; want %q, the blob given %d'th", i, v, blobs[i], i)
		}
		closer.Close()
	}
	if s.next != 40 {
		t.Errorf("%d numbers taken; want 40", s.next)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, name := range names {
		if got, err := s.Get(name); err != nil || string(got) != string(blobs[i]) {
			t.Errorf("Get(blob %d) after reopen = %q, %v", i, got, err)
		}
	}
}

package blob

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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

// writeSeqLayout writes blobs as stores between the old layout and
// segments did: in db under 's' + a sequence number, with the index
// mapping each name to its 8-byte number.
func writeSeqLayout(t *testing.T, dir string, blobs ...[]byte) []string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	index, err := pebble.Open(filepath.Join(dir, IndexDir), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, b := range blobs {
		n := Hash(b)
		k := binary.BigEndian.AppendUint64([]byte{'s'}, uint64(i))
		if err := db.Set(k, b, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := index.Set(indexKey(n), k[1:], pebble.Sync); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := errors.Join(db.Close(), index.Close()); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSequenceLayoutStillServed: a store written under sequence numbers
// opens, serves its blobs (read-only too), takes new ones in segments, and
// reports an index entry whose number db does not hold as corruption.
func TestSequenceLayoutStillServed(t *testing.T) {
	dir := t.TempDir()
	old := writeSeqLayout(t, dir, []byte("numbered one"), []byte("numbered two"))

	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ro.Get(old[1]); err != nil || string(b) != "numbered two" {
		t.Fatalf("read-only Get(numbered) = %q, %v", b, err)
	}
	ro.Close()

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fresh, err := s.Put([]byte("in a segment"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{{old[0], "numbered one"}, {old[1], "numbered two"}, {fresh, "in a segment"}} {
		if b, err := s.Get(c.name); err != nil || string(b) != c.want {
			t.Errorf("Get = %q, %v; want %q", b, err, c.want)
		}
	}
	if got := walked(t, s); len(got) != 3 {
		t.Errorf("Walk = %v; want 3 names", got)
	}
	if err := s.db.Delete(binary.BigEndian.AppendUint64([]byte{'s'}, 0), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(old[0]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a numbered blob that is gone = %v; want ErrCorrupt", err)
	}
}

// TestNewStoreHasNoPebbleData: a store begun with segments opens no
// database of blobs, only its index.
func TestNewStoreHasNoPebbleData(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if s.db != nil {
		t.Error("a new store opened a database of blobs")
	}
	s.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{IndexDir, SegmentDir}; !slices.Equal(names, want) {
		t.Errorf("store directory holds %v; want %v", names, want)
	}
}

// segmentBytes returns the contents of segment num.
func segmentBytes(t *testing.T, s *Store, num uint32) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.segs.dir, segmentName(num)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendsSurviveReopen: after a reopen, new blobs go after the old
// ones, even after bytes no index entry names (a batch written but not
// acknowledged before a crash), so nothing stored is overwritten.
func TestAppendsSurviveReopen(t *testing.T) {
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
	f, err := os.OpenFile(filepath.Join(dir, SegmentDir, segmentName(1)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("unacknowledged")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second, err := s.Put([]byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range append(first, second) {
		if _, err := s.Get(n); err != nil {
			t.Errorf("blob %d after reopen: %v", i, err)
		}
	}
	if got, want := string(segmentBytes(t, s, 1)), "abunacknowledgedc"; got != want {
		t.Errorf("segment holds %q; want %q", got, want)
	}
}

// TestSegmentsRoll: once a segment is full the next blobs begin a new one;
// a batch larger than a segment still goes into one; every blob reads
// back, also after a reopen.
func TestSegmentsRoll(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.segs.max = 10
	var names []string
	blobs := [][][]byte{{[]byte("12345678")}, {[]byte("abc")}, {[]byte("larger than"), []byte(" a segment")}, {[]byte("z")}}
	for _, batch := range blobs {
		n, err := s.PutMany(batch)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n...)
	}
	for num, want := range map[uint32]string{1: "12345678", 2: "abc", 3: "larger than a segment", 4: "z"} {
		if got := string(segmentBytes(t, s, num)); got != want {
			t.Errorf("segment %d holds %q; want %q", num, got, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, n := range names {
		if _, err := s.Get(n); err != nil {
			t.Errorf("blob %d after reopen: %v", i, err)
		}
	}
	if s.segs.active.num != 4 {
		t.Errorf("appends go to segment %d after reopen; want 4, the last", s.segs.active.num)
	}
}

// TestAppendsMoveOnAfterAFailedSync: once a segment's sync has failed
// (appends no longer go to it), the next blobs begin a new segment, and
// the blobs before stay readable.
func TestAppendsMoveOnAfterAFailedSync(t *testing.T) {
	s := openTemp(t)
	before, err := s.Put([]byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	s.segs.mu.Lock()
	s.segs.active = nil // as append leaves it after a failed sync
	s.segs.mu.Unlock()
	after, err := s.Put([]byte("after"))
	if err != nil {
		t.Fatalf("Put after a failed sync: %v", err)
	}
	if got := string(segmentBytes(t, s, 2)); got != "after" {
		t.Errorf("segment 2 holds %q; want the blob stored after the failure", got)
	}
	for _, n := range []string{before, after} {
		if _, err := s.Get(n); err != nil {
			t.Error(err)
		}
	}
}

// TestIndexWithoutBlob: an index entry that names bytes its segment does
// not hold is corruption, not absence.
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
	if err := os.Truncate(filepath.Join(dir, SegmentDir, segmentName(1)), 3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(name); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of an indexed blob that is gone = %v; want ErrCorrupt", err)
	}
}

// TestDamagedIndexEntry: an index entry of the wrong size, or one giving a
// length no blob can have, is corruption: Get says so and allocates
// nothing for it.
func TestDamagedIndexEntry(t *testing.T) {
	s := openTemp(t)
	if _, err := s.Put([]byte("segment 1 exists")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		entry []byte
	}{
		{"wrong size", []byte{1, 2, 3}},
		{"sequence number in a store without a database of blobs", make([]byte, 8)},
		{"length over MaxSize", place{1, 0, MaxSize + 1}.encode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := Hash([]byte(tc.name))
			if err := s.index.Set(indexKey(name), tc.entry, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := s.Get(name); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Get = %v; want ErrCorrupt", err)
			}
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Fatalf("Get of a damaged entry allocated %d bytes", grew)
			}
		})
	}
}

// TestConcurrentPutMany: writers storing at once each get a range of their
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
	total := 0
	for w := range writers {
		for b := range batches {
			for i := range perBatch {
				total += len(fmt.Sprintf("writer %d batch %d blob %d", w, b, i))
			}
		}
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
	if got := len(segmentBytes(t, s, 1)); got != total {
		t.Fatalf("segment holds %d bytes; want %d, every blob once", got, total)
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
	size := func() int { return len(segmentBytes(t, s, 1)) }
	if size() != len(b)+len("other") {
		t.Fatalf("segment holds %d bytes; want %d", size(), len(b)+len("other"))
	}
	names, err := s.PutMany([][]byte{b})
	if err != nil || names[0] != Hash(b) {
		t.Fatalf("PutMany again = %v, %v", names, err)
	}
	if size() != len(b)+len("other") {
		t.Fatalf("a blob stored again: segment holds %d bytes", size())
	}
	if got, err := s.Get(names[0]); err != nil || string(got) != string(b) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := s.PutNamed(names[0], b); err != nil {
		t.Fatal(err)
	}
	if size() != 2*len(b)+len("other") {
		t.Fatalf("PutNamed (repair) did not write: segment holds %d bytes", size())
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
	if _, err := s.segs.files[1].f.WriteAt([]byte("TO"), 0); err != nil {
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

// TestRecentBlobReadByItsPlace: a blob this process stored is read at the
// place it went in, without its index lookup; a reopened store, which
// remembers nothing, needs the index.
func TestRecentBlobReadByItsPlace(t *testing.T) {
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

// TestBlobsKeepTheOrderGiven: a batch's distinct blobs go in one after the
// other in the order given (a record's ciphertext beside its envelopes),
// whatever their names' order, and the index, read from disk after a
// reopen, points each name at its own blob.
func TestBlobsKeepTheOrderGiven(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for i := range 40 {
		blobs = append(blobs, fmt.Appendf(nil, "blob %d;", i))
	}
	names, err := s.PutMany(append(blobs, blobs[3])) // a repeat is written once
	if err != nil {
		t.Fatal(err)
	}
	if slices.IsSorted(names[:40]) {
		t.Fatal("the blobs' names happen to be sorted, so name order and the order given cannot be told apart; pick other blobs")
	}
	if got, want := segmentBytes(t, s, 1), bytes.Join(blobs, nil); !bytes.Equal(got, want) {
		t.Errorf("segment holds %q; want the blobs in the order given, once each: %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, name := range names[:40] {
		if got, err := s.Get(name); err != nil || string(got) != string(blobs[i]) {
			t.Errorf("Get(blob %d) after reopen = %q, %v", i, got, err)
		}
	}
}

// TestReadOnlyNeedsTheStore: opening a store that is not there read-only
// fails (verify reports it) instead of finding it empty.
func TestReadOnlyNeedsTheStore(t *testing.T) {
	if _, err := OpenReadOnly(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Fatal("OpenReadOnly of a missing directory succeeded")
	}
}

// TestReadOnlyWritesNothing: a store opened read-only refuses writes and
// creates no segment.
func TestReadOnlyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Put([]byte("x")); err == nil {
		t.Fatal("Put on a read-only store succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, SegmentDir, segmentName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only store created a segment: %v", err)
	}
}

// TestAdvance: what is left to write after a short vectored write.
func TestAdvance(t *testing.T) {
	in := [][]byte{[]byte("ab"), {}, []byte("cde"), []byte("f")}
	for _, tc := range []struct {
		n    int
		want string
		bufs int
	}{
		{0, "abcdef", 4},
		{1, "bcdef", 4},
		{2, "cdef", 2}, // the empty buffer after "ab" goes with it
		{3, "def", 2},
		{5, "f", 1},
		{6, "", 0},
	} {
		got := advance(in, tc.n)
		if string(bytes.Join(got, nil)) != tc.want || len(got) != tc.bufs {
			t.Errorf("advance(%d) = %q in %d buffers; want %q in %d", tc.n, got, len(got), tc.want, tc.bufs)
		}
	}
	if string(bytes.Join(in, nil)) != "abcdef" {
		t.Errorf("advance changed its argument: %q", in)
	}
}

// TestSegmentNumbersRunOut: after a segment numbered 4294967295 (planted:
// four billion segments are not written), a new segment is refused rather
// than numbered 0, which reopening would skip.
func TestSegmentNumbersRunOut(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, SegmentDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, SegmentDir, segmentName(math.MaxUint32)), []byte("full"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.segs.max = 4
	if _, err := s.Put([]byte("x")); err == nil || !strings.Contains(err.Error(), "no segment number left") {
		t.Fatalf("Put past the last segment number = %v; want a refusal", err)
	}
}

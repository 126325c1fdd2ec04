package blob

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPutGet(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	names, err := s.PutMany([][]byte{[]byte("a"), []byte("bb"), []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if names[0] != names[2] || names[0] != Hash([]byte("a")) {
		t.Fatalf("names %v", names)
	}
	for _, n := range names {
		if !s.Has(n) {
			t.Errorf("Has(%s) = false", n)
		}
	}
	got, err := s.Get(names[1])
	if err != nil || string(got) != "bb" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	missing := Hash([]byte("zz"))
	if _, err := s.Get(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
	if err := s.PutNamed(missing, []byte("not zz")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("PutNamed with wrong name = %v, want ErrCorrupt", err)
	}
	if _, err := s.Get("../../etc/passwd"); !errors.Is(err, ErrBadName) {
		t.Errorf("Get(bad name) = %v, want ErrBadName", err)
	}
	var walked []string
	if err := s.Walk(func(n string) error { walked = append(walked, n); return nil }); err != nil || len(walked) != 2 {
		t.Errorf("Walk = %v, %v; want 2 names", walked, err)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := [][]byte{{}, []byte("x"), bytes.Repeat([]byte("y"), 1000)}
	out, err := DecodeBatch(EncodeBatch(in))
	if err != nil || len(out) != len(in) {
		t.Fatalf("DecodeBatch = %d blobs, %v", len(out), err)
	}
	for i := range in {
		if !bytes.Equal(in[i], out[i]) {
			t.Errorf("blob %d differs", i)
		}
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short length prefix", []byte{0, 0, 1}, ErrCorrupt},
		{"length beyond data", []byte{0, 0, 0, 5, 'a'}, ErrCorrupt},
		{"blob over MaxSize", []byte{0xff, 0xff, 0xff, 0xff}, ErrTooLarge},
		{"more than MaxBatchBlobs blobs", make([]byte, 4*(MaxBatchBlobs+1)), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBatch(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("DecodeBatch = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDecodeBatchAtMaxBlobs: a batch of exactly MaxBatchBlobs blobs is
// well formed.
func TestDecodeBatchAtMaxBlobs(t *testing.T) {
	out, err := DecodeBatch(make([]byte, 4*MaxBatchBlobs))
	if err != nil || len(out) != MaxBatchBlobs {
		t.Fatalf("DecodeBatch of %d empty blobs = %d blobs, %v", MaxBatchBlobs, len(out), err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch([][]byte{[]byte("a"), []byte("bc")})) // well formed
	f.Add([]byte{0, 0, 0, 9, 1})                            // truncated blob
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                   // absurd length
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := DecodeBatch(b)
		if err != nil {
			return
		}
		if !bytes.Equal(EncodeBatch(out), b) {
			t.Fatal("re-encoding a decoded batch changed it")
		}
	})
}

// TestHasBeyondRecent checks that Has answers from the database for names
// no longer remembered: after two generations of newer names, and after a
// reopen; and that it never claims a name that was not stored.
func TestHasBeyondRecent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Put([]byte("first"))
	if err != nil {
		t.Fatal(err)
	}
	// Push first out of both generations without writing 128Ki blobs.
	var filler []string
	for i := range 2*recentMax + 1 {
		filler = append(filler, fmt.Sprintf("%064x", i))
	}
	s.recent.add(filler, make([]place, len(filler)))
	if s.recent.has(first) {
		t.Fatal("first still remembered after two full generations")
	}
	if !s.Has(first) {
		t.Error("Has(first) = false once forgotten by recent")
	}
	if b, err := s.Get(first); err != nil || string(b) != "first" {
		t.Errorf("Get(first) once forgotten by recent = %q, %v", b, err)
	}
	if s.Has(Hash([]byte("never stored"))) {
		t.Error("Has(never stored) = true")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Has(first) {
		t.Error("Has(first) = false after reopen")
	}
}

func TestValidName(t *testing.T) {
	good := Hash([]byte("x"))
	for _, c := range []struct {
		name string
		in   string
		want bool
	}{
		{"hash", good, true},
		{"all digits", strings.Repeat("0123456789", 6) + "0123", true},
		{"all letters", strings.Repeat("abcdef", 10) + "abcd", true},
		{"upper case", strings.ToUpper(good), false},
		{"one g", good[:63] + "g", false},
		{"one slash", "/" + good[1:], false},
		{"nul byte", good[:10] + "\x00" + good[11:], false},
		{"high byte", good[:10] + "\xb0" + good[11:], false},
		{"short", good[:63], false},
		{"long", good + "0", false},
		{"empty", "", false},
	} {
		if got := ValidName(c.in); got != c.want {
			t.Errorf("%s: ValidName = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestNewBatch: a batch names each blob by its hash, in the order given,
// refuses one over MaxSize, hands out copies of its names, and a store
// writes it as PutMany would.
func TestNewBatch(t *testing.T) {
	if _, err := NewBatch([][]byte{[]byte("a"), make([]byte, MaxSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("NewBatch with a blob over MaxSize = %v; want ErrTooLarge", err)
	}
	in := [][]byte{[]byte("b"), []byte("a"), []byte("b"), {}}
	b, err := NewBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	names := b.Names()
	if len(names) != len(in) || b.Len() != len(in) {
		t.Fatalf("%d names, Len %d; want %d", len(names), b.Len(), len(in))
	}
	for i := range in {
		if names[i] != Hash(in[i]) || !bytes.Equal(b.Blob(i), in[i]) {
			t.Errorf("blob %d: name %s, bytes %q; want %s, %q", i, names[i], b.Blob(i), Hash(in[i]), in[i])
		}
	}
	names[0] = "changed"
	if b.Names()[0] != Hash(in[0]) {
		t.Fatal("changing what Names returned changed the batch")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	for i, name := range b.Names() {
		if got, err := s.Get(name); err != nil || !bytes.Equal(got, in[i]) {
			t.Errorf("Get(blob %d) = %q, %v", i, got, err)
		}
	}
	const distinct = 2 // "b", "a" and the empty blob, once each
	if got := s.segs.active.end; got != distinct {
		t.Errorf("%d bytes written; want %d (each distinct blob once)", got, distinct)
	}
}

// TestWriteReleasing: release is called exactly once, before the write
// returns, whatever the write finds; when there are bytes to write, it is
// called once they are written and before the index names them (so before
// the syncs), and the blobs are stored when the write returns.
func TestWriteReleasing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	stored := mustBatch(t, "stored earlier")
	if err := s.Write(stored); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	s, err = Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(stored); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		store     *Store
		batch     *Batch
		wantErr   bool
		wantNamed bool // whether the index named the first blob when release ran
	}{
		{"new blobs", s, mustBatch(t, "one", "two"), false, false},
		{"stored just before", s, stored, false, true},
		{"read-only store", ro, mustBatch(t, "three"), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls, namedAtRelease := 0, false
			err := c.store.WriteReleasing(c.batch, func() {
				calls++
				namedAtRelease = c.store.Has(c.batch.Names()[0])
			})
			if calls != 1 || (err != nil) != c.wantErr || namedAtRelease != c.wantNamed {
				t.Fatalf("release called %d times, error %v, index named the blob at release %v; want once, error %v, named %v",
					calls, err, namedAtRelease, c.wantErr, c.wantNamed)
			}
			if !c.wantErr {
				for _, n := range c.batch.Names() {
					if !c.store.Has(n) {
						t.Errorf("Has(%s) = false after the write", n)
					}
				}
			}
		})
	}
}

func mustBatch(t *testing.T, blobs ...string) *Batch {
	t.Helper()
	bs := make([][]byte, len(blobs))
	for i, b := range blobs {
		bs[i] = []byte(b)
	}
	b, err := NewBatch(bs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package pebblefs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// countingFS counts the writes that reach the files it creates.
type countingFS struct {
	vfs.FS
	writes *int
}

func (fs countingFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, fs.writes}, nil
}

type countingFile struct {
	vfs.File
	writes *int
}

func (f countingFile) Write(p []byte) (int, error) {
	*f.writes++
	return f.File.Write(p)
}

func content(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWritesArriveWholeInChunks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int // the writes Pebble makes
		max   int   // at most this many reach the file
	}{
		{"table blocks", repeat(4<<10, 1000), 4000<<10/ChunkSize + 1},
		{"odd sizes", []int{1, 7, 4095, 4097, 100 << 10, 3}, 1},
		{"exactly a chunk", []int{ChunkSize, ChunkSize}, 2},
		{"larger than a chunk", []int{10, 3 * ChunkSize, 10}, 3},
		{"nothing", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, writes := vfs.NewMem(), 0
			fs := Buffered(countingFS{base, &writes})
			f, err := fs.Create("000001.sst")
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for i, n := range tc.sizes {
				p := bytes.Repeat([]byte{byte(i + 1)}, n)
				want = append(want, p...) // first: a vfs.File's Write may change p
				if got, err := f.Write(p); err != nil || got != n {
					t.Fatalf("write %d: %d, %v", i, got, err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := content(t, base, "000001.sst"); !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes, want the %d written, in order", len(got), len(want))
			}
			if writes > tc.max {
				t.Fatalf("%d writes reached the file; want at most %d", writes, tc.max)
			}
		})
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}

// Each call that syncs, or that reads what was written, sees every byte
// written before it.
func TestCallsThatNeedTheBytesPassThemOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(vfs.File) error
	}{
		{"Sync", func(f vfs.File) error { return f.Sync() }},
		{"SyncData", func(f vfs.File) error { return f.SyncData() }},
		{"SyncTo", func(f vfs.File) error { _, err := f.SyncTo(3); return err }},
		{"Stat", func(f vfs.File) error {
			fi, err := f.Stat()
			if err == nil && fi.Size() != 5 {
				err = fmt.Errorf("Stat says %d bytes, want 5", fi.Size())
			}
			return err
		}},
		{"ReadAt", func(f vfs.File) error { _, err := f.ReadAt(make([]byte, 5), 0); return err }},
		{"WriteAt", func(f vfs.File) error { _, err := f.WriteAt([]byte("H"), 0); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := vfs.NewMem()
			f, err := Buffered(base).Create("000002.log")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if got := content(t, base, "000002.log"); len(got) != 0 {
				t.Fatalf("%d bytes reached the file before %s; the test needs them buffered", len(got), tc.name)
			}
			if err := tc.call(f); err != nil {
				t.Fatal(err)
			}
			if got := content(t, base, "000002.log"); len(got) != 5 {
				t.Fatalf("after %s the file holds %q, want the 5 bytes written", tc.name, got)
			}
		})
	}
}

func TestSmallFilesAreNotBuffered(t *testing.T) {
	for _, name := range []string{"MANIFEST-000001", "OPTIONS-000003", "CURRENT", "marker.format-version.000001.013"} {
		base := vfs.NewMem()
		f, err := Buffered(base).Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := content(t, base, name); string(got) != "x" {
			t.Errorf("%s: a write did not reach the file at once", name)
		}
		f.Close()
	}
}

// failingFS creates files whose writes fail.
type failingFS struct{ vfs.FS }

var errDisk = errors.New("disk on fire")

func (fs failingFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return failingFile{f}, err
}

type failingFile struct{ vfs.File }

func (failingFile) Write([]byte) (int, error) { return 0, errDisk }

// A buffered write that fails later fails the call that passes it on, so
// Pebble never takes a file for synced when its bytes were lost.
func TestWriteErrorsReachTheCaller(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(vfs.File) error
	}{
		{"Sync", func(f vfs.File) error { return f.Sync() }},
		{"SyncData", func(f vfs.File) error { return f.SyncData() }},
		{"SyncTo", func(f vfs.File) error { _, err := f.SyncTo(1); return err }},
		{"Close", func(f vfs.File) error { return f.Close() }},
		{"the write that fills the chunk", func(f vfs.File) error { _, err := f.Write(make([]byte, ChunkSize)); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Buffered(failingFS{vfs.NewMem()}).Create("000004.sst")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte("data")); err != nil {
				t.Fatalf("a buffered write failed at once: %v", err)
			}
			if err := tc.call(f); !errors.Is(err, errDisk) {
				t.Fatalf("%s returned %v, want the write's error", tc.name, err)
			}
		})
	}
}

// A Pebble store on the buffered filesystem keeps what it synced through a
// crash (the filesystem dropping everything not synced), through flushes
// and compactions of its tables.
func TestPebbleKeepsSyncedWritesThroughACrash(t *testing.T) {
	mem := vfs.NewStrictMem()
	opts := &pebble.Options{FS: Buffered(mem), MemTableSize: 1 << 20}
	db, err := pebble.Open("", opts)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 1000)
	const keys = 3000 // ~3 MB: several memtable flushes and a compaction
	for i := range keys {
		if err := db.Set(fmt.Appendf(nil, "k%05d", i), value, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	mem.SetIgnoreSyncs(true)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	mem.ResetToSyncedState()
	mem.SetIgnoreSyncs(false)
	db, err = pebble.Open("", opts)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer db.Close()
	for i := range keys {
		v, closer, err := db.Get(fmt.Appendf(nil, "k%05d", i))
		if err != nil {
			t.Fatalf("key %d, written with Sync, lost in the crash: %v", i, err)
		}
		if !bytes.Equal(v, value) {
			t.Fatalf("key %d came back changed", i)
		}
		closer.Close()
	}
}

// BenchmarkWrite writes a table file's worth of 4 KiB blocks to disk, as
// Pebble's table writer does, through the plain and the buffered
// filesystem. Compare the two with -benchtime and -count; CPU matters more
// than wall time here (see the package doc).
func BenchmarkWrite(b *testing.B) {
	block := bytes.Repeat([]byte{0xa5}, 4<<10)
	const size = 64 << 20
	for _, bc := range []struct {
		name string
		fs   vfs.FS
	}{{"plain", vfs.Default}, {"buffered", Buffered(vfs.Default)}} {
		b.Run(bc.name, func(b *testing.B) {
			name := filepath.Join(b.TempDir(), "000001.sst")
			b.SetBytes(size)
			for b.Loop() {
				f, err := bc.fs.Create(name)
				if err != nil {
					b.Fatal(err)
				}
				for n := 0; n < size; n += len(block) {
					if _, err := f.Write(block); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				if err := os.Remove(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Package pebblefs gives medchain's Pebble stores a filesystem that hands
// the kernel large writes.
//
// Pebble writes its table files through a 4 KiB buffer and its write-ahead
// log a 32 KiB block at a time, so a flush or a compaction makes one write
// system call per 4 KiB and a synced batch of blobs one per 32 KiB. On the
// virtual machines we measure on, a system call costs several microseconds:
// writing 256 MiB in 4 KiB writes takes 3.5 - 4.5 times the CPU of writing
// it in 256 KiB writes (BenchmarkWrite). [Buffered] collects the writes of
// those files and passes them on in chunks of [ChunkSize].
//
// Durability is unchanged: every call that promises or queues persistence
// (Sync, SyncData, SyncTo) and every call that reads the file back or
// closes it (Stat, ReadAt, Read, WriteAt, Close) first passes on whatever is
// buffered. Data that was never synced could be lost in a crash before and
// still can; data that was synced cannot.
package pebblefs

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/vfs"
)

// ChunkSize is how much a buffered file collects before writing.
const ChunkSize = 256 << 10

// Buffered returns fs with the writes of its table files (*.sst) and
// write-ahead logs (*.log) collected into chunks of ChunkSize. Every other
// file, and every read, goes to fs unchanged.
func Buffered(fs vfs.FS) vfs.FS { return bufferedFS{fs} }

type bufferedFS struct{ vfs.FS }

// buffers reports whether files named name are written in chunks: the
// large, sequentially written ones. The manifest and the options file are
// small and left alone.
func buffers(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".log")
}

func (fs bufferedFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !buffers(name) {
		return f, err
	}
	return newFile(f), nil
}

func (fs bufferedFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil || !buffers(newname) {
		return f, err
	}
	return newFile(f), nil
}

// file passes its writes on in chunks. Like the files Pebble writes
// through, it is not safe for concurrent writes; Pebble has one writer per
// file.
type file struct {
	vfs.File
	buf []byte
}

func newFile(f vfs.File) *file { return &file{File: f, buf: make([]byte, 0, ChunkSize)} }

// flush passes the buffered bytes on.
func (f *file) flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	n, err := f.File.Write(f.buf)
	if err == nil && n < len(f.buf) {
		err = io.ErrShortWrite
	}
	f.buf = f.buf[:0]
	return err
}

func (f *file) Write(p []byte) (int, error) {
	if len(f.buf)+len(p) > cap(f.buf) {
		if err := f.flush(); err != nil {
			return 0, err
		}
	}
	if len(p) >= cap(f.buf) {
		return f.File.Write(p)
	}
	f.buf = append(f.buf, p...)
	return len(p), nil
}

func (f *file) Sync() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *file) SyncData() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *file) SyncTo(length int64) (fullSync bool, err error) {
	if err := f.flush(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func (f *file) Close() error {
	return errors.Join(f.flush(), f.File.Close())
}

func (f *file) Stat() (os.FileInfo, error) {
	if err := f.flush(); err != nil {
		return nil, err
	}
	return f.File.Stat()
}

func (f *file) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

package blob

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// SegmentDir is where, inside a store's directory, its segment files live.
const SegmentDir = "segments"

// segmentSize is the size past which a segment is closed to new blobs and
// the next one begun. A batch larger than that still goes into one segment.
const segmentSize = 1 << 30

// maxIovecs bounds the buffers handed to one vectored write (the kernel's
// IOV_MAX is 1024).
const maxIovecs = 1024

// place is where a blob lies: its segment, its offset in it and its
// length. Index entries hold it in 16 bytes (placeSize).
type place struct {
	seg uint32
	off uint64
	n   uint32
}

const placeSize = 16

func (p place) encode() []byte {
	b := make([]byte, placeSize)
	binary.BigEndian.PutUint32(b, p.seg)
	binary.BigEndian.PutUint64(b[4:], p.off)
	binary.BigEndian.PutUint32(b[12:], p.n)
	return b
}

func decodePlace(b []byte) place {
	return place{binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint32(b[12:])}
}

// segments is a store's blobs: files appended to and never rewritten, each
// blob's bytes as given, with no framing (its place is in the index, its
// name is checked on every read). A write reserves its range under a lock
// and writes outside it, so concurrent batches write at once and share
// their syncs. A crash can leave a segment with bytes no index entry
// names (a batch written but not acknowledged): space, never a wrong
// answer, and appends continue after them.
type segments struct {
	dir      string
	readOnly bool
	max      int64 // segmentSize, but for tests

	mu     sync.RWMutex
	files  map[uint32]*segment
	active *segment // the segment appends go to; nil until the first, and after a failed sync
	last   uint32   // the highest segment number there is
}

// segment is one file of a store.
type segment struct {
	num uint32
	f   *os.File
	end int64 // where the next append goes; guarded by segments.mu

	// Group commit: done counts the writes finished in the file; a sync
	// that begins once done has reached a write's count makes that write
	// durable, so a writer that finds one has finished need not sync.
	done   atomic.Uint64
	syncMu sync.Mutex
	synced uint64 // done when the last successful sync began
	failed error  // a failed sync: the file's unsynced bytes may be gone
}

func segmentName(num uint32) string { return fmt.Sprintf("%010d.seg", num) }

// openSegments opens every segment in dir. A missing dir is an empty set of
// segments; it is created with the first one.
func openSegments(dir string, readOnly bool) (*segments, error) {
	s := &segments{dir: dir, readOnly: readOnly, max: segmentSize, files: map[uint32]*segment{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".seg")
		n, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || n == 0 || e.Name() != segmentName(uint32(n)) {
			continue // not ours
		}
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), flag, 0)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open segment: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			s.close()
			return nil, fmt.Errorf("open segment: %w", err)
		}
		g := &segment{num: uint32(n), f: f, end: fi.Size()}
		s.files[g.num] = g
		if g.num > s.last {
			s.active, s.last = g, g.num
		}
	}
	return s, nil
}

func (s *segments) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, num := range slices.Sorted(maps.Keys(s.files)) {
		errs = append(errs, s.files[num].f.Close())
	}
	s.files = map[uint32]*segment{}
	s.active = nil
	return errors.Join(errs...)
}

// reserve returns the segment and offset at which n bytes go, past every
// range reserved before, beginning a new segment when the active one is
// full or has failed.
func (s *segments) reserve(n int64) (*segment, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.active
	if g == nil || g.end > 0 && g.end+n > s.max {
		if s.last == math.MaxUint32 {
			return nil, 0, fmt.Errorf("no segment number left after %s; a store cannot grow past it, so give the node a new blob directory and let it fetch blobs from its peers", segmentName(s.last))
		}
		var err error
		if g, err = s.create(s.last + 1); err != nil {
			return nil, 0, err
		}
	}
	off := g.end
	g.end += n
	return g, off, nil
}

// create begins segment num and makes its name durable. Called with mu
// held.
func (s *segments) create(num uint32) (*segment, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(num)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("create segment: %w", err)
	}
	g := &segment{num: num, f: f}
	s.files[num] = g
	s.active, s.last = g, num
	return g, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// append writes blobs one after the other, durably, and returns their
// places. copied, if not nil, is called once their bytes are written and
// before the wait for the disk.
func (s *segments) append(blobs [][]byte, copied func()) ([]place, error) {
	if s.readOnly {
		return nil, errors.New("the store is open read-only")
	}
	var total int64
	for _, b := range blobs {
		total += int64(len(b))
	}
	g, off, err := s.reserve(total)
	if err != nil {
		return nil, err
	}
	places := make([]place, len(blobs))
	at := off
	for i, b := range blobs {
		places[i] = place{g.num, uint64(at), uint32(len(b))}
		at += int64(len(b))
	}
	for start := 0; start < len(blobs); start += maxIovecs {
		chunk := blobs[start:min(start+maxIovecs, len(blobs))]
		if err := writeAt(g.f, chunk, int64(places[start].off)); err != nil {
			return nil, fmt.Errorf("write segment %d: %w (check the disk: space and I/O errors; the upload can be sent again)", g.num, err)
		}
	}
	if copied != nil {
		copied()
	}
	if err := g.sync(); err != nil {
		s.mu.Lock()
		if s.active == g {
			s.active = nil // appends continue in a new segment
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("sync segment %d: %w (check the disk for I/O errors; later blobs go to a new segment, and the upload can be sent again)", g.num, err)
	}
	return places, nil
}

// sync makes durable every write finished in g, the caller's included,
// with one fdatasync for all the writers waiting at once. After a failed
// sync the kernel may have dropped unsynced pages, so every later sync of
// g fails too: a write is acknowledged only if no sync lost it.
func (g *segment) sync() error {
	mine := g.done.Add(1)
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	if g.failed != nil {
		return g.failed
	}
	if g.synced >= mine {
		return nil
	}
	begun := g.done.Load()
	if err := fdatasync(g.f); err != nil {
		g.failed = err
		return err
	}
	g.synced = begun
	return nil
}

// read returns the bytes at p, or ErrNotFound if its segment does not hold
// them.
func (s *segments) read(p place) ([]byte, error) {
	s.mu.RLock()
	g := s.files[p.seg]
	s.mu.RUnlock()
	if g == nil {
		return nil, fmt.Errorf("%w: segment %d", ErrNotFound, p.seg)
	}
	b := make([]byte, p.n)
	if _, err := g.f.ReadAt(b, int64(p.off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: segment %d ends before %d+%d", ErrNotFound, p.seg, p.off, p.n)
		}
		return nil, fmt.Errorf("read segment %d: %w", p.seg, err)
	}
	return b, nil
}

// advance returns what is left of bufs once their first n bytes are
// written, leaving bufs as they were.
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if n > 0 {
		bufs = slices.Clone(bufs)
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

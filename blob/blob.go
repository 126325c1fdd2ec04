// Package blob is a node's content-addressed store for ciphertext and key
// envelopes. A blob's name is the SHA-256 of its bytes, checked on every
// write and every read, so a node can hold and serve blobs without being
// trusted with them: a changed byte is found, never served.
//
// Blobs are appended to segment files and never rewritten; an embedded
// Pebble database indexes each name to the blob's place (segment, offset,
// length). A batch of blobs costs one vectored write and two syncs, the
// segment's and the index's, shared with the batches written at the same
// time. A blob's bytes are written once: kept in Pebble they went to its
// write-ahead log, then its memtable, then a table file, and those copies
// were about 30% of the CPU of a node taking records.
//
// Erasing a blob (crypto-shredding, planned) will need no rewrite either:
// drop its index entry and punch its range out of its segment.
//
// Stores written before segments keep their blobs in a Pebble database in
// the store's directory, under sequence numbers (or, older still, under
// their names); they are read as they are, and new blobs go to segments.
//
// blob stores only what it is given; it never sees plaintext or keys.
package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/medchain/medchain/internal/pebblefs"
)

// MaxSize bounds one blob.
const MaxSize = 64 << 20

// Sentinel errors.
var (
	ErrNotFound = errors.New("blob not found")
	ErrCorrupt  = errors.New("blob corrupt")
	ErrBadName  = errors.New("blob name must be 64 lowercase hex digits")
	ErrTooLarge = errors.New("blob too large")
)

// Store is a database of blobs, safe for concurrent use.
type Store struct {
	segs   *segments
	index  *pebble.DB // SHA-256 of a blob: its place in segs, or its sequence number in db; nil read-only before the first write
	db     *pebble.DB // blobs of a store written before segments (see seqKey); nil in any other
	legacy bool       // db holds blobs under their names
	recent recent
}

// IndexDir is where, inside a store's directory, its index lives.
const IndexDir = "index"

// recentMax bounds each generation of [recent]: two of them hold the last
// 64Ki to 128Ki names stored, about 12 MB.
const recentMax = 1 << 16

// recent remembers the names this process stored, each with its place, so
// that Has answers for a blob just written without a lookup (CheckTx asks
// for every record's blobs right after its author stored them, and a
// lookup in a large memtable costs more than the rest of the record's
// check), Get reads it without its index lookup (a record is most often
// read soon after it is written), and storing it again writes nothing
// (until a read finds its copy damaged, see forget). Blobs are never
// deleted, so a remembered entry stays true; Get checks the bytes' hash
// whatever told it where they are. When the current generation is full it
// becomes the old one and the oldest is dropped.
type recent struct {
	mu       sync.Mutex
	cur, old map[[32]byte]place
}

// add remembers that names went in at places.
func (r *recent) add(names []string, places []place) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, name := range names {
		var k [32]byte
		if _, err := hex.Decode(k[:], []byte(name)); err == nil {
			r.put(k, places[i])
		}
	}
}

func (r *recent) put(k [32]byte, p place) {
	if len(r.cur) >= recentMax || r.cur == nil {
		r.old, r.cur = r.cur, make(map[[32]byte]place, recentMax)
	}
	r.cur[k] = p
}

// place returns where name went in, if remembered, and keeps it in the
// current generation.
func (r *recent) place(name string) (place, bool) {
	var k [32]byte
	if _, err := hex.Decode(k[:], []byte(name)); err != nil {
		return place{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.cur[k]; ok {
		return p, true
	}
	p, ok := r.old[k]
	if ok {
		r.put(k, p)
	}
	return p, ok
}

func (r *recent) has(name string) bool {
	_, ok := r.place(name)
	return ok
}

// forget drops name, so that storing it again writes it.
func (r *recent) forget(name string) {
	var k [32]byte
	if _, err := hex.Decode(k[:], []byte(name)); err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cur, k)
	delete(r.old, k)
}

// Open opens or creates a store in dir.
func Open(dir string) (*Store, error) { return open(dir, false) }

// OpenReadOnly opens an existing store without writing to it.
func OpenReadOnly(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, readOnly bool) (*Store, error) {
	s := &Store{}
	if err := s.open(dir, readOnly); err != nil {
		s.Close()
		return nil, fmt.Errorf("open blob store %s: %w", dir, err)
	}
	return s, nil
}

// open opens the parts of the store in dir; Close closes those it opened.
func (s *Store) open(dir string, readOnly bool) (err error) {
	if readOnly {
		if _, err := os.Stat(dir); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if s.segs, err = openSegments(filepath.Join(dir, SegmentDir), readOnly); err != nil {
		return err
	}
	cache := pebble.NewCache(256 << 20)
	defer cache.Unref()
	indexDir := filepath.Join(dir, IndexDir)
	if _, err := os.Stat(indexDir); err == nil || !readOnly {
		// Index entries are small and random: the default memtable
		// (4 MiB) flushes often enough to keep them few per file.
		if s.index, err = pebble.Open(indexDir, options(cache, readOnly)); err != nil {
			return fmt.Errorf("open index: %w", err)
		}
	}
	// A Pebble database in dir itself holds the blobs of a store written
	// before segments.
	desc, err := pebble.Peek(dir, vfs.Default)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil && desc.Exists {
		if s.db, err = pebble.Open(dir, options(cache, readOnly)); err != nil {
			return err
		}
		if s.legacy, err = hasKeys(s.db, 'd'); err != nil {
			return err
		}
	}
	return nil
}

// options configures the index, or the database of blobs of a store
// written before segments. Neither compresses: hashes and ciphertext do
// not, and trying costs CPU on every flush and compaction.
func options(cache *pebble.Cache, readOnly bool) *pebble.Options {
	opts := &pebble.Options{Logger: quiet{}, ReadOnly: readOnly, Cache: cache,
		FS:                    pebblefs.Buffered(vfs.Default),
		L0CompactionThreshold: 8,
		LBaseMaxBytes:         512 << 20,
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10) // cheap misses in Has
		opts.Levels[i].TargetFileSize = 64 << 20
		opts.Levels[i].Compression = pebble.NoCompression
	}
	return opts
}

// hasKeys reports whether db holds a key beginning with prefix.
func hasKeys(db *pebble.DB, prefix byte) (bool, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return false, err
	}
	found := it.First()
	return found, errors.Join(it.Error(), it.Close())
}

// Close closes the store.
func (s *Store) Close() error {
	var errs []error
	if s.index != nil {
		errs = append(errs, s.index.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	if s.segs != nil {
		errs = append(errs, s.segs.close())
	}
	return errors.Join(errs...)
}

// Hash returns the name of b.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ValidName reports whether name is a well-formed blob name.
func ValidName(name string) bool {
	if len(name) != 64 {
		return false
	}
	// A table, not a range test per byte: random hex digits mispredict the
	// branch, and every record's check calls this four times.
	var bad byte
	for i := 0; i < len(name); i++ {
		bad |= notLowerHex[name[i]]
	}
	return bad == 0
}

// notLowerHex is 1 for every byte but 0-9 and a-f.
var notLowerHex = func() (t [256]byte) {
	for c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			t[c] = 1
		}
	}
	return t
}()

// Keys. In index, the 32 bytes of a blob's SHA-256 hold its place in a
// segment (16 bytes), or, for a blob stored before segments, its sequence
// number (8 bytes): in db, 's' + that number big-endian holds the blob.
// Older stores still hold blobs in db under 'd' + hash, with 'h' + hash
// marking each.
func seqKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = 's'
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func indexKey(name string) []byte {
	k, _ := hex.DecodeString(name)
	return k
}

func legacyKey(name string) []byte { return append([]byte{'d'}, indexKey(name)...) }

func legacyMarker(name string) []byte { return append([]byte{'h'}, indexKey(name)...) }

// Put stores b under its hash, durably, and returns the hash.
func (s *Store) Put(b []byte) (string, error) {
	names, err := s.PutMany([][]byte{b})
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// PutMany stores blobs durably, as Write does, and returns their names.
func (s *Store) PutMany(blobs [][]byte) ([]string, error) {
	b, err := NewBatch(blobs)
	if err != nil {
		return nil, err
	}
	if err := s.write(b, false, nil); err != nil {
		return nil, err
	}
	return b.names, nil
}

// Write stores a batch of blobs durably: the blobs in their segment, then
// their index entries, each write synced, so that an index entry never
// names a blob a crash lost. (A crash between the two leaves blobs no
// entry names: space, never a wrong answer; the write was not acknowledged
// and is stored again when retried.) A blob this process stored recently
// is not written again (an upload retried, a peer's push of a blob already
// fetched) unless a read has found its copy damaged; an older one is,
// blind: a lookup would cost more than the rare duplicate, and its old
// copy becomes unused space. The batch's blobs were hashed when it was
// made, not here.
func (s *Store) Write(b *Batch) error { return s.write(b, false, nil) }

// WriteReleasing is Write that calls release, exactly once and before it
// returns, as soon as the blobs' bytes are written: before it waits for
// the disk to make them durable. A caller that bounds how many writes use
// the CPU at once (copying bytes into the page cache) can then let the
// next one begin while this one waits, and the waiting writes share their
// syncs.
func (s *Store) WriteReleasing(b *Batch, release func()) error {
	var once sync.Once
	copied := func() { once.Do(release) }
	defer copied()
	return s.write(b, false, copied)
}

// write stores b as Write says; with repair, also the blobs this process
// stored recently (a damaged copy is replaced by good bytes). copied, if
// not nil, is called when the blobs' bytes are written, before the syncs.
func (s *Store) write(b *Batch, repair bool, copied func()) error {
	if s.index == nil || s.segs.readOnly {
		return errors.New("store blobs: the store is open read-only")
	}
	blobs, names := b.blobs, b.names
	seen := make(map[string]bool, len(blobs))
	var order []int // distinct blobs, in the order given
	for i := range blobs {
		if !seen[names[i]] {
			seen[names[i]] = true
			if repair || !s.recent.has(names[i]) {
				order = append(order, i)
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	// Blobs go in one after the other in the order given, so that blobs
	// given together stay together on disk: a record's ciphertext and
	// envelopes, which its reads fetch one after the other. Index entries
	// go in name order, so that the index's memtable inserts each near the
	// previous one.
	ordered := make([][]byte, len(order))
	stored := make([]string, len(order))
	for k, i := range order {
		ordered[k], stored[k] = blobs[i], names[i]
	}
	places, err := s.segs.append(ordered, copied)
	if err != nil {
		return fmt.Errorf("store blobs: %w", err)
	}
	byName := make([]int, len(order))
	for k := range byName {
		byName[k] = k
	}
	slices.SortFunc(byName, func(i, j int) int { return strings.Compare(stored[i], stored[j]) })
	index := s.index.NewBatchWithSize(len(order) * (32 + placeSize + 16))
	defer index.Close()
	for _, k := range byName {
		_ = index.Set(indexKey(stored[k]), places[k].encode(), nil) // a batch's Set fails only once committed
	}
	if err := index.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store blob index: %w", err)
	}
	s.recent.add(stored, places)
	return nil
}

// PutNamed stores b and checks that its hash is name.
func (s *Store) PutNamed(name string, b []byte) error {
	if !ValidName(name) {
		return ErrBadName
	}
	batch, err := NewBatch([][]byte{b})
	if err != nil {
		return err
	}
	if batch.names[0] != name {
		return fmt.Errorf("%w: bytes do not hash to %s", ErrCorrupt, name)
	}
	// A blob is put by name when it was missing or its copy damaged: write
	// it whatever this process remembers.
	return s.write(batch, true, nil)
}

// Has reports whether the store holds name (without checking it).
func (s *Store) Has(name string) bool {
	if !ValidName(name) {
		return false
	}
	if s.recent.has(name) {
		return true
	}
	if _, ok, err := s.lookup(name); err == nil && ok {
		return true
	}
	return s.legacy && exists(s.db, legacyMarker(name))
}

// lookup returns name's index entry: a place (placeSize bytes) or a
// sequence number in db (8 bytes).
func (s *Store) lookup(name string) (entry []byte, ok bool, err error) {
	if s.index == nil {
		return nil, false, nil
	}
	v, closer, err := s.index.Get(indexKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	if len(v) != placeSize && (len(v) != 8 || s.db == nil) {
		return nil, false, fmt.Errorf("%w: index entry of %s is %d bytes", ErrCorrupt, name, len(v))
	}
	if len(v) == placeSize && decodePlace(v).n > MaxSize {
		return nil, false, fmt.Errorf("%w: index entry of %s gives a length over %d", ErrCorrupt, name, MaxSize)
	}
	return bytes.Clone(v), true, nil
}

func exists(db *pebble.DB, k []byte) bool {
	_, closer, err := db.Get(k)
	if err != nil {
		return false
	}
	closer.Close()
	return true
}

// Get returns the blob name after checking its hash.
func (s *Store) Get(name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, ErrBadName
	}
	checked := func(b []byte, err error) ([]byte, error) {
		if err == nil && Hash(b) != name {
			return nil, errMismatch
		}
		return b, err
	}
	if p, ok := s.recent.place(name); ok {
		if b, err := checked(s.segs.read(p)); err == nil {
			return b, nil
		}
		// Whatever went wrong, the index says it again, or better.
	}
	entry, indexed, err := s.lookup(name)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	var b []byte
	switch {
	case indexed && len(entry) == placeSize:
		b, err = checked(s.segs.read(decodePlace(entry)))
	case indexed:
		b, err = checked(s.fromDB(append([]byte{'s'}, entry...)))
	case s.legacy:
		b, err = checked(s.fromDB(legacyKey(name)))
	default:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	switch {
	case errors.Is(err, ErrNotFound) && indexed: // the index names bytes the store does not hold
		return nil, fmt.Errorf("%w: %s is indexed but missing", ErrCorrupt, name)
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	case errors.Is(err, errMismatch):
		s.recent.forget(name) // storing the good bytes again replaces this copy
		return nil, fmt.Errorf("%w: %s does not match its hash", ErrCorrupt, name)
	case err != nil:
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	return b, nil
}

// errMismatch is Get's answer for bytes that do not hash to their name.
var errMismatch = errors.New("blob does not match its hash")

// fromDB reads key k of db, a store's database from before segments.
func (s *Store) fromDB(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// Walk calls fn with the name of every stored blob, once: those stored
// under their names first, then the indexed ones, each in name order.
func (s *Store) Walk(fn func(name string) error) error {
	if s.legacy {
		err := walk(s.db, []byte{'d'}, func(k []byte) error {
			name := hex.EncodeToString(k[1:])
			if _, indexed, err := s.lookup(name); err != nil || indexed {
				return err // indexed: walked below
			}
			return fn(name)
		})
		if err != nil {
			return err
		}
	}
	if s.index == nil {
		return nil
	}
	return walk(s.index, nil, func(k []byte) error { return fn(hex.EncodeToString(k)) })
}

// walk calls fn with every key of db under prefix (nil: every key).
func walk(db *pebble.DB, prefix []byte, fn func(key []byte) error) error {
	o := &pebble.IterOptions{}
	if prefix != nil {
		o.LowerBound, o.UpperBound = prefix, []byte{prefix[0] + 1}
	}
	it, err := db.NewIter(o)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key()); err != nil {
			return err
		}
	}
	return it.Error()
}

// quiet keeps Pebble's informational logs out of the node's.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Package blob is a node's content-addressed store for ciphertext and key
// envelopes. A blob's name is the SHA-256 of its bytes, checked on every
// write and every read, so a node can hold and serve blobs without being
// trusted with them: a changed byte is found, never served.
//
// Blobs live in two embedded Pebble databases: the blobs themselves under
// increasing sequence numbers, and an index from name to sequence number.
// Names are random, so blobs stored under their names (as stores written
// before this layout hold them, and still serve) made every flush overlap
// every file below it, and compactions rewrote each blob about seven times
// by 1.5 million blobs; under sequence numbers new files never overlap old
// ones, so compactions move them instead, and only the small index entries
// are ever rewritten. A batch of blobs costs two synced writes, not one
// fsync per blob.
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
	db     *pebble.DB // 's' + sequence number: a blob (and the old layout's keys; see seqKey)
	index  *pebble.DB // SHA-256 of a blob: its sequence number in db; nil read-only before the first write
	legacy bool       // db holds blobs in the old layout
	recent recent

	mu   sync.Mutex
	next uint64 // the next sequence number
}

// IndexDir is where, inside a store's directory, its index lives.
const IndexDir = "index"

// recentMax bounds each generation of [recent]: two of them hold the last
// 64Ki to 128Ki names stored, about 10 MB.
const recentMax = 1 << 16

// recent remembers the names this process stored, each with the sequence
// number it went in under, so that Has answers for a blob just written
// without a lookup (CheckTx asks for every record's blobs right after its
// author stored them, and a lookup in a large memtable costs more than the
// rest of the record's check), Get reads it without its index lookup (a
// record is most often read soon after it is written), and storing it
// again writes nothing (until a read finds its copy damaged, see forget).
// Blobs are never deleted, so a remembered entry stays true; Get checks
// the bytes' hash whatever told it where they are. When the current
// generation is full it becomes the old one and the oldest is dropped.
type recent struct {
	mu       sync.Mutex
	cur, old map[[32]byte]uint64
}

// add remembers that names went in under consecutive sequence numbers
// from first.
func (r *recent) add(names []string, first uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, name := range names {
		var k [32]byte
		if _, err := hex.Decode(k[:], []byte(name)); err == nil {
			r.put(k, first+uint64(i))
		}
	}
}

func (r *recent) put(k [32]byte, seq uint64) {
	if len(r.cur) >= recentMax || r.cur == nil {
		r.old, r.cur = r.cur, make(map[[32]byte]uint64, recentMax)
	}
	r.cur[k] = seq
}

// seq returns the sequence number name went in under, if remembered, and
// keeps it in the current generation.
func (r *recent) seq(name string) (uint64, bool) {
	var k [32]byte
	if _, err := hex.Decode(k[:], []byte(name)); err != nil {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq, ok := r.cur[k]; ok {
		return seq, true
	}
	seq, ok := r.old[k]
	if ok {
		r.put(k, seq)
	}
	return seq, ok
}

func (r *recent) has(name string) bool {
	_, ok := r.seq(name)
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
	cache := pebble.NewCache(256 << 20)
	defer cache.Unref()
	db, err := pebble.Open(dir, options(cache, readOnly, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", dir, err)
	}
	s := &Store{db: db}
	indexDir := filepath.Join(dir, IndexDir)
	if _, err := os.Stat(indexDir); err == nil || !readOnly {
		// Index entries are small and random: the default memtable
		// (4 MiB) flushes often enough to keep them few per file.
		if s.index, err = pebble.Open(indexDir, options(cache, readOnly, 0)); err != nil {
			db.Close()
			return nil, fmt.Errorf("open blob index %s: %w", indexDir, err)
		}
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, fmt.Errorf("open blob store %s: %w", dir, err)
	}
	return s, nil
}

// options configures either database of a store. Neither compresses:
// ciphertext does not compress, nor do hashes, and trying costs CPU on
// every flush and compaction. Both write through [pebblefs.Buffered]: a
// synced batch of blobs is megabytes of log, a flush 64 MiB of table.
func options(cache *pebble.Cache, readOnly bool, memTable uint64) *pebble.Options {
	opts := &pebble.Options{Logger: quiet{}, ReadOnly: readOnly, Cache: cache, MemTableSize: memTable,
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

// load finds the next sequence number and whether db holds blobs in the
// old layout.
func (s *Store) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'s'}, UpperBound: []byte{'s' + 1}})
	if err != nil {
		return err
	}
	if it.Last() {
		if len(it.Key()) != 9 {
			it.Close()
			return fmt.Errorf("%w: sequence key of %d bytes", ErrCorrupt, len(it.Key()))
		}
		s.next = binary.BigEndian.Uint64(it.Key()[1:]) + 1
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'d'}, UpperBound: []byte{'d' + 1}})
	if err != nil {
		return err
	}
	s.legacy = it.First()
	return errors.Join(it.Error(), it.Close())
}

// Close closes the store.
func (s *Store) Close() error {
	var err error
	if s.index != nil {
		err = s.index.Close()
	}
	return errors.Join(err, s.db.Close())
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

// Keys. In db, 's' + an 8-byte big-endian sequence number holds a blob;
// in index, the 32 bytes of a blob's SHA-256 hold its sequence number.
// Stores written before this layout hold blobs in db under 'd' + hash, with
// 'h' + hash marking each, and are read as they are.
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
	if err := s.write(b, false); err != nil {
		return nil, err
	}
	return b.names, nil
}

// Write stores a batch of blobs durably: the blobs in one synced write,
// then their index entries in another, so that an index entry never names
// a blob a crash lost. (A crash between the two leaves blobs no entry
// names: space, never a wrong answer; the write was not acknowledged and
// is stored again when retried.) A blob this process stored recently is
// not written again (an upload retried, a peer's push of a blob already
// fetched) unless a read has found its copy damaged; an older one is,
// blind: a lookup would cost more than the rare duplicate, and its old
// copy becomes unused space. The batch's blobs were hashed when it was
// made, not here.
func (s *Store) Write(b *Batch) error { return s.write(b, false) }

// write stores b as Write says; with repair, also the blobs this process
// stored recently (a damaged copy is replaced by good bytes).
func (s *Store) write(b *Batch, repair bool) error {
	if s.index == nil {
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
	data, index := s.db.NewBatch(), s.index.NewBatch()
	defer data.Close()
	defer index.Close()
	// Numbers are taken under the lock and committed outside it, so that
	// concurrent writers (uploads, peers' pushes) share fsyncs. Their
	// batches may then reach db a little out of order, which costs at most
	// a small compaction where two flushes meet.
	s.mu.Lock()
	first := s.next
	s.next += uint64(len(order))
	s.mu.Unlock()
	// Blobs go in under consecutive numbers in the order given, so that
	// blobs given together stay together on disk: a record's ciphertext
	// and envelopes, which its reads fetch one after the other, then share
	// a block more often than not. Index entries go in name order, so that
	// the index's memtable inserts each near the previous one.
	seq := make([]uint64, len(blobs))
	for k, i := range order {
		seq[i] = first + uint64(k)
		_ = data.Set(seqKey(seq[i]), blobs[i], nil) // a batch's Set fails only once committed
	}
	byName := slices.Clone(order)
	slices.SortFunc(byName, func(i, j int) int { return strings.Compare(names[i], names[j]) })
	for _, i := range byName {
		_ = index.Set(indexKey(names[i]), seqKey(seq[i])[1:], nil)
	}
	if err := data.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store blobs: %w", err)
	}
	if err := index.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store blob index: %w", err)
	}
	stored := make([]string, len(order))
	for k, i := range order {
		stored[k] = names[i]
	}
	s.recent.add(stored, first)
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
	return s.write(batch, true)
}

// Has reports whether the store holds name (without checking it).
func (s *Store) Has(name string) bool {
	if !ValidName(name) {
		return false
	}
	if s.recent.has(name) {
		return true
	}
	if _, ok, err := s.seq(name); err == nil && ok {
		return true
	}
	return s.legacy && exists(s.db, legacyMarker(name))
}

// seq looks name up in the index.
func (s *Store) seq(name string) (seq []byte, ok bool, err error) {
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
	if len(v) != 8 {
		return nil, false, fmt.Errorf("%w: index entry of %s is %d bytes", ErrCorrupt, name, len(v))
	}
	return append([]byte{'s'}, v...), true, nil
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
	if seq, ok := s.recent.seq(name); ok {
		if b, err := s.read(name, seqKey(seq)); err == nil {
			return b, nil
		}
		// Whatever went wrong, the index says it again, or better.
	}
	k, ok, err := s.seq(name)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	if !ok {
		if !s.legacy {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		k = legacyKey(name)
	}
	b, err := s.read(name, k)
	switch {
	case errors.Is(err, ErrNotFound) && ok: // the index names a blob db does not hold
		return nil, fmt.Errorf("%w: %s is indexed but missing", ErrCorrupt, name)
	case errors.Is(err, errMismatch):
		s.recent.forget(name) // storing the good bytes again replaces this copy
		return nil, fmt.Errorf("%w: %s does not match its hash", ErrCorrupt, name)
	}
	return b, err
}

// errMismatch is read's answer for bytes that do not hash to their name.
var errMismatch = errors.New("blob does not match its hash")

// read returns the blob under key k in db, checked against its name.
func (s *Store) read(name string, k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	b := bytes.Clone(v)
	closer.Close()
	if Hash(b) != name {
		return nil, errMismatch
	}
	return b, nil
}

// Walk calls fn with the name of every stored blob, once: those in the
// old layout first, then the others, each in name order.
func (s *Store) Walk(fn func(name string) error) error {
	if s.legacy {
		err := walk(s.db, []byte{'d'}, func(k []byte) error {
			name := hex.EncodeToString(k[1:])
			if _, indexed, err := s.seq(name); err != nil || indexed {
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

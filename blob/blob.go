// Package blob is a node's content-addressed store for ciphertext and key
// envelopes. A blob's name is the SHA-256 of its bytes, checked on every
// write and every read, so a node can hold and serve blobs without being
// trusted with them: a changed byte is found, never served.
//
// Blobs live in an embedded Pebble database: a batch of blobs costs one
// synced write, not one fsync per blob.
//
// blob stores only what it is given; it never sees plaintext or keys.
package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
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
	db     *pebble.DB
	recent recent
}

// recentMax bounds each generation of [recent]: two of them hold the last
// 64Ki to 128Ki names stored, about 6 MB.
const recentMax = 1 << 16

// recent remembers the names this process stored, so that Has answers for
// a blob just written without a lookup: CheckTx asks for every record's
// blobs right after its author stored them, and a lookup in a large
// memtable costs more than the rest of the record's check. Blobs are never
// deleted, so a remembered name stays true. When the current generation is
// full it becomes the old one and the oldest is dropped.
type recent struct {
	mu       sync.Mutex
	cur, old map[[32]byte]struct{}
}

func (r *recent) add(names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if len(r.cur) >= recentMax || r.cur == nil {
			r.old, r.cur = r.cur, make(map[[32]byte]struct{}, recentMax)
		}
		var k [32]byte
		if _, err := hex.Decode(k[:], []byte(n)); err == nil {
			r.cur[k] = struct{}{}
		}
	}
}

func (r *recent) has(name string) bool {
	var k [32]byte
	if _, err := hex.Decode(k[:], []byte(name)); err != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, inCur := r.cur[k]
	_, inOld := r.old[k]
	return inCur || inOld
}

// Open opens or creates a store in dir.
func Open(dir string) (*Store, error) { return open(dir, false) }

// OpenReadOnly opens an existing store without writing to it.
func OpenReadOnly(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, readOnly bool) (*Store, error) {
	cache := pebble.NewCache(256 << 20)
	defer cache.Unref()
	opts := &pebble.Options{Logger: quiet{}, ReadOnly: readOnly, Cache: cache,
		// Blobs are written once and never change: large memtables and
		// files keep compactions (rewrites of whole blobs) few.
		MemTableSize:          64 << 20,
		L0CompactionThreshold: 8,
		LBaseMaxBytes:         512 << 20,
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10) // cheap misses in Has
		opts.Levels[i].TargetFileSize = 64 << 20
		// Ciphertext does not compress; trying costs CPU on every flush
		// and compaction.
		opts.Levels[i].Compression = pebble.NoCompression
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open blob store %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

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

// Keys: 'd' + hash holds a blob, 'h' + hash marks that it is there, so
// that Has is a point lookup of a tiny value, never a read of the blob.
func key(name string) []byte {
	k, _ := hex.DecodeString(name)
	return append([]byte{'d'}, k...)
}

func marker(name string) []byte {
	k, _ := hex.DecodeString(name)
	return append([]byte{'h'}, k...)
}

// Put stores b under its hash, durably, and returns the hash.
func (s *Store) Put(b []byte) (string, error) {
	names, err := s.PutMany([][]byte{b})
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// PutMany stores blobs in one synced write and returns their names.
// A damaged stored copy is replaced by the good bytes.
func (s *Store) PutMany(blobs [][]byte) ([]string, error) {
	names := make([]string, len(blobs))
	order := make([]int, len(blobs))
	for i, b := range blobs {
		if len(b) > MaxSize {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
		}
		names[i], order[i] = Hash(b), i
	}
	if len(blobs) == 0 {
		return names, nil
	}
	// Written in key order, blobs then markers: the memtable inserts each
	// key from near where the previous one went (about 10% less CPU for a
	// batch of 256, BenchmarkPutMany). Written blind, even when already
	// held: a lookup would cost more than the rare duplicate, and a damaged
	// copy gets overwritten.
	slices.SortFunc(order, func(i, j int) int { return strings.Compare(names[i], names[j]) })
	batch := s.db.NewBatch()
	defer batch.Close()
	for _, i := range order {
		if err := batch.Set(key(names[i]), blobs[i], nil); err != nil {
			return nil, err
		}
	}
	for _, i := range order {
		if err := batch.Set(marker(names[i]), nil, nil); err != nil {
			return nil, err
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("store blobs: %w", err)
	}
	s.recent.add(names)
	return names, nil
}

// PutNamed stores b and checks that its hash is name.
func (s *Store) PutNamed(name string, b []byte) error {
	if !ValidName(name) {
		return ErrBadName
	}
	if Hash(b) != name {
		return fmt.Errorf("%w: bytes do not hash to %s", ErrCorrupt, name)
	}
	_, err := s.Put(b)
	return err
}

// Has reports whether the store holds name (without checking it).
func (s *Store) Has(name string) bool {
	if !ValidName(name) {
		return false
	}
	if s.recent.has(name) {
		return true
	}
	_, closer, err := s.db.Get(marker(name))
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
	v, closer, err := s.db.Get(key(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	b := bytes.Clone(v)
	closer.Close()
	if Hash(b) != name {
		return nil, fmt.Errorf("%w: %s does not match its hash", ErrCorrupt, name)
	}
	return b, nil
}

// Walk calls fn with the name of every stored blob, in name order.
func (s *Store) Walk(fn func(name string) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'d'}, UpperBound: []byte{'d' + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(hex.EncodeToString(it.Key()[1:])); err != nil {
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

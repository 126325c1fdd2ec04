// Package state is medchain's versioned application state: an embedded Pebble
// store and an app hash that is a Merkle commitment to every key and value.
//
// # Commitment
//
// Each key falls in one of [Buckets] buckets by the first bytes of its
// SHA-256. A bucket's leaf hash covers its keys in order, each with the
// SHA-256 of its value; a complete binary tree over the leaves gives the root,
// which is the app hash. The shape depends only on the data, never on the
// order of writes, so every node computes the same root. A block touches
// only its own buckets: the cost of a block is proportional to what it
// writes, not to the size of the state.
//
// # Derived keys
//
// An application may declare key prefixes whose entries it derives from
// other keys, such as an index of a patient's records ([Store.SetDerived]).
// They are stored, read and written atomically with their block like any
// key, but left out of the buckets: the commitment covers what they are
// derived from, and a replay of the chain rebuilds them
// ([Store.CompareDerived]). Each is one key fewer for every block to
// hash and for every bucket to hold.
//
// # Durability
//
// A block's writes live in a [Delta] until [Store.Commit], which writes data,
// bucket hashes, height and app hash in one synced Pebble batch. A crash
// before that loses the whole block and nothing else, and [Store.Height]
// reports exactly the last committed block.
//
// state never sees transactions and never reads a clock.
package state

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/medchain/medchain/internal/pebblefs"
)

// Buckets is the number of leaves of the commitment tree.
const Buckets = 1 << 16

// Key namespaces inside Pebble.
const (
	nsData   = 'd' // d | key -> value
	nsIndex  = 'b' // b | bucket(2) | key -> sha256(value)
	nsLeaf   = 'h' // h | bucket(2) -> leaf hash
	nsMeta   = 'm' // m | name -> value
	metaHgt  = "mheight"
	metaHash = "mapphash"
	metaDrv  = "mderived" // the derived prefixes, each ending in a newline
)

// ErrNotFound reports a missing key.
var ErrNotFound = errors.New("not found")

// Store is the committed state. Reads of committed state are safe for
// concurrent use with each other and with one writer building a [Delta].
type Store struct {
	db     *pebble.DB
	mu     sync.RWMutex // guards tree and height against concurrent readers
	tree   [][32]byte   // heap layout: tree[1] is the root, leaves at Buckets..2*Buckets-1
	empty  [32]byte     // the leaf hash of a bucket with no entries
	height int64
	closed bool
	// derived are the prefixes of keys left out of the commitment, set
	// before the first commit and never changed after it.
	derived []string
}

// Open opens or creates a store in dir. An empty dir means in memory.
func Open(dir string) (*Store, error) { return open(dir, false) }

// OpenReadOnly opens an existing store without writing a byte to it, for
// inspection. Commit fails on it.
func OpenReadOnly(dir string) (*Store, error) { return open(dir, true) }

func open(dir string, readOnly bool) (*Store, error) {
	cache := pebble.NewCache(1 << 30)
	defer cache.Unref()
	opts := &pebble.Options{Logger: quietLogger{}, ReadOnly: readOnly, Cache: cache,
		// Keys are hashes and IDs, spread over the whole key space, so
		// every flushed file overlaps every level below it: fewer, larger
		// flushes mean less of the state rewritten by compactions.
		MemTableSize:          64 << 20,
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 32,
		LBaseMaxBytes:         256 << 20,
	}
	// Bloom filters make the lookups of keys that do not exist (a new
	// record's ID, a first nonce) cheap at every level.
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	opts.FS = pebblefs.Buffered(vfs.Default) // flushes and compactions in large writes
	if dir == "" {
		opts.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	s := &Store{db: db}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// load reads the height and the leaf hashes and rebuilds the inner tree.
func (s *Store) load() error {
	s.tree = make([][32]byte, 2*Buckets)
	s.empty = leafHash(nil)
	for i := Buckets; i < 2*Buckets; i++ {
		s.tree[i] = s.empty
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{nsLeaf}, UpperBound: []byte{nsLeaf + 1}})
	if err != nil {
		return fmt.Errorf("read state leaves: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 3 || len(v) != 32 {
			it.Close()
			return fmt.Errorf("state is corrupt: leaf entry %x", k)
		}
		copy(s.tree[Buckets+int(binary.BigEndian.Uint16(k[1:]))][:], v)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read state leaves: %w", err)
	}
	for i := Buckets - 1; i >= 1; i-- {
		s.tree[i] = nodeHash(s.tree[2*i], s.tree[2*i+1])
	}
	h, err := s.meta(metaHgt)
	switch {
	case errors.Is(err, ErrNotFound):
		s.height = 0
	case err != nil:
		return err
	case len(h) != 8:
		return errors.New("state is corrupt: height entry")
	default:
		s.height = int64(binary.BigEndian.Uint64(h))
	}
	switch d, err := s.meta(metaDrv); {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if s.derived, err = parseDerived(d); err != nil {
			return err
		}
	}
	if s.height > 0 {
		stored, err := s.meta(metaHash)
		if err != nil {
			return fmt.Errorf("state is corrupt: app hash: %w", err)
		}
		if root := s.tree[1]; !bytes.Equal(stored, root[:]) {
			return fmt.Errorf("state is corrupt: stored app hash %X, leaves give %X", stored, root)
		}
	}
	return nil
}

func (s *Store) meta(name string) ([]byte, error) { return s.get([]byte(name)) }

// ErrDerivedFixed reports a change of the derived prefixes after the first
// commit: the app hashes already committed depend on them.
var ErrDerivedFixed = errors.New("the derived key prefixes are fixed at the first commit")

// SetDerived declares the prefixes of keys the application derives from
// others, to be left out of the commitment (see the package comment). It
// is stored with the state. Before the first commit it may be called
// again; after it, only with the prefixes already stored (a node's
// restart), or it returns [ErrDerivedFixed]. A prefix may not be empty,
// contain a newline, or begin another.
func (s *Store) SetDerived(prefixes []string) error {
	enc, err := encodeDerived(prefixes)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(s.derived, prefixes) {
		return nil
	}
	if s.height > 0 {
		return fmt.Errorf("%w: state at height %d derives %q, asked for %q", ErrDerivedFixed, s.height, s.derived, prefixes)
	}
	if err := s.db.Set([]byte(metaDrv), enc, pebble.Sync); err != nil {
		return fmt.Errorf("store derived prefixes: %w", err)
	}
	s.derived = slices.Clone(prefixes)
	return nil
}

// Derived returns the prefixes of the keys left out of the commitment.
func (s *Store) Derived() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.derived)
}

func encodeDerived(prefixes []string) ([]byte, error) {
	var b []byte
	for i, p := range prefixes {
		if p == "" || strings.Contains(p, "\n") {
			return nil, fmt.Errorf("derived prefix %q: empty or holds a newline", p)
		}
		for j, q := range prefixes {
			if i != j && strings.HasPrefix(p, q) {
				return nil, fmt.Errorf("derived prefix %q begins with another, %q", p, q)
			}
		}
		b = append(append(b, p...), '\n')
	}
	return b, nil
}

func parseDerived(b []byte) ([]string, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("state is corrupt: derived prefixes entry")
	}
	ps := strings.Split(string(b[:len(b)-1]), "\n")
	if _, err := encodeDerived(ps); err != nil {
		return nil, fmt.Errorf("state is corrupt: %w", err)
	}
	return ps, nil
}

// isDerived reports whether key is left out of the commitment.
func (s *Store) isDerived(key string) bool {
	for _, p := range s.derived {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (s *Store) get(k []byte) ([]byte, error) {
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

// Height returns the last committed height (0 before the first Commit).
func (s *Store) Height() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.height
}

// Committed returns the last committed height and its app hash together.
func (s *Store) Committed() (int64, []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.tree[1]
	return s.height, r[:]
}

// Root returns the app hash of the committed state.
func (s *Store) Root() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.tree[1]
	return r[:]
}

// Get returns the committed value of key, or ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	return s.get(dataKey(key))
}

// Scan calls fn for each committed key with prefix, in key order, until fn
// returns false.
func (s *Store) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	return s.ScanAfter(prefix, nil, fn)
}

// ScanAfter is Scan from the first key after prefix+after: a listing's next
// page starts after the last key of the one before. An empty after starts
// at the first key with prefix.
func (s *Store) ScanAfter(prefix, after []byte, fn func(key, value []byte) bool) error {
	lo := dataKey(prefix)
	hi := prefixEnd(lo)
	if len(after) > 0 {
		lo = append(append(lo, after...), 0) // the least key above prefix+after
		if hi != nil && bytes.Compare(lo, hi) >= 0 {
			return nil
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if !fn(it.Key()[1:], it.Value()) {
			break
		}
	}
	return it.Close()
}

func dataKey(k []byte) []byte { return append([]byte{nsData}, k...) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func bucketOf(key []byte) uint16 {
	h := sha256.Sum256(key)
	return binary.BigEndian.Uint16(h[:2])
}

// leafHash hashes a bucket's entries, (key, sha256 of value), in key order.
func leafHash(entries [][2][]byte) [32]byte {
	lw := newLeafWriter()
	for _, e := range entries {
		lw.add(e[0], e[1])
	}
	return lw.sum()
}

// leafWriter computes a leaf hash from entries added in key order.
type leafWriter struct{ h hash.Hash }

func newLeafWriter() leafWriter {
	lw := leafWriter{sha256.New()}
	lw.h.Write([]byte{0})
	return lw
}

func (lw leafWriter) add(key, valueHash []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	lw.h.Write(n[:])
	lw.h.Write(key)
	lw.h.Write(valueHash) // sha256 of the value: fixed size
}

func (lw leafWriter) sum() [32]byte {
	var out [32]byte
	lw.h.Sum(out[:0])
	return out
}

func nodeHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// Delta is one block's pending writes on top of the committed state, or,
// made with [Delta.Child], one transaction's writes on top of its block's.
// It is not safe for concurrent use.
type Delta struct {
	s      *Store
	parent *Delta            // nil: on top of the committed state
	writes map[string][]byte // nil value: deleted
	root   []byte
	plan   []write // the writes in key order, as Root hashed them
	leaves map[uint16][32]byte
	nodes  [][]node      // the tree nodes Root computed
	batch  *pebble.Batch // the writes as Prepare encoded them for Commit
}

// write is one key of a delta with what Root computed for it once, for
// Commit to reuse.
type write struct {
	key     string
	value   []byte // nil: deleted
	bucket  uint16
	hash    [32]byte // of value
	existed bool     // the key is in the committed state (Replaces)
	derived bool     // left out of the commitment: no bucket, no hash
}

// Begin starts a delta over the committed state.
func (s *Store) Begin() *Delta { return &Delta{s: s, writes: map[string][]byte{}} }

// Child starts a delta over d: its writes reach d only through Flush, so a
// transaction that fails halfway leaves nothing in its block.
func (d *Delta) Child() *Delta { return &Delta{s: d.s, parent: d, writes: map[string][]byte{}} }

// Flush applies a child's writes to its parent.
func (d *Delta) Flush() {
	if d.parent == nil {
		panic("state: Flush of a delta with no parent")
	}
	for _, k := range d.sortedKeys() {
		d.parent.writes[k] = d.writes[k]
	}
	d.parent.changed()
}

// below reads what lies under d: its parent, or the committed state.
func (d *Delta) below() interface {
	Get(key []byte) ([]byte, error)
	Scan(prefix []byte, fn func(key, value []byte) bool) error
} {
	if d.parent != nil {
		return d.parent
	}
	return d.s
}

// Get reads through the delta to the committed state.
func (d *Delta) Get(key []byte) ([]byte, error) {
	if v, ok := d.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	return d.below().Get(key)
}

// Pending reports what d and the deltas under it have written to key,
// without reading the committed state: written is false if none of them
// touched it, and value is nil if the last of them deleted it.
func (d *Delta) Pending(key []byte) (value []byte, written bool) {
	for x := d; x != nil; x = x.parent {
		if v, ok := x.writes[string(key)]; ok {
			return v, true
		}
	}
	return nil, false
}

// Set writes key. value must not be nil.
func (d *Delta) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	d.writes[string(key)] = bytes.Clone(value)
	d.changed()
}

// Delete removes key.
func (d *Delta) Delete(key []byte) {
	d.writes[string(key)] = nil
	d.changed()
}

// changed forgets what Root and Prepare computed.
func (d *Delta) changed() {
	d.root = nil
	d.Discard()
}

// Prepare computes the root and encodes the writes for [Store.Commit], so
// that Commit has only to write them: a block executed ahead of its
// decision prepares its commit there, off the consensus goroutine. A
// later write undoes it.
func (d *Delta) Prepare() error {
	if _, err := d.Root(); err != nil {
		return err
	}
	if d.batch == nil {
		d.batch = d.encode()
	}
	return nil
}

// Discard releases what Prepare encoded, for a delta that will not be
// committed.
func (d *Delta) Discard() {
	if d.batch != nil {
		d.batch.Close()
		d.batch = nil
	}
}

// sortedKeys returns the written keys in order: the only way the delta is
// ever traversed, so map order never reaches the hash or the disk.
func (d *Delta) sortedKeys() []string {
	keys := make([]string, 0, len(d.writes))
	for k := range d.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Root computes the app hash the state will have once d is committed.
func (d *Delta) Root() ([]byte, error) {
	if d.parent != nil {
		panic("state: Root of a child delta")
	}
	if d.root != nil {
		return d.root, nil
	}
	keys := d.sortedKeys()
	d.plan = make([]write, len(keys))
	byBucket := map[uint16][]int{} // indexes into plan, in key order
	var buckets []uint16
	for i, k := range keys {
		if d.s.isDerived(k) {
			d.plan[i] = write{key: k, value: d.writes[k], derived: true}
			continue
		}
		w := write{key: k, value: d.writes[k], bucket: bucketOf([]byte(k))}
		if w.value != nil {
			w.hash = sha256.Sum256(w.value)
		}
		d.plan[i] = w
		if _, ok := byBucket[w.bucket]; !ok {
			buckets = append(buckets, w.bucket)
		}
		byBucket[w.bucket] = append(byBucket[w.bucket], i)
	}
	slices.Sort(buckets)
	leaves, err := d.bucketLeaves(buckets, byBucket)
	if err != nil {
		return nil, err
	}
	d.leaves = make(map[uint16][32]byte, len(buckets))
	for i, b := range buckets {
		d.leaves[b] = leaves[i]
	}
	d.root = d.rootWith(buckets)
	return d.root, nil
}

// Replaces reports whether key, which d writes or deletes, is in the
// committed state, as [Delta.Root] found while merging d's writes into
// their buckets: an answer that costs no lookup of its own. known is false
// if d does not write key, key is derived (Root merges it into no bucket),
// or Root has not run since d last changed.
func (d *Delta) Replaces(key []byte) (replaces, known bool) {
	if d.root == nil {
		return false, false
	}
	i, found := slices.BinarySearchFunc(d.plan, key, func(w write, k []byte) int { return cmp.Compare(w.key, string(k)) })
	if !found || d.plan[i].derived {
		return false, false
	}
	return d.plan[i].existed, true
}

// parallelLeaves is the number of dirty buckets above which Root hashes
// them on two goroutines, each with its own index iterator.
const parallelLeaves = 1024

// bucketLeaves hashes each bucket of buckets (sorted) as it will be once d
// is committed. Each half of a large set is read with one iterator moved
// forward bucket by bucket: opening one per bucket cost more than reading
// the entries.
func (d *Delta) bucketLeaves(buckets []uint16, byBucket map[uint16][]int) ([][32]byte, error) {
	leaves := make([][32]byte, len(buckets))
	run := func(lo, hi int) error {
		it, err := d.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{nsIndex}, UpperBound: []byte{nsIndex + 1}})
		if err != nil {
			return err
		}
		defer it.Close()
		for i := lo; i < hi; i++ {
			if leaves[i], err = d.bucketLeaf(it, buckets[i], byBucket[buckets[i]]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(buckets) < parallelLeaves {
		return leaves, run(0, len(buckets))
	}
	half := len(buckets) / 2
	errc := make(chan error, 1)
	go func() { errc <- run(half, len(buckets)) }()
	err := run(0, half)
	if err2 := <-errc; err == nil {
		err = err2
	}
	return leaves, err
}

// bucketLeaf hashes bucket b as it will be once d is committed: its
// committed entries, read in order with it, merged with the delta's writes
// to it (plan indexes, in key order), streamed into the hash without
// copying either.
func (d *Delta) bucketLeaf(it *pebble.Iterator, b uint16, writes []int) ([32]byte, error) {
	lw := newLeafWriter()
	lo := []byte{nsIndex, byte(b >> 8), byte(b)}
	// A bucket whose committed leaf is the empty one has no entries to
	// read: skip the seek (about half the buckets a block touches while
	// the ledger holds fewer keys than there are buckets).
	ok := d.s.tree[Buckets+int(b)] != d.s.empty && it.SeekGE(lo) && bytes.HasPrefix(it.Key(), lo)
	next := func() { ok = it.Next() && bytes.HasPrefix(it.Key(), lo) }
	for _, i := range writes {
		w := &d.plan[i]
		for ok && string(it.Key()[3:]) < w.key {
			lw.add(it.Key()[3:], it.Value())
			next()
		}
		if ok && string(it.Key()[3:]) == w.key {
			w.existed = true
			next() // replaced or deleted below
		}
		if w.value != nil {
			lw.add([]byte(w.key), w.hash[:])
		}
	}
	for ok {
		lw.add(it.Key()[3:], it.Value())
		next()
	}
	if err := it.Error(); err != nil {
		return [32]byte{}, err
	}
	return lw.sum(), nil
}

// rootWith recomputes, level by level, each inner node above a changed
// leaf, once. buckets must be sorted. Each level is a list in heap-index
// order, so a node's changed sibling, if any, is its neighbour in the list;
// the others are read from the committed tree. Many changed leaves are
// hashed as two subtrees (the root's children) on two goroutines.
func (d *Delta) rootWith(buckets []uint16) []byte {
	leaves := make([]node, len(buckets))
	for k, b := range buckets {
		leaves[k] = node{Buckets + int(b), d.leaves[b]}
	}
	if len(leaves) == 0 {
		d.nodes = nil
		r := d.s.tree[1]
		return r[:]
	}
	split, _ := slices.BinarySearchFunc(leaves, Buckets+Buckets/2, func(n node, i int) int { return cmp.Compare(n.i, i) })
	var left, right []node
	if len(leaves) >= parallelLeaves && split > 0 && split < len(leaves) {
		done := make(chan struct{})
		go func() { right = d.subtree(leaves[split:]); close(done) }()
		left = d.subtree(leaves[:split])
		<-done
	} else {
		left, right = d.subtree(leaves[:split]), d.subtree(leaves[split:])
	}
	l, r := d.s.tree[2], d.s.tree[3]
	if len(left) > 0 {
		l = left[len(left)-1].h // the last node computed is the subtree's top
	}
	if len(right) > 0 {
		r = right[len(right)-1].h
	}
	root := nodeHash(l, r)
	d.nodes = [][]node{left, right, {{1, root}}}
	return root[:]
}

// node is a tree node Root computed: its heap index and hash.
type node struct {
	i int
	h [32]byte
}

// subtree hashes the changed leaves of one half of the tree (sorted, all
// under the same child of the root) up to that child, and returns every
// node it computed, level by level, that child last. The levels share one
// allocation: a block of 4,096 records computes some 25,000 nodes, and
// each fresh copy of them costs page faults.
func (d *Delta) subtree(level []node) []node {
	if len(level) == 0 {
		return nil
	}
	out := make([]node, 0, nodesUpTo(len(level), bits.Len(uint(level[0].i))-1))
	out = append(out, level...)
	for level[0].i > 3 {
		// Each level is appended after the one it is computed from. Should
		// out outgrow its capacity, level still reads the old array,
		// whose nodes are the same.
		start := len(out)
		for k := 0; k < len(level); k++ {
			n := level[k]
			var l, r [32]byte
			switch {
			case n.i%2 == 1:
				l, r = d.s.tree[n.i-1], n.h
			case k+1 < len(level) && level[k+1].i == n.i+1:
				l, r = n.h, level[k+1].h
				k++
			default:
				l, r = n.h, d.s.tree[n.i+1]
			}
			out = append(out, node{n.i / 2, nodeHash(l, r)})
		}
		level = out[start:]
	}
	return out
}

// nodesUpTo bounds the nodes subtree computes from n changed nodes at
// depth (the root at depth 0) up to depth 1: a level holds at most as
// many nodes as the one below it, and at most 2^(depth-1) in one half of
// the tree.
func nodesUpTo(n, depth int) int {
	total := 0
	for ; depth >= 1; depth-- {
		n = min(n, 1<<(depth-1))
		total += n
	}
	return total
}

// Commit makes d durable as the state at height, atomically, and returns
// the app hash. d must not be used afterwards.
func (s *Store) Commit(d *Delta, height int64) ([]byte, error) {
	if d.s != s || d.parent != nil {
		panic("state: commit of a delta not begun on this store")
	}
	if height != s.height+1 {
		return nil, fmt.Errorf("commit height %d after %d", height, s.height)
	}
	root, err := d.Root()
	if err != nil {
		return nil, err
	}
	batch := d.batch
	if batch == nil {
		batch = d.encode()
	}
	d.batch = nil
	defer batch.Close()
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	_ = batch.Set([]byte(metaHgt), hb[:], nil)
	_ = batch.Set([]byte(metaHash), root, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("commit state at height %d: %w", height, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, level := range d.nodes {
		for _, n := range level {
			s.tree[n.i] = n.h
		}
	}
	s.height = height
	return root, nil
}

// encode writes a delta's data, index entries and changed leaves, as Root
// computed them, into a batch.
func (d *Delta) encode() *pebble.Batch {
	size := 64 + 40*len(d.leaves)
	for _, w := range d.plan {
		size += 2*len(w.key) + len(w.value) + 64
	}
	batch := d.s.db.NewBatchWithSize(size)
	// The batch is written in key order, each namespace in turn: the
	// memtable then inserts every key from near the previous one instead of
	// searching from the top (BenchmarkCommitRecords: ~10% less per record
	// than data and index keys interleaved).
	for _, w := range d.plan { // key order
		if w.value == nil {
			_ = batch.Delete(dataKey([]byte(w.key)), nil)
		} else {
			_ = batch.Set(dataKey([]byte(w.key)), w.value, nil)
		}
	}
	byIndex := make([]int, 0, len(d.plan))
	for i := range d.plan {
		if !d.plan[i].derived {
			byIndex = append(byIndex, i)
		}
	}
	slices.SortStableFunc(byIndex, func(i, j int) int { return cmp.Compare(d.plan[i].bucket, d.plan[j].bucket) })
	for _, i := range byIndex { // bucket, then key order
		w := &d.plan[i]
		ik := append([]byte{nsIndex, byte(w.bucket >> 8), byte(w.bucket)}, w.key...)
		if w.value == nil {
			_ = batch.Delete(ik, nil)
		} else {
			_ = batch.Set(ik, w.hash[:], nil)
		}
	}
	buckets := slices.Sorted(maps.Keys(d.leaves))
	for _, b := range buckets {
		h := d.leaves[b]
		_ = batch.Set([]byte{nsLeaf, byte(b >> 8), byte(b)}, h[:], nil)
	}
	return batch
}

// quietLogger keeps Pebble's informational chatter out of the node's logs.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Scan calls fn for each key with prefix as the delta sees it (its own
// writes over the committed state), in key order, until fn returns false.
func (d *Delta) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	merged := map[string][]byte{}
	if err := d.below().Scan(prefix, func(k, v []byte) bool {
		merged[string(k)] = bytes.Clone(v)
		return true
	}); err != nil {
		return err
	}
	for k, v := range d.writes {
		if !bytes.HasPrefix([]byte(k), prefix) {
			continue
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), merged[k]) {
			break
		}
	}
	return nil
}

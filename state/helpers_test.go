package state

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// openMem opens an in-memory store that is closed when the test ends.
func openMem(t testing.TB) *Store {
	t.Helper()
	return openDir(t, "")
}

// openDir opens a store in dir that is closed when the test ends. The test
// must not close it itself: a second Close panics inside Pebble.
func openDir(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// op is one write: a nil value deletes.
type op struct {
	key, value []byte
}

// apply commits ops as the next block and returns the app hash, checking
// that the delta predicted it.
func apply(t testing.TB, s *Store, ops ...op) []byte {
	t.Helper()
	d := s.Begin()
	for _, o := range ops {
		if o.value == nil {
			d.Delete(o.key)
		} else {
			d.Set(o.key, o.value)
		}
	}
	predicted, err := d.Root()
	if err != nil {
		t.Fatalf("Delta.Root: %v", err)
	}
	predicted = bytes.Clone(predicted)
	root, err := s.Commit(d, s.Height()+1)
	if err != nil {
		t.Fatalf("Commit at %d: %v", s.Height()+1, err)
	}
	if !bytes.Equal(root, predicted) || !bytes.Equal(s.Root(), predicted) {
		t.Fatalf("height %d: Delta.Root %x, Commit %x, Store.Root %x", s.Height(), predicted, root, s.Root())
	}
	return root
}

func set(k, v string) op { return op{[]byte(k), []byte(v)} }
func del(k string) op    { return op{key: []byte(k)} }

// randomOps returns n writes of distinct random keys (0-24 bytes, so some
// are empty or share prefixes) with random values (0-64 bytes).
func randomOps(r *rand.Rand, n int) []op {
	seen := map[string]bool{}
	var ops []op
	for len(ops) < n {
		k := randomBytes(r, r.IntN(25))
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		ops = append(ops, op{k, randomBytes(r, r.IntN(65))})
	}
	return ops
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// sameBucket returns n distinct keys that fall in one bucket, so that tests
// exercise leaves holding several keys.
func sameBucket(n int) []string {
	byBucket := map[uint16][]string{}
	for i := 0; ; i++ {
		k := fmt.Sprintf("collide/%d", i)
		b := bucketOf([]byte(k))
		byBucket[b] = append(byBucket[b], k)
		if len(byBucket[b]) == n {
			return byBucket[b]
		}
	}
}

// modelRoot computes the app hash of a key-value map from scratch, as the
// package doc describes it: leaves of sorted (key, sha256(value)) per
// bucket, and a complete binary tree over them.
func modelRoot(m map[string][]byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries := make([][][2][]byte, Buckets)
	for _, k := range keys {
		b := bucketOf([]byte(k))
		h := sha256.Sum256(m[k])
		entries[b] = append(entries[b], [2][]byte{[]byte(k), h[:]})
	}
	tree := make([][32]byte, 2*Buckets)
	for b := range Buckets {
		tree[Buckets+b] = leafHash(entries[b])
	}
	for i := Buckets - 1; i >= 1; i-- {
		tree[i] = nodeHash(tree[2*i], tree[2*i+1])
	}
	return tree[1][:]
}

// scanAll returns the committed keys and values under prefix.
func scanAll(t testing.TB, s *Store, prefix string) []string {
	t.Helper()
	var out []string
	err := s.Scan([]byte(prefix), func(k, v []byte) bool {
		out = append(out, string(k)+"="+string(v))
		return true
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}

// mustGet returns the committed value of key, failing if it is missing.
func mustGet(t testing.TB, s *Store, key string) string {
	t.Helper()
	v, err := s.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

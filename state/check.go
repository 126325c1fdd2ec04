package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Check recomputes the whole commitment from the stored data alone and
// compares it with the stored index, leaves and app hash. It reads every
// byte of the state, so any change to a value, a key or the hashes beside
// them is found. It returns the number of keys checked.
func (s *Store) Check() (int, error) {
	leaves := make([][][2][]byte, Buckets)
	n := 0
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{nsData}, UpperBound: []byte{nsData + 1}})
	if err != nil {
		return 0, err
	}
	for it.First(); it.Valid(); it.Next() {
		k := bytes.Clone(it.Key()[1:])
		h := sha256.Sum256(it.Value())
		b := bucketOf(k)
		leaves[b] = append(leaves[b], [2][]byte{k, h[:]})
		n++
	}
	if err := it.Close(); err != nil {
		return n, fmt.Errorf("read state data: %w", err)
	}
	if err := s.checkIndex(leaves); err != nil {
		return n, err
	}
	tree := make([][32]byte, 2*Buckets)
	for b := range Buckets {
		tree[Buckets+b] = leafHash(leaves[b]) // data is iterated in key order
		stored, err := s.get([]byte{nsLeaf, byte(b >> 8), byte(b)})
		if err == ErrNotFound {
			stored = nil
		} else if err != nil {
			return n, err
		}
		if (stored != nil || len(leaves[b]) > 0) && !bytes.Equal(stored, tree[Buckets+b][:]) {
			return n, fmt.Errorf("state bucket %d: stored hash does not match its data", b)
		}
	}
	for i := Buckets - 1; i >= 1; i-- {
		tree[i] = nodeHash(tree[2*i], tree[2*i+1])
	}
	stored, err := s.meta(metaHash)
	if err != nil && s.Height() > 0 {
		return n, fmt.Errorf("state app hash missing: %w", err)
	}
	if s.Height() > 0 && !bytes.Equal(stored, tree[1][:]) {
		return n, fmt.Errorf("state at height %d: data gives app hash %X, stored %X", s.Height(), tree[1], stored)
	}
	return n, nil
}

// checkIndex compares the bucket index with the data.
func (s *Store) checkIndex(leaves [][][2][]byte) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{nsIndex}, UpperBound: []byte{nsIndex + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	pos := make([]int, Buckets)
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 3 {
			return fmt.Errorf("state index: malformed entry %x", k)
		}
		b := binary.BigEndian.Uint16(k[1:3])
		if pos[b] >= len(leaves[b]) {
			return fmt.Errorf("state bucket %d: index names a key with no data", b)
		}
		e := leaves[b][pos[b]]
		if !bytes.Equal(e[0], k[3:]) || !bytes.Equal(e[1], it.Value()) {
			return fmt.Errorf("state bucket %d: index does not match data", b)
		}
		pos[b]++
	}
	for b := range Buckets {
		if pos[b] != len(leaves[b]) {
			return fmt.Errorf("state bucket %d: data not in index", b)
		}
	}
	return it.Error()
}

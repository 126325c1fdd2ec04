package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"
)

// Check recomputes the whole commitment from the stored data alone and
// compares it with the stored index, leaves and app hash. It reads every
// byte of the state, so any change to a committed value, a key or the
// hashes beside them is found; derived keys, which the commitment leaves
// out, are checked against a replay ([Store.CompareDerived]). It returns
// the number of keys read, derived ones included.
func (s *Store) Check() (int, error) {
	leaves := make([][][2][]byte, Buckets)
	n := 0
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{nsData}, UpperBound: []byte{nsData + 1}})
	if err != nil {
		return 0, err
	}
	for it.First(); it.Valid(); it.Next() {
		if s.isDerived(string(it.Key()[1:])) {
			n++
			continue
		}
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

// CompareDerived compares the derived keys of s and other, which must
// derive the same prefixes: a node's state against a replay of its chain,
// which rebuilt them from the committed keys and the blocks. It names the
// first prefix whose entries differ, and where, but never a key or value.
func (s *Store) CompareDerived(other *Store) error {
	ps, qs := s.Derived(), other.Derived()
	if !slices.Equal(ps, qs) {
		return fmt.Errorf("derived prefixes %q, the other state's %q", ps, qs)
	}
	for _, p := range ps {
		if err := compareRange(s, other, []byte(p)); err != nil {
			return fmt.Errorf("derived keys under %q: %w", p, err)
		}
	}
	return nil
}

// compareRange compares the entries of a and b under prefix, in order.
func compareRange(a, b *Store, prefix []byte) error {
	lo := dataKey(prefix)
	opts := &pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)}
	ia, err := a.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer ia.Close()
	ib, err := b.db.NewIter(opts)
	if err != nil {
		return err
	}
	defer ib.Close()
	okA, okB := ia.First(), ib.First()
	n := 0
	for ; okA && okB; okA, okB = ia.Next(), ib.Next() {
		if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
			return fmt.Errorf("entry %d differs", n+1)
		}
		n++
	}
	switch {
	case okA:
		return fmt.Errorf("an entry after the %d that match is not in the other state", n)
	case okB:
		return fmt.Errorf("an entry after the %d that match is missing", n)
	}
	if err := ia.Error(); err != nil {
		return err
	}
	return ib.Error()
}

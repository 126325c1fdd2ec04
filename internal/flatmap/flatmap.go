// Package flatmap is a hash index from string keys to values that hold
// their own keys, laid out so that a lookup reads as few places in memory
// one after another as it can.
//
// A node's caches answer every consent decision, and at 100,000 patients
// almost nothing they hold is in the CPU's caches when a read asks: each
// place a lookup reads is a memory round trip, and a TLB miss whose page
// walk is often another. A Go map of that size reads its directory, its
// table, its group's control word and its slot one after another before
// it reaches the value. Here a lookup reads one slot, whose hash and
// pointer sit side by side in a flat array with linear probing, and then
// the value, whose own key confirms the match: two places, when the value
// holds its key's bytes (a pointer to them elsewhere is a third).
// BenchmarkLookupEvicted, 100,000 such values, the caches disturbed before
// each lookup: a Go map ~0.83-1.04 µs at the median, a Map ~0.52-0.64 µs.
//
// The index keeps pointers to values it does not own; a value must not
// change its key while indexed. A Map is not safe for concurrent use.
package flatmap

import "hash/maphash"

// Map indexes values of type V by the key each one holds. The zero Map is
// not ready: use New.
type Map[V any] struct {
	seed  maphash.Seed
	key   func(*V) string
	slots []slot[V]
	n     int
}

type slot[V any] struct {
	hash uint64
	v    *V // nil: empty
}

// minSlots is a new Map's room.
const minSlots = 64

// New returns an empty Map of values keyed by key(v).
func New[V any](key func(*V) string) *Map[V] {
	return &Map[V]{seed: maphash.MakeSeed(), key: key, slots: make([]slot[V], minSlots)}
}

// Len returns the number of values indexed.
func (m *Map[V]) Len() int { return m.n }

// Get returns the value keyed k, or nil.
func (m *Map[V]) Get(k string) *V { return m.Begin(k).Get(k) }

// Probe is a lookup begun: its key's hash, and a copy of the key's home
// slot, read from memory. A caller that begins two lookups before it
// finishes either has the CPU wait for both slots at once, not one after
// the other.
type Probe[V any] struct {
	m    *Map[V]
	hash uint64
	home slot[V]
}

// Begin begins the lookup of k; Probe.Get finishes it.
func (m *Map[V]) Begin(k string) Probe[V] {
	h := maphash.String(m.seed, k)
	return Probe[V]{m, h, m.slots[h&uint64(len(m.slots)-1)]}
}

// Get finishes the lookup p began of k (the same key): it returns the
// value keyed k, or nil. The Map must not have changed since Begin.
func (p Probe[V]) Get(k string) *V {
	m, h := p.m, p.hash
	mask := uint64(len(m.slots) - 1)
	s := &p.home
	for i := h & mask; ; {
		if s.v == nil {
			return nil
		}
		if s.hash == h && m.key(s.v) == k {
			return s.v
		}
		i = (i + 1) & mask
		s = &m.slots[i]
	}
}

// Put indexes v under its key, replacing the value indexed under the same
// key, if any.
func (m *Map[V]) Put(v *V) {
	if 2*(m.n+1) > len(m.slots) {
		m.grow()
	}
	k := m.key(v)
	h := maphash.String(m.seed, k)
	mask := uint64(len(m.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.v == nil {
			*s = slot[V]{h, v}
			m.n++
			return
		}
		if s.hash == h && m.key(s.v) == k {
			s.v = v
			return
		}
	}
}

// Delete removes the value keyed k, if any, and reports whether there was
// one. The slots after it close up (backward-shift deletion), so that no
// marker of a deleted value lengthens later lookups.
func (m *Map[V]) Delete(k string) bool {
	h := maphash.String(m.seed, k)
	mask := uint64(len(m.slots) - 1)
	i := h & mask
	for {
		s := &m.slots[i]
		if s.v == nil {
			return false
		}
		if s.hash == h && m.key(s.v) == k {
			break
		}
		i = (i + 1) & mask
	}
	// Move back each later value of the run that may sit at i: one
	// whose home slot is not cyclically in (i, j].
	for j := (i + 1) & mask; m.slots[j].v != nil; j = (j + 1) & mask {
		home := m.slots[j].hash & mask
		if (j-home)&mask >= (j-i)&mask {
			m.slots[i] = m.slots[j]
			i = j
		}
	}
	m.slots[i] = slot[V]{}
	m.n--
	return true
}

// All calls fn with each indexed value, in no particular order, until fn
// returns false. fn must not change the Map.
func (m *Map[V]) All(fn func(*V) bool) {
	for i := range m.slots {
		if v := m.slots[i].v; v != nil && !fn(v) {
			return
		}
	}
}

// grow doubles the slots, keeping the index at most half full.
func (m *Map[V]) grow() {
	old := m.slots
	m.slots = make([]slot[V], 2*len(old))
	mask := uint64(len(m.slots) - 1)
	for _, s := range old {
		if s.v == nil {
			continue
		}
		i := s.hash & mask
		for m.slots[i].v != nil {
			i = (i + 1) & mask
		}
		m.slots[i] = s
	}
}

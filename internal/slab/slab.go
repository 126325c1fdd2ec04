// Package slab hands out long-lived values from large blocks of memory.
//
// A node caches small decoded values for every patient it serves, and
// each one that is a heap object of its own is one more object the
// garbage collector reaches, at a random address, on every cycle. On this
// project's machines that costs hundreds of nanoseconds of CPU an object
// (a cache miss and a TLB miss), and at 100,000 patients it was most of a
// cycle. Values handed out here lie side by side in a few large blocks,
// which the collector marks once each and scans in address order.
//
// Nothing is freed one value at a time: a block lives while any value in
// it is referenced, so a cache drops its slabs with its entries, all at
// once. Neither type is safe for concurrent use.
package slab

import (
	"strings"
	"unsafe"
)

// blockBytes is the size of a block. Larger values than a quarter of it
// get an allocation of their own, so that a block's tail is never mostly
// wasted.
const blockBytes = 64 << 10

// Text copies strings into shared blocks. The zero Text is ready to use.
type Text struct {
	free  []byte // the current block's unused tail
	bytes int
}

// String returns a copy of s in the Text's memory.
func (t *Text) String(s string) string { return t.Concat(s) }

// Concat returns the concatenation of parts, copied into the Text's
// memory. Substrings of it share that memory.
func (t *Text) Concat(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	switch {
	case n == 0:
		return ""
	case n > blockBytes/4:
		var b strings.Builder // a copy always (strings.Join returns a lone part itself)
		b.Grow(n)
		for _, p := range parts {
			b.WriteString(p)
		}
		return b.String()
	case n > len(t.free):
		t.free = make([]byte, blockBytes)
	}
	b := t.free[:n:n]
	t.free = t.free[n:]
	t.bytes += n
	at := 0
	for _, p := range parts {
		at += copy(b[at:], p)
	}
	// b is never written again: the block's later strings are cut from
	// its tail, after b.
	return unsafe.String(&b[0], n)
}

// Bytes returns how many bytes the Text has copied in all.
func (t *Text) Bytes() int { return t.bytes }

// Of hands out values of type T from shared blocks. The zero Of is ready
// to use.
type Of[T any] struct {
	free []T
	n    int
}

// perBlock is how many Ts fill a block: at least one.
func perBlock[T any]() int {
	var v T
	return max(1, blockBytes/max(1, int(unsafe.Sizeof(v))))
}

// New returns a pointer to a new zero T.
func (o *Of[T]) New() *T { return &o.Slice(1)[0] }

// Slice returns n new zero Ts, with length and capacity n: appending to
// it reallocates rather than write over the next value.
func (o *Of[T]) Slice(n int) []T {
	if n <= 0 {
		return nil
	}
	o.n += n
	per := perBlock[T]()
	if n > per/4 && n > 1 {
		return make([]T, n)
	}
	if n > len(o.free) {
		o.free = make([]T, per)
	}
	s := o.free[:n:n]
	o.free = o.free[n:]
	return s
}

// Len returns how many Ts the Of has handed out in all.
func (o *Of[T]) Len() int { return o.n }

package slab

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

func TestTextCopies(t *testing.T) {
	var x Text
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"mc1abc"}, "mc1abc"},
		{[]string{"allowed by consent ", "c1", ""}, "allowed by consent c1"},
		{[]string{strings.Repeat("k", blockBytes/4+1)}, strings.Repeat("k", blockBytes/4+1)}, // its own allocation
		{[]string{strings.Repeat("x", blockBytes/4)}, strings.Repeat("x", blockBytes/4)},
	} {
		// The parts are views of a buffer cleared after the call: the
		// result must be a copy, not share the caller's memory.
		src := []byte(strings.Join(tc.parts, ""))
		parts := make([]string, len(tc.parts))
		at := 0
		for i, p := range tc.parts {
			if len(p) > 0 {
				parts[i] = unsafe.String(&src[at], len(p))
			}
			at += len(p)
		}
		got := x.Concat(parts...)
		clear(src)
		if got != tc.want {
			t.Errorf("Concat(%d parts) = %.20q (len %d), want %.20q (len %d)", len(tc.parts), got, len(got), tc.want, len(tc.want))
		}
	}
}

func TestTextPacksSideBySide(t *testing.T) {
	var x Text
	a, b := x.String("first"), x.String("second")
	if unsafe.StringData(b) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(a)), len(a))) {
		t.Error("two small strings copied one after the other are not side by side in one block")
	}
	if x.Bytes() != len("firstsecond") {
		t.Errorf("Bytes() = %d, want %d", x.Bytes(), len("firstsecond"))
	}
	// Filling a block starts another; earlier strings are left as they were.
	var all []string
	for i := range 2 * blockBytes / 10 {
		all = append(all, x.String(fmt.Sprintf("%010d", i)))
	}
	for i, s := range all {
		if want := fmt.Sprintf("%010d", i); s != want {
			t.Fatalf("string %d = %q after later copies, want %q", i, s, want)
		}
	}
}

func TestOfHandsOutZeroValues(t *testing.T) {
	type pair struct {
		a string
		b int
	}
	var o Of[pair]
	p, q := o.New(), o.New()
	if *p != (pair{}) || *q != (pair{}) || p == q {
		t.Fatalf("New() = %v, %v: want two distinct zero values", *p, *q)
	}
	p.a, p.b = "x", 1
	if *q != (pair{}) {
		t.Errorf("writing one value changed the next: %v", *q)
	}
	s := o.Slice(3)
	if len(s) != 3 || cap(s) != 3 {
		t.Fatalf("Slice(3): len %d, cap %d; want 3, 3", len(s), cap(s))
	}
	r := o.New()
	s = append(s, pair{"appended", 9})
	if *r != (pair{}) {
		t.Errorf("appending to a slice wrote over the value after it: %v", *r)
	}
	if o.Slice(0) != nil {
		t.Error("Slice(0) is not nil")
	}
	big := o.Slice(perBlock[pair]())
	if len(big) != perBlock[pair]() {
		t.Errorf("Slice(a block's worth) has length %d", len(big))
	}
	if got, want := o.Len(), 2+3+1+perBlock[pair](); got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	for i := range 10_000 { // many blocks
		v := o.New()
		if *v != (pair{}) {
			t.Fatalf("value %d not zero: %v", i, *v)
		}
		v.b = i
	}
}

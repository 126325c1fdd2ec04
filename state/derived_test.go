package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestDerivedKeysOutsideCommitment writes the same committed keys to two
// stores, and derived ones to the second only: the app hashes must agree,
// while the derived keys read, scan, check and survive a reopen like any.
func TestDerivedKeysOutsideCommitment(t *testing.T) {
	plain := openMem(t)
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetDerived([]string{"idx/", "seen/"}); err != nil {
		t.Fatalf("SetDerived: %v", err)
	}
	for h := range 3 {
		var committed, derived []op
		for i := range 50 {
			id := fmt.Sprintf("%d-%02d", h, i)
			committed = append(committed, op{[]byte("rec/" + id), []byte("value " + id)})
			derived = append(derived, op{[]byte("idx/p" + id[len(id)-1:] + "/" + id), []byte{}})
		}
		derived = append(derived, op{[]byte(fmt.Sprintf("seen/%d", h)), []byte("x")})
		want := apply(t, plain, committed...)
		got := apply(t, s, append(committed, derived...)...)
		if !bytes.Equal(got, want) {
			t.Fatalf("height %d: app hash with derived keys %X, without %X: they must not count", h+1, got, want)
		}
	}
	d := s.Begin()
	d.Set([]byte("idx/p0/new"), []byte{})
	d.Set([]byte("rec/new"), []byte("v"))
	if _, err := d.Root(); err != nil {
		t.Fatal(err)
	}
	if _, known := d.Replaces([]byte("idx/p0/new")); known {
		t.Error("Replaces claims to know about a derived key, which Root merges into no bucket")
	}
	if replaces, known := d.Replaces([]byte("rec/new")); !known || replaces {
		t.Errorf("Replaces(committed new key) = %v, %v; want false, true", replaces, known)
	}
	d.Discard()

	n, err := s.Check()
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if want := 3 * (50 + 50 + 1); n != want {
		t.Errorf("Check read %d keys, want %d (derived ones included)", n, want)
	}
	var listed int
	if err := s.Scan([]byte("idx/p3/"), func(_, _ []byte) bool { listed++; return true }); err != nil {
		t.Fatal(err)
	}
	if listed != 15 { // ids ending in 3: 03, 13, 23, 33, 43 at each of 3 heights
		t.Errorf("Scan of a derived prefix listed %d keys, want 15", listed)
	}
	if v, err := s.Get([]byte("seen/2")); err != nil || string(v) != "x" {
		t.Errorf("Get(derived) = %q, %v", v, err)
	}

	root := bytes.Clone(s.Root())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir)
	if got := s.Derived(); strings.Join(got, ",") != "idx/,seen/" {
		t.Errorf("Derived after reopen = %q", got)
	}
	if !bytes.Equal(s.Root(), root) {
		t.Errorf("app hash after reopen %X, before %X", s.Root(), root)
	}
	if err := s.SetDerived([]string{"idx/", "seen/"}); err != nil {
		t.Errorf("SetDerived with the stored prefixes after the first commit: %v", err)
	}
	for _, ps := range [][]string{nil, {"idx/"}, {"idx/", "seen/", "more/"}} {
		if err := s.SetDerived(ps); !errors.Is(err, ErrDerivedFixed) {
			t.Errorf("SetDerived(%q) after the first commit = %v, want ErrDerivedFixed", ps, err)
		}
	}
}

// TestSetDerivedRejects lists the prefixes SetDerived refuses, and checks
// that before the first commit a second call replaces the first.
func TestSetDerivedRejects(t *testing.T) {
	s := openMem(t)
	for _, ps := range [][]string{{""}, {"a\nb/"}, {"a/", "a/b/"}, {"a/b/", "a/"}, {"a/", "a/"}} {
		if err := s.SetDerived(ps); err == nil {
			t.Errorf("SetDerived(%q) = nil, want an error", ps)
		}
	}
	if err := s.SetDerived([]string{"a/"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDerived([]string{"b/"}); err != nil {
		t.Fatalf("SetDerived before the first commit, again: %v", err)
	}
	if got := s.Derived(); len(got) != 1 || got[0] != "b/" {
		t.Errorf("Derived = %q, want [b/]", got)
	}
}

// TestCompareDerived compares two stores' derived keys: equal after the
// same writes, and different after any change to one, which Check, blind
// to derived keys, does not see.
func TestCompareDerived(t *testing.T) {
	build := func() *Store {
		s := openMem(t)
		if err := s.SetDerived([]string{"idx/"}); err != nil {
			t.Fatal(err)
		}
		apply(t, s, op{[]byte("rec/1"), []byte("a")}, op{[]byte("idx/p/1"), []byte{}}, op{[]byte("idx/p/2"), []byte{}})
		return s
	}
	tests := []struct {
		name string
		edit func(s *Store)
		want string // "" means equal
	}{
		{"untouched", func(*Store) {}, ""},
		{"value changed", func(s *Store) { s.db.Set(dataKey([]byte("idx/p/1")), []byte("forged"), nil) }, "entry 1 differs"},
		{"entry deleted", func(s *Store) { s.db.Delete(dataKey([]byte("idx/p/2")), nil) }, "is missing"},
		{"entry added", func(s *Store) { s.db.Set(dataKey([]byte("idx/p/3")), []byte{}, nil) }, "not in the other state"},
		{"entry renamed", func(s *Store) {
			s.db.Delete(dataKey([]byte("idx/p/1")), nil)
			s.db.Set(dataKey([]byte("idx/p/0")), []byte{}, nil)
		}, "entry 1 differs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replay, node := build(), build()
			tt.edit(node)
			if _, err := node.Check(); err != nil {
				t.Fatalf("Check: %v (derived keys are outside what it checks)", err)
			}
			err := node.CompareDerived(replay)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CompareDerived: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"idx/"`)):
				t.Fatalf("CompareDerived = %v, want an error naming \"idx/\" and %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "p/"):
				t.Fatalf("CompareDerived names a key: %v", err)
			}
		})
	}
	plain := openMem(t)
	if err := build().CompareDerived(plain); err == nil {
		t.Error("CompareDerived of stores deriving different prefixes = nil")
	}
}

package flatmap

import (
	"fmt"
	"testing"
)

type entry struct {
	k string
	n int
}

func key(e *entry) string { return e.k }

// check compares m with want, the oracle, both ways.
func check(t *testing.T, m *Map[entry], want map[string]*entry) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("Len() = %d, want %d", m.Len(), len(want))
	}
	for k, e := range want {
		if got := m.Get(k); got != e {
			t.Fatalf("Get(%q) = %v, want %v", k, got, e)
		}
	}
	seen := 0
	m.All(func(e *entry) bool {
		if want[e.k] != e {
			t.Fatalf("All gave %v, which is not indexed", e)
		}
		seen++
		return true
	})
	if seen != len(want) {
		t.Fatalf("All gave %d values, want %d", seen, len(want))
	}
}

func TestMap(t *testing.T) {
	tests := []struct {
		name string
		ops  []string // "+k" puts k, "-k" deletes k
	}{
		{"empty", nil},
		{"put and get", []string{"+a", "+b", "+c"}},
		{"replace", []string{"+a", "+a"}},
		{"delete absent", []string{"-a", "+b", "-a"}},
		{"delete all", []string{"+a", "+b", "-a", "-b"}},
		{"put after delete", []string{"+a", "-a", "+a"}},
		{"empty key", []string{"+", "-", "+"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, want := New(key), map[string]*entry{}
			for i, op := range tt.ops {
				k := op[1:]
				if op[0] == '+' {
					e := &entry{k, i}
					m.Put(e)
					want[k] = e
					continue
				}
				_, had := want[k]
				if got := m.Delete(k); got != had {
					t.Fatalf("Delete(%q) = %v, want %v", k, got, had)
				}
				delete(want, k)
			}
			check(t, m, want)
			if m.Get("absent") != nil {
				t.Fatal("Get of a key never put found a value")
			}
		})
	}
}

// TestMapCollisions runs many keys through a few growths and deletes
// every other one, so that runs of probes wrap the end of the slots and
// close up over deleted values.
func TestMapCollisions(t *testing.T) {
	m, want := New(key), map[string]*entry{}
	for i := range 5000 {
		e := &entry{fmt.Sprintf("mc1%040x", i), i}
		m.Put(e)
		want[e.k] = e
		if i%2 == 1 {
			k := fmt.Sprintf("mc1%040x", i-1)
			if !m.Delete(k) {
				t.Fatalf("Delete(%q) found nothing", k)
			}
			delete(want, k)
		}
	}
	check(t, m, want)
}

func TestAllStops(t *testing.T) {
	m := New(key)
	for i := range 10 {
		m.Put(&entry{fmt.Sprint(i), i})
	}
	calls := 0
	m.All(func(*entry) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("All called fn %d times after it returned false, want 1", calls)
	}
}

// FuzzMap replays a sequence of puts and deletes over a few keys, chosen
// by the input's bytes, against a Go map.
func FuzzMap(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0x80, 3, 0x81, 1})
	f.Add([]byte{0, 0, 0x80, 0x80, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		m, want := New(key), map[string]*entry{}
		for i, op := range ops {
			k := fmt.Sprint(op & 0x3f) // few keys: many replacements and collisions of runs
			if op&0x80 == 0 {
				e := &entry{k, i}
				m.Put(e)
				want[k] = e
			} else {
				_, had := want[k]
				if m.Delete(k) != had {
					t.Fatalf("op %d: Delete(%q) disagrees with the oracle", i, k)
				}
				delete(want, k)
			}
		}
		check(t, m, want)
	})
}

package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestEmptyStore(t *testing.T) {
	s := openMem(t)
	if s.Height() != 0 {
		t.Errorf("Height = %d, want 0", s.Height())
	}
	if got, want := s.Root(), modelRoot(nil); !bytes.Equal(got, want) {
		t.Errorf("Root = %x, want the empty-tree root %x", got, want)
	}
	if _, err := s.Get([]byte("x")); !isNotFound(err) {
		t.Errorf("Get on empty store = %v, want ErrNotFound", err)
	}
	if n, err := s.Check(); err != nil || n != 0 {
		t.Errorf("Check = %d, %v; want 0, nil", n, err)
	}
}

func TestDeltaRootEqualsCommitRoot(t *testing.T) {
	tests := []struct {
		name   string
		blocks [][]op
	}{
		{"one write", [][]op{{set("a", "1")}}},
		{"empty block", [][]op{{}}},
		{"empty block after writes", [][]op{{set("a", "1")}, {}}},
		{"empty value", [][]op{{set("a", "")}}},
		{"empty key", [][]op{{set("", "v")}}},
		{"overwrite", [][]op{{set("a", "1")}, {set("a", "2")}}},
		{"overwrite within block", [][]op{{set("a", "1"), set("a", "2")}}},
		{"delete", [][]op{{set("a", "1"), set("b", "2")}, {del("a")}}},
		{"delete missing key", [][]op{{del("nothing")}}},
		{"set then delete in block", [][]op{{set("a", "1"), del("a")}}},
		{"delete then set in block", [][]op{{set("a", "1")}, {del("a"), set("a", "3")}}},
		{"shared bucket", [][]op{{set(sameBucket(3)[0], "x"), set(sameBucket(3)[2], "z")}, {set(sameBucket(3)[1], "y")}, {del(sameBucket(3)[0])}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openMem(t)
			model := map[string][]byte{}
			for _, block := range tc.blocks {
				apply(t, s, block...) // checks Delta.Root == Commit == Store.Root
				for _, o := range block {
					if o.value == nil {
						delete(model, string(o.key))
					} else {
						model[string(o.key)] = o.value
					}
				}
				if got, want := s.Root(), modelRoot(model); !bytes.Equal(got, want) {
					t.Fatalf("height %d: Root %x, model gives %x", s.Height(), got, want)
				}
			}
			if _, err := s.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestDeltaRootCachedUntilWrite checks that Root sees writes made after an
// earlier call to Root.
func TestDeltaRootCachedUntilWrite(t *testing.T) {
	s := openMem(t)
	d := s.Begin()
	d.Set([]byte("a"), []byte("1"))
	r1, _ := d.Root()
	r1 = bytes.Clone(r1)
	d.Set([]byte("b"), []byte("2"))
	r2, _ := d.Root()
	if bytes.Equal(r1, r2) {
		t.Fatal("Root did not change after a Set")
	}
	d.Delete([]byte("b"))
	r3, _ := d.Root()
	if !bytes.Equal(r1, r3) {
		t.Fatalf("Root after deleting b = %x, want %x", r3, r1)
	}
	root, err := s.Commit(d, 1)
	if err != nil || !bytes.Equal(root, r1) {
		t.Fatalf("Commit = %x, %v; want %x", root, err, r1)
	}
	if _, err := s.Get([]byte("b")); !isNotFound(err) {
		t.Errorf("Get(b) = %v, want ErrNotFound", err)
	}
}

// TestPrepareThenWrite: a commit Prepare encoded ahead is what Commit
// writes, unless the delta changed after it, in which case Commit writes
// the delta as it is.
func TestPrepareThenWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(d *Delta) // between Prepare and Commit
		want  map[string]string
	}{
		{"nothing", func(*Delta) {}, map[string]string{"a": "1", "b": "2"}},
		{"a write", func(d *Delta) { d.Set([]byte("c"), []byte("3")) }, map[string]string{"a": "1", "b": "2", "c": "3"}},
		{"an overwrite", func(d *Delta) { d.Set([]byte("a"), []byte("9")) }, map[string]string{"a": "9", "b": "2"}},
		{"a delete", func(d *Delta) { d.Delete([]byte("b")) }, map[string]string{"a": "1"}},
		{"a child flushed", func(d *Delta) {
			c := d.Child()
			c.Set([]byte("c"), []byte("3"))
			c.Flush()
		}, map[string]string{"a": "1", "b": "2", "c": "3"}},
		{"discarded", func(d *Delta) { d.Discard() }, map[string]string{"a": "1", "b": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openMem(t)
			d := s.Begin()
			d.Set([]byte("a"), []byte("1"))
			d.Set([]byte("b"), []byte("2"))
			if err := d.Prepare(); err != nil {
				t.Fatal(err)
			}
			tc.after(d)
			root, err := s.Commit(d, 1)
			if err != nil {
				t.Fatal(err)
			}
			model := map[string][]byte{}
			for k, v := range tc.want {
				model[k] = []byte(v)
				if got, err := s.Get([]byte(k)); err != nil || string(got) != v {
					t.Errorf("Get(%s) = %q, %v; want %q", k, got, err, v)
				}
			}
			if want := modelRoot(model); !bytes.Equal(root, want) || !bytes.Equal(s.Root(), want) {
				t.Fatalf("root %x, store %x; the model gives %x", root, s.Root(), want)
			}
			if n, err := s.Check(); err != nil || n != len(model) {
				t.Fatalf("Check = %d, %v; want %d keys", n, err, len(model))
			}
		})
	}
}

// TestRootIndependentOfOrder is the determinism property: the same final
// contents give the same root, whatever the order of the writes and however
// they are split into blocks, and that root is the one the model computes.
func TestRootIndependentOfOrder(t *testing.T) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 0x6d65646368))
		ops := randomOps(r, 50+r.IntN(300))
		for _, k := range sameBucket(4) {
			ops = append(ops, set(k, k))
		}
		model := map[string][]byte{}
		for _, o := range ops {
			model[string(o.key)] = o.value
		}
		want := modelRoot(model)

		one := openMem(t)
		if got := apply(t, one, ops...); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: one block gives %x, model %x", seed, got, want)
		}

		shuffled := slices.Clone(ops)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		two := openMem(t)
		if got := apply(t, two, shuffled...); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: shuffled gives %x, model %x", seed, got, want)
		}

		// Split the shuffled writes across several blocks, with decoys that
		// a later block deletes or overwrites.
		split := openMem(t)
		rest := shuffled
		for len(rest) > 0 {
			n := min(len(rest), 1+r.IntN(40))
			block := slices.Clone(rest[:n])
			rest = rest[n:]
			if len(rest) > 0 {
				block = append(block, op{append([]byte("decoy/"), rest[0].key...), []byte("gone")})
				rest = append(slices.Clone(rest), op{key: append([]byte("decoy/"), rest[0].key...)})
			}
			if len(rest) > 1 {
				block = append(block, op{rest[1].key, []byte("stale")}) // overwritten later
			}
			apply(t, split, block...)
		}
		if got := split.Root(); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: %d blocks give %x, model %x", seed, split.Height(), got, want)
		}
		for name, s := range map[string]*Store{"one": one, "shuffled": two, "split": split} {
			if n, err := s.Check(); err != nil || n != len(model) {
				t.Errorf("seed %d: %s: Check = %d, %v; want %d keys", seed, name, n, err, len(model))
			}
		}
	}
}

// TestRandomHistory runs random sets and deletes over a small key space, so
// that keys are often deleted and recreated, and compares every root with
// the model's.
func TestRandomHistory(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := append(sameBucket(3), "a", "b", "c", "", "a/b", "\xff")
	s := openMem(t)
	model := map[string][]byte{}
	for range 60 {
		var block []op
		for range r.IntN(8) {
			k := keys[r.IntN(len(keys))]
			if r.IntN(3) == 0 {
				block = append(block, del(k))
				delete(model, k)
			} else {
				v := randomBytes(r, r.IntN(4))
				block = append(block, op{[]byte(k), v})
				model[k] = v
			}
		}
		apply(t, s, block...)
		if got, want := s.Root(), modelRoot(model); !bytes.Equal(got, want) {
			t.Fatalf("height %d: Root %x, model %x", s.Height(), got, want)
		}
	}
	if n, err := s.Check(); err != nil || n != len(model) {
		t.Fatalf("Check = %d, %v; want %d", n, err, len(model))
	}
}

// TestLargeBlocks: blocks that dirty more buckets than parallelLeaves are
// hashed on two goroutines; the root must still be the model's, with
// overwrites, deletions and new keys mixed in every block.
func TestLargeBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := openMem(t)
	model := map[string][]byte{}
	for range 4 {
		var block []op
		for range 3 * parallelLeaves {
			k := fmt.Sprintf("k/%d", r.IntN(8*parallelLeaves))
			if _, ok := model[k]; ok && r.IntN(4) == 0 {
				block = append(block, del(k))
				delete(model, k)
				continue
			}
			v := randomBytes(r, 1+r.IntN(16))
			block = append(block, op{[]byte(k), v})
			model[k] = v
		}
		apply(t, s, block...)
		if got, want := s.Root(), modelRoot(model); !bytes.Equal(got, want) {
			t.Fatalf("height %d: Root %x, model %x", s.Height(), got, want)
		}
	}
	if n, err := s.Check(); err != nil || n != len(model) {
		t.Fatalf("Check = %d, %v; want %d", n, err, len(model))
	}
}

func TestDelete(t *testing.T) {
	s := openMem(t)
	empty := bytes.Clone(s.Root())
	apply(t, s, set("a", "1"), set("b", "2"))
	d := s.Begin()
	d.Delete([]byte("a"))
	if _, err := d.Get([]byte("a")); !isNotFound(err) {
		t.Errorf("Delta.Get after Delete = %v, want ErrNotFound", err)
	}
	if v := mustGet(t, s, "a"); v != "1" {
		t.Errorf("committed a = %q before Commit, want 1", v)
	}
	if _, err := s.Commit(d, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("a")); !isNotFound(err) {
		t.Errorf("Get after committed Delete = %v, want ErrNotFound", err)
	}
	if got := scanAll(t, s, ""); !slices.Equal(got, []string{"b=2"}) {
		t.Errorf("Scan after Delete = %q", got)
	}
	apply(t, s, del("b"))
	if !bytes.Equal(s.Root(), empty) {
		t.Errorf("deleting every key gives root %x, want the empty root %x", s.Root(), empty)
	}
	if n, err := s.Check(); err != nil || n != 0 {
		t.Errorf("Check = %d, %v; want 0, nil", n, err)
	}
}

func TestDeltaGetReadsThrough(t *testing.T) {
	s := openMem(t)
	apply(t, s, set("a", "1"), set("b", "2"))
	d := s.Begin()
	d.Set([]byte("b"), []byte("3"))
	d.Set([]byte("c"), nil) // nil is stored as empty
	tests := []struct {
		key, want string
		missing   bool
	}{
		{key: "a", want: "1"},
		{key: "b", want: "3"},
		{key: "c", want: ""},
		{key: "d", missing: true},
	}
	for _, tc := range tests {
		v, err := d.Get([]byte(tc.key))
		if tc.missing != isNotFound(err) || (!tc.missing && (err != nil || string(v) != tc.want)) {
			t.Errorf("Delta.Get(%q) = %q, %v; want %q (missing %v)", tc.key, v, err, tc.want, tc.missing)
		}
	}
	if v := mustGet(t, s, "b"); v != "2" {
		t.Errorf("committed b = %q while a delta is open, want 2", v)
	}
	// Set copies its argument.
	buf := []byte("4")
	d.Set([]byte("e"), buf)
	buf[0] = 'X'
	if v, _ := d.Get([]byte("e")); string(v) != "4" {
		t.Errorf("Set kept a reference to the caller's slice: got %q", v)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	ops := randomOps(r, 200)
	apply(t, s, ops[:100]...)
	apply(t, s, ops[100:]...)
	apply(t, s, op{key: ops[0].key}) // a delete
	height, root := s.Height(), bytes.Clone(s.Root())
	pending := s.Begin()
	pending.Set([]byte("never committed"), []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openDir(t, dir)
	if s.Height() != height || !bytes.Equal(s.Root(), root) {
		t.Fatalf("reopened at %d/%x, want %d/%x", s.Height(), s.Root(), height, root)
	}
	if _, err := s.Get([]byte("never committed")); !isNotFound(err) {
		t.Errorf("uncommitted write survived reopen: %v", err)
	}
	if _, err := s.Get(ops[0].key); !isNotFound(err) {
		t.Errorf("deleted key survived reopen: %v", err)
	}
	if v := mustGet(t, s, string(ops[150].key)); v != string(ops[150].value) {
		t.Errorf("value after reopen = %x, want %x", v, ops[150].value)
	}
	if n, err := s.Check(); err != nil || n != 199 {
		t.Errorf("Check after reopen = %d, %v; want 199", n, err)
	}
	// The reopened store continues the chain.
	apply(t, s, set("next", "block"))
	if s.Height() != height+1 {
		t.Errorf("Height after next commit = %d, want %d", s.Height(), height+1)
	}
}

func TestCommitHeight(t *testing.T) {
	tests := []struct {
		name    string
		before  int // blocks committed first
		height  int64
		wantErr bool
	}{
		{"first block", 0, 1, false},
		{"zero", 0, 0, true},
		{"negative", 0, -1, true},
		{"skips first", 0, 2, true},
		{"next", 3, 4, false},
		{"repeat last", 3, 3, true},
		{"rewind", 3, 1, true},
		{"skip ahead", 3, 5, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openMem(t)
			for i := range tc.before {
				apply(t, s, set("k", string(rune('a'+i))))
			}
			height, root := s.Height(), bytes.Clone(s.Root())
			d := s.Begin()
			d.Set([]byte("new"), []byte("v"))
			_, err := s.Commit(d, tc.height)
			if !tc.wantErr {
				if err != nil || s.Height() != tc.height {
					t.Fatalf("Commit(%d) = %v, height %d", tc.height, err, s.Height())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "commit height") {
				t.Fatalf("Commit(%d) after %d = %v, want a height error", tc.height, height, err)
			}
			if s.Height() != height || !bytes.Equal(s.Root(), root) {
				t.Errorf("failed Commit changed the store: %d/%x", s.Height(), s.Root())
			}
			if _, err := s.Get([]byte("new")); !isNotFound(err) {
				t.Errorf("failed Commit wrote data: %v", err)
			}
		})
	}
}

func TestScan(t *testing.T) {
	s := openMem(t)
	apply(t, s, set("a/1", "x"), set("a/2", "y"), set("ab", "z"), set("b", "w"),
		set("\xff", "f"), set("\xff\xff", "ff"), set("", "empty"))
	d := s.Begin()
	d.Set([]byte("a/3"), []byte("pending")) // never visible to Scan
	_ = d
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"=empty", "a/1=x", "a/2=y", "ab=z", "b=w", "\xff=f", "\xff\xff=ff"}},
		{"a", []string{"a/1=x", "a/2=y", "ab=z"}},
		{"a/", []string{"a/1=x", "a/2=y"}},
		{"a/1", []string{"a/1=x"}},
		{"a/10", nil},
		{"c", nil},
		{"\xff", []string{"\xff=f", "\xff\xff=ff"}},
		{"\xff\xff", []string{"\xff\xff=ff"}},
		{"\xff\xff\xff", nil},
	}
	for _, tc := range tests {
		if got := scanAll(t, s, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("Scan(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	var n int
	if err := s.Scan([]byte("a"), func(k, v []byte) bool { n++; return false }); err != nil || n != 1 {
		t.Errorf("Scan stopping early: %d calls, %v; want 1, nil", n, err)
	}
	// Scan must not see the data of other namespaces: no key of the index,
	// leaf or meta namespaces leaks through an empty prefix.
	var all int
	_ = s.Scan(nil, func(k, v []byte) bool { all++; return true })
	if all != 7 {
		t.Errorf("Scan(nil) saw %d keys, want 7", all)
	}
}

// TestRootOneSide: blocks whose changed buckets all lie under one child of
// the root (large enough to be hashed in parallel otherwise), then under
// the other, then a single bucket: the root is always the model's.
func TestRootOneSide(t *testing.T) {
	s := openMem(t)
	model := map[string][]byte{}
	for _, left := range []bool{true, false, true} {
		var block []op
		for i := 0; len(block) < 2*parallelLeaves; i++ {
			k := fmt.Sprintf("side/%v/%d/%d", left, s.Height(), i)
			if (bucketOf([]byte(k)) < Buckets/2) == left {
				v := []byte(k)
				block = append(block, op{[]byte(k), v})
				model[k] = v
			}
		}
		apply(t, s, block...)
		if got, want := s.Root(), modelRoot(model); !bytes.Equal(got, want) {
			t.Fatalf("height %d (left %v): Root %x, model %x", s.Height(), left, got, want)
		}
	}
	apply(t, s, op{[]byte("one"), []byte("1")})
	model["one"] = []byte("1")
	if got, want := s.Root(), modelRoot(model); !bytes.Equal(got, want) {
		t.Fatalf("single write: Root %x, model %x", got, want)
	}
}

// TestReplaces checks Delta.Replaces against the committed state for every
// key of large random blocks (both of Root's paths: few buckets on one
// goroutine, many on two), and that it answers only for keys the delta
// writes, once Root has run.
func TestReplaces(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := openMem(t)
	for _, n := range []int{8, 3 * parallelLeaves, 40} {
		d := s.Begin()
		var keys []string
		for range n {
			k := fmt.Sprintf("k/%d", r.IntN(8*parallelLeaves))
			keys = append(keys, k)
			if r.IntN(4) == 0 {
				d.Delete([]byte(k))
			} else {
				d.Set([]byte(k), randomBytes(r, 1+r.IntN(16)))
			}
		}
		if _, known := d.Replaces([]byte(keys[0])); known {
			t.Fatal("Replaces answered before Root")
		}
		if _, err := d.Root(); err != nil {
			t.Fatal(err)
		}
		replaced := 0
		for _, k := range keys {
			_, err := s.Get([]byte(k))
			want := err == nil
			got, known := d.Replaces([]byte(k))
			if !known || got != want {
				t.Fatalf("Replaces(%s) = %v, %v; committed: %v", k, got, known, want)
			}
			if got {
				replaced++
			}
		}
		if _, known := d.Replaces([]byte("not/written")); known {
			t.Error("Replaces answered for a key the delta does not write")
		}
		if s.Height() > 0 && replaced == 0 {
			t.Fatalf("block of %d keys replaced none: the test checks nothing", n)
		}
		if _, err := s.Commit(d, s.Height()+1); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubtreeOneAllocation: the nodes a block's changed leaves hash up to
// the root's child share one allocation, however many levels there are
// (a copy per level was ~4 MB a 4,096-record block), and they are the
// nodes Commit writes: the root they give is the full recomputation's.
func TestSubtreeOneAllocation(t *testing.T) {
	s := openMem(t)
	d := s.Begin()
	r := rand.New(rand.NewPCG(5, 6))
	for range 4096 {
		d.Set(fmt.Appendf(nil, "k/%016x", r.Uint64()), []byte("v"))
	}
	if _, err := d.Root(); err != nil {
		t.Fatal(err)
	}
	var left []node
	for b := range d.leaves {
		if b < Buckets/2 {
			left = append(left, node{Buckets + int(b), d.leaves[b]})
		}
	}
	slices.SortFunc(left, func(a, b node) int { return a.i - b.i })
	if n := testing.AllocsPerRun(5, func() { d.subtree(left) }); n != 1 {
		t.Errorf("subtree of %d leaves allocates %v times, want 1", len(left), n)
	}
	if got := d.subtree(left); got[len(got)-1].i != 2 {
		t.Errorf("subtree's last node is %d, want the root's left child, 2", got[len(got)-1].i)
	}
	root := bytes.Clone(d.root)
	if _, err := s.Commit(d, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatalf("Check after a 4,096-key block: %v", err)
	}
	if !bytes.Equal(s.Root(), root) {
		t.Errorf("committed root %X, Root predicted %X", s.Root(), root)
	}
}

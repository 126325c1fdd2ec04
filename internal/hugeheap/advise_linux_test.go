package hugeheap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestAdviseMarksTheHeaps marks the running test's heaps and reads back,
// from /proc/self/smaps, which mappings are marked for huge pages ("hg"):
// a large block in the Go heap and an anonymous mapping such as the C
// allocator makes are; a mapping laid out as a thread's stack, above a
// guard page, is not.
func TestAdviseMarksTheHeaps(t *testing.T) {
	if mode, err := Mode(); err != nil || mode != "madvise" {
		t.Skipf("transparent huge pages are %q here (%v): nothing to ask for", mode, err)
	}
	block := make([]byte, 32<<20)
	// The stack first: Linux places each mapping below the one before,
	// so the other mapping's top meets the guard page, not the stack,
	// and the two cannot merge into one.
	stack := anonymous(t, 4096+8<<20, syscall.PROT_NONE)
	if err := syscall.Mprotect(stack[4096:], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
		t.Fatal(err)
	}
	other := anonymous(t, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE)
	a, err := NewAdvisor()
	if err != nil {
		t.Fatal(err)
	}
	marked, err := a.Advise()
	if err != nil {
		t.Fatal(err)
	}
	if marked < uint64(len(block)) {
		t.Errorf("Advise marked %d bytes, less than the %d-byte block in the heap", marked, len(block))
	}
	if !markedHuge(t, addr(block)) {
		t.Error("the heap block's mapping is not marked for huge pages")
	}
	if !markedHuge(t, addr(other)) {
		t.Error("an anonymous mapping outside the Go heap is not marked for huge pages")
	}
	if markedHuge(t, addr(stack[4096:])) {
		t.Error("a mapping above a guard page, as a thread's stack is, was marked for huge pages")
	}
}

func anonymous(t *testing.T, n, prot int) []byte {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, n, prot, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

func addr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }

// markedHuge reports whether the mapping holding address at carries the
// "hg" flag (madvise(MADV_HUGEPAGE)) in /proc/self/smaps.
func markedHuge(t *testing.T, at uint64) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range bytes.Lines(b) {
		var lo, hi uint64
		if n, _ := fmt.Sscanf(string(line), "%x-%x ", &lo, &hi); n == 2 {
			in = lo <= at && at < hi
			continue
		}
		if in && bytes.HasPrefix(line, []byte("VmFlags:")) {
			return bytes.Contains(line, []byte(" hg"))
		}
	}
	t.Fatalf("no mapping in /proc/self/smaps holds %#x", at)
	return false
}

// BenchmarkAdvise measures one pass: /proc/self/maps read and parsed, and
// every heap mapping marked (again). Run does one every 50 ms, and when
// the Go runtime has mapped more.
func BenchmarkAdvise(b *testing.B) {
	a, err := NewAdvisor()
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := a.Advise(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunMarksNewMappings: a mapping made after Run's first pass, which
// changes nothing the Go runtime counts, is marked at a later pass, and
// Run returns nil once its context is done.
func TestRunMarksNewMappings(t *testing.T) {
	if mode, err := Mode(); err != nil || mode != "madvise" {
		t.Skipf("transparent huge pages are %q here (%v): nothing to ask for", mode, err)
	}
	before := anonymous(t, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, time.Millisecond, 5*time.Millisecond) }()
	waitMarked(t, before) // Run's first pass is done
	later := anonymous(t, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE)
	waitMarked(t, later)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v once its context was done, want nil", err)
	}
}

func waitMarked(t *testing.T, b []byte) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !markedHuge(t, addr(b)); {
		if time.Now().After(deadline) {
			t.Fatal("a mapping was not marked within 10 s of Run")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

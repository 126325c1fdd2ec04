package hugeheap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// thpEnabled is where Linux says which transparent huge page mode it runs.
const thpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled"

// Mode returns the system's transparent huge page mode: "always",
// "madvise" or "never".
func Mode() (string, error) {
	b, err := os.ReadFile(thpEnabled)
	if err != nil {
		return "", fmt.Errorf("transparent huge page mode: %w", err)
	}
	return parseMode(b)
}

// An Advisor marks the process's heaps for huge pages. It is not safe
// for concurrent use.
type Advisor struct {
	buf []byte
}

// NewAdvisor returns an Advisor, or ErrNotAdvisable when the system's
// mode is not "madvise".
func NewAdvisor() (*Advisor, error) {
	mode, err := Mode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAdvisable, err)
	}
	if mode != "madvise" {
		return nil, fmt.Errorf("%w: transparent huge pages are %q", ErrNotAdvisable, mode)
	}
	return &Advisor{}, nil
}

// maxReads bounds the reads of /proc/self/maps in one pass.
const maxReads = 3

// Advise marks every mapping heapSpans picks and returns how many bytes
// they span. It marks them all each time: marking a mapping marked
// before changes nothing, and an address range freed and mapped again,
// as the C allocator does with its large blocks, is a new mapping,
// unmarked, that a record of ranges already marked would skip.
//
// A read of /proc/self/maps that the process's own mapping and unmapping
// tore is read again, up to maxReads times; if every read was torn,
// Advise marks nothing and returns no error: the next pass reads again.
func (a *Advisor) Advise() (uint64, error) {
	var ms []mapping
	for range maxReads {
		b, err := readAll(a.buf[:0], "/proc/self/maps")
		a.buf = b
		if err != nil {
			return 0, err
		}
		if ms, err = parseMaps(b); err == nil {
			break
		} else if !errors.Is(err, errTorn) {
			return 0, err
		}
	}
	var marked uint64
	for _, s := range heapSpans(ms) {
		err := madvise(s, syscall.MADV_HUGEPAGE)
		switch {
		case errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EAGAIN):
			// Unmapped since /proc/self/maps was read, or the kernel
			// was short of memory to split it: the next pass tries again.
		case err != nil:
			return marked, fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, err)
		default:
			marked += s.end - s.start
		}
	}
	return marked, nil
}

func madvise(s span, advice int) error {
	_, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(s.start), uintptr(s.end-s.start), uintptr(advice))
	if e != 0 {
		return e
	}
	return nil
}

// readAll reads a /proc file into buf, growing it as needed: such files
// have no size to stat.
func readAll(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Package hugeheap asks Linux to back the process's heaps, Go's and the C
// allocator's, with transparent huge pages where the system leaves that
// choice to each process.
//
// Many Linux systems run transparent huge pages in "madvise" mode: a
// process gets 2 MiB pages only for memory it marks with
// madvise(MADV_HUGEPAGE), and the Go runtime marks none of its heap. Each
// 4 KiB page of the heap then costs a page fault the first time it is
// touched, and again after the runtime returns it to the system. On
// machines where a fault is expensive (a virtual machine without hardware
// page tables takes ~13 µs) a node's writes spend a large share of their
// time there; with 2 MiB pages one fault maps 512 times as much.
//
// The C allocator's memory is no different: in a build with cgo, Pebble
// allocates its memtables (64 MiB each) and cached blocks with it, and
// the memtables were the largest share of a node's faults. So an
// Advisor marks every anonymous writable mapping in /proc/self/maps that
// can hold a huge page, except threads' stacks, and Run repeats that as
// the process maps more: at once when the Go runtime's mapped memory has
// grown, and at a fixed interval for the C allocator's mappings, which no
// metric shows. It is what transparent huge pages in "always" mode would
// give the process, less the stacks.
//
// The cost is memory: the kernel may back a 2 MiB range in full where the
// heap uses part of it, and its khugepaged may fill ranges the runtime
// returned; and, measured at 1,000,000 records, CPU: fewer faults, more
// of it a record written. So a node asks only when told to
// (MEDCHAIN_HUGE_PAGES=on); docs/operations.md says when that pays and
// how to bound the memory.
package hugeheap

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ErrNotAdvisable is returned where huge pages cannot or need not be
// asked for: not Linux, transparent huge pages off ("never") or already
// given to every process ("always").
var ErrNotAdvisable = errors.New("huge pages are not the process's to ask for here")

// errTorn says that /proc/self/maps changed while it was read: Linux
// writes it a piece at a time, and mappings made or removed in between
// can leave lines out of order. The next read sees them whole.
var errTorn = errors.New("/proc/self/maps changed while it was read")

// hugePage is the size of a transparent huge page on the platforms that
// have them (x86-64, and arm64 with 4 KiB base pages).
const hugePage = 2 << 20

// span is a range of addresses, [start, end).
type span struct{ start, end uint64 }

// mapping is one line of /proc/self/maps.
type mapping struct {
	span
	perms     string
	anonymous bool   // no file, no name
	name      string // a name the kernel gives, such as "[heap]" or "[stack]", or a file's path
}

// parseMaps reads the lines of /proc/self/maps: "start-end perms offset
// dev inode [path]". A line it cannot read is an error: the format is
// the kernel's, and a line misread could mark the wrong memory. Lines out
// of order are errTorn.
func parseMaps(b []byte) ([]mapping, error) {
	var ms []mapping
	for line := range bytes.Lines(b) {
		line = bytes.TrimRight(line, "\n")
		if len(line) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 5 {
			return nil, fmt.Errorf("maps line %q: want at least 5 fields", line)
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			return nil, fmt.Errorf("maps line %q: address range has no '-'", line)
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("maps line %q: bad address range", line)
		}
		if len(ms) > 0 && start < ms[len(ms)-1].end {
			return nil, fmt.Errorf("%w: line %q overlaps or precedes the line before", errTorn, line)
		}
		ms = append(ms, mapping{
			span:      span{start, end},
			perms:     string(f[1]),
			anonymous: string(f[4]) == "0" && len(f) == 5,
		})
		if len(f) > 5 {
			ms[len(ms)-1].name = string(f[5])
		}
	}
	return ms, nil
}

// heapSpans returns the mappings to mark: every anonymous writable
// mapping (and the C allocator's "[heap]") that can hold a whole huge
// page, except threads' stacks. Those are the Go heap, split into several
// lines by earlier marking, with its reserved address space ("---p")
// after it; the C allocator's arenas, likewise; and its large blocks,
// each a mapping of its own. A stack is a writable mapping directly above
// a small reserved one, its guard page: a stack touches little of its
// mapping, and a huge page there would be mostly unused.
func heapSpans(ms []mapping) []span {
	var out []span
	for i, m := range ms {
		if m.perms != "rw-p" || !(m.anonymous || m.name == "[heap]") || !holdsHugePage(m.span) {
			continue
		}
		if i > 0 && isGuard(ms[i-1]) && ms[i-1].end == m.start {
			continue
		}
		out = append(out, m.span)
	}
	return out
}

// maxGuard is the most a thread's guard page may span: glibc's default
// is one page, and Go's reservations beside its heap are 64 MiB arenas.
const maxGuard = 1 << 20

func isGuard(m mapping) bool {
	return m.anonymous && m.perms == "---p" && m.end-m.start <= maxGuard
}

// holdsHugePage reports whether s contains an aligned huge page.
func holdsHugePage(s span) bool {
	first := (s.start + hugePage - 1) &^ (hugePage - 1)
	return first+hugePage <= s.end
}

package hugeheap

import (
	"errors"
	"slices"
	"testing"
)

// A process's maps as Linux writes them: the binary and a file, a Go
// heap split in three by earlier marking with reserved space after it, a
// C allocator's block, a thread's stack above its guard page, a C arena
// with its reserved space, the C allocator's [heap], the main stack.
const sampleMaps = `00400000-004ab000 r-xp 00000000 fe:00 9978291                            /tmp/exe
0058e000-00599000 rw-p 0018e000 fe:00 9978291                            /tmp/exe
00599000-005cf000 rw-p 00000000 00:00 0 
00600000-00a00000 rw-p 00000000 fe:00 9978292                            /tmp/data
261cbc000000-261cbc800000 rw-p 00000000 00:00 0 
261cbc800000-261cbe000000 rw-p 00000000 00:00 0 
261cbe000000-261cbe100000 rw-p 00000000 00:00 0 
261cbe100000-261cc4000000 ---p 00000000 00:00 0 
7fdba6be0000-7fdba6e00000 rw-p 00000000 00:00 0 
7fdbbda38000-7fdbbda39000 ---p 00000000 00:00 0 
7fdbbda39000-7fdbbde3a000 rw-p 00000000 00:00 0 
7fdbbde3b000-7fdbbe43b000 rw-p 00000000 00:00 0 
7fdbbe43b000-7fdbc0000000 ---p 00000000 00:00 0 
7fdbc0000000-7fdbc0400000 rw-p 00000000 00:00 0                          [heap]
7ffda2ddd000-7ffda2dfe000 rw-p 00000000 00:00 0                          [stack]
`

func TestHeapSpans(t *testing.T) {
	ms, err := parseMaps([]byte(sampleMaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []span{
		{0x261cbc000000, 0x261cbc800000}, // the Go heap, marked before
		{0x261cbc800000, 0x261cbe000000}, // and mapped since
		// not 261cbe000000-261cbe100000: 1 MiB holds no huge page
		{0x7fdba6be0000, 0x7fdba6e00000}, // a C allocator's block
		{0x7fdbbde3b000, 0x7fdbbe43b000}, // a C arena
		// not the thread's stack above its guard page, nor [stack]
		{0x7fdbc0000000, 0x7fdbc0400000}, // the C allocator's [heap]
	}
	if got := heapSpans(ms); !slices.Equal(got, want) {
		t.Errorf("heapSpans = %x\nwant %x", got, want)
	}
}

func TestParseMapsRejects(t *testing.T) {
	for _, in := range []string{
		"00400000 r-xp 00000000 fe:00 1 /x\n",          // no range
		"00400000-zz r-xp 00000000 fe:00 1 /x\n",       // not hex
		"00500000-00400000 r-xp 00000000 fe:00 1 /x\n", // backwards
		"00400000-00500000 r-xp 00000000\n",            // short
	} {
		if _, err := parseMaps([]byte(in)); err == nil || errors.Is(err, errTorn) {
			t.Errorf("parseMaps(%q) = %v, want an error that is not errTorn", in, err)
		}
	}
}

// TestParseMapsTorn reads maps as a read of /proc/self/maps can give them
// while the process maps and unmaps: a line repeated, lines out of order.
func TestParseMapsTorn(t *testing.T) {
	for _, in := range []string{
		"00400000-00500000 rw-p 0 00:00 0\n00450000-00600000 rw-p 0 00:00 0\n",
		"00400000-00500000 rw-p 0 00:00 0\n00400000-00500000 rw-p 0 00:00 0\n",
		"00600000-00700000 rw-p 0 00:00 0\n00400000-00500000 rw-p 0 00:00 0\n",
	} {
		if _, err := parseMaps([]byte(in)); !errors.Is(err, errTorn) {
			t.Errorf("parseMaps(%q) = %v, want errTorn", in, err)
		}
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"always [madvise] never\n", "madvise"},
		{"[always] madvise never\n", "always"},
		{"always madvise [never]\n", "never"},
		{"always madvise never\n", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := parseMode([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("parseMode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMaps(f *testing.F) {
	f.Add([]byte(sampleMaps))
	f.Add([]byte("0-1 rw-p 0 00:00 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseMaps(b)
		if err != nil {
			return
		}
		for _, s := range heapSpans(ms) {
			if !holdsHugePage(s) {
				t.Fatalf("heapSpans gave %x, which holds no huge page", s)
			}
			if !slices.ContainsFunc(ms, func(m mapping) bool { return m.span == s && m.perms == "rw-p" && (m.anonymous || m.name == "[heap]") }) {
				t.Fatalf("heapSpans gave %x, which is no writable anonymous mapping", s)
			}
		}
	})
}

package flatmap

import (
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// bigEntry is a value the size of the node's cache entry of a patient,
// holding its key's bytes as that entry does.
type bigEntry struct {
	id  [46]byte
	len uint8
	n   int
	_   [720]byte
}

func bigKey(e *bigEntry) string { return unsafe.String(&e.id[0], e.len) }

// BenchmarkLookupEvicted times one lookup at a time among 100,000 keys
// held by their values, as a node's caches hold patients, in a Go map and
// in a Map. Before each lookup (untimed), warm leaves the memory as it
// was; evicted touches 1,024 random cache lines of 64 MiB, as a cold
// storage read does before a consent decision, so that little of the
// index is left in the CPU's caches or TLB. p50-ns is the lookup's
// median.
func BenchmarkLookupEvicted(b *testing.B) {
	const n = 100_000
	vals := make([]bigEntry, n)
	keys := make([]string, n) // the callers' own copies, as a decoded record's
	std, flat := make(map[string]*bigEntry, n), New(bigKey)
	for i := range vals {
		e := &vals[i]
		e.n = i
		e.len = uint8(copy(e.id[:], fmt.Sprintf("mc1%040x", i)))
		keys[i] = fmt.Sprintf("mc1%040x", i)
		std[bigKey(e)] = e
		flat.Put(e)
	}
	lookups := map[string]func(string) *bigEntry{
		"map":     func(k string) *bigEntry { return std[k] },
		"flatmap": flat.Get,
	}
	for _, cold := range []bool{false, true} {
		var evict []uint64
		if cold {
			evict = make([]uint64, 8<<20)
		}
		for _, name := range []string{"map", "flatmap"} {
			get := lookups[name]
			b.Run(fmt.Sprintf("%s/evicted=%v", name, cold), func(b *testing.B) {
				took := make([]time.Duration, 0, b.N)
				i, x, sink := 0, uint64(1), 0
				for b.Loop() {
					for range len(evict) / 8192 {
						x = x*6364136223846793005 + 1442695040888963407
						evict[x>>20%uint64(len(evict))]++
					}
					i = (i + 7919) % n
					k := keys[i]
					sink += int(k[20]) // the key in cache, as the record just read
					t0 := time.Now()
					e := get(k)
					took = append(took, time.Since(t0))
					if e == nil || e.n != i {
						b.Fatalf("lookup of key %d found %v", i, e)
					}
				}
				if sink == 0 {
					b.Fatal("no key touched")
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
			})
		}
	}
}

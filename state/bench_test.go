package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCommit measures one block of 1000 writes to fresh keys on disk,
// including the Delta.Root that FinalizeBlock computes and the synced
// Pebble batch. The state grows as the benchmark runs, as a ledger does.
func BenchmarkCommit(b *testing.B) {
	s := openDir(b, b.TempDir())
	r := rand.New(rand.NewPCG(1, 1))
	value := randomBytes(r, 256)
	b.ReportAllocs()
	block := 0
	for b.Loop() {
		d := s.Begin()
		for i := range 1000 {
			d.Set(fmt.Appendf(nil, "actor/%08d/%04d", block, i), value)
		}
		if _, err := d.Root(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Commit(d, s.Height()+1); err != nil {
			b.Fatal(err)
		}
		block++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(block*1000), "ns/write")
}

// BenchmarkCommitRecords measures blocks shaped like a record batch's: 4096
// records with random IDs, each a 600-byte value and an empty index entry
// under its patient, on a state that grows by that much each block.
func BenchmarkCommitRecords(b *testing.B) {
	s := openDir(b, b.TempDir())
	r := rand.New(rand.NewPCG(1, 1))
	value := randomBytes(r, 600)
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		d := s.Begin()
		for range 4096 {
			id := fmt.Sprintf("r%016x%016x", r.Uint64(), r.Uint64())
			d.Set([]byte("record/"+id), value)
			d.Set(fmt.Appendf(nil, "patient-record/p%04d/%s", r.IntN(1000), id), nil)
			records++
		}
		if _, err := d.Root(); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Commit(d, s.Height()+1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
}

// BenchmarkGet measures a committed read from a store of 100,000 keys.
func BenchmarkGet(b *testing.B) {
	s := openDir(b, b.TempDir())
	const n = 100_000
	value := make([]byte, 256)
	for blk := range n / 10_000 {
		d := s.Begin()
		for i := range 10_000 {
			d.Set(fmt.Appendf(nil, "key/%06d", blk*10_000+i), value)
		}
		if _, err := s.Commit(d, s.Height()+1); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([][]byte, 1024)
	r := rand.New(rand.NewPCG(2, 2))
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key/%06d", r.IntN(n))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCommitRecordsAtScale is BenchmarkCommitRecords on a state that
// already holds n records (2n keys): the cost of a block's commitment as
// the ledger grows, in seconds instead of a bench run of many minutes.
// Each block's buckets are re-read from the store (Delta.Root), so the
// figure grows with the entries per bucket and with how many of the
// store's blocks no cache holds. With derived=true the patient's index
// key is left out of the commitment (Store.SetDerived), as the ledger
// does with it.
//
//	go test -run '^$' -bench CommitRecordsAtScale -benchtime 20x ./state
func BenchmarkCommitRecordsAtScale(b *testing.B) {
	for _, c := range []struct {
		n       int
		derived bool
	}{{10_000, false}, {10_000, true}, {100_000, false}, {100_000, true}, {1_000_000, false}, {1_000_000, true}} {
		b.Run(fmt.Sprintf("records=%d/derived=%t", c.n, c.derived), func(b *testing.B) {
			n := c.n
			s := openDir(b, b.TempDir())
			if c.derived {
				if err := s.SetDerived([]string{"patient-record/"}); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, 1))
			value := randomBytes(r, 600)
			block := func(records int) {
				d := s.Begin()
				for range records {
					id := fmt.Sprintf("r%016x%016x", r.Uint64(), r.Uint64())
					d.Set([]byte("record/"+id), value)
					d.Set(fmt.Appendf(nil, "patient-record/p%06d/%s", r.IntN(max(1, n/10)), id), nil)
				}
				if _, err := d.Root(); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Commit(d, s.Height()+1); err != nil {
					b.Fatal(err)
				}
			}
			for built := 0; built < n; built += 20_000 {
				block(min(20_000, n-built))
			}
			b.ReportAllocs()
			blocks := 0
			for b.Loop() {
				block(4096)
				blocks++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(blocks*4096), "ns/record")
		})
	}
}

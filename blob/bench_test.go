package blob

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPutMany stores batches of 256 distinct 2.5 KiB blobs, the shape
// of one author's record batch; b.N counts blobs.
func BenchmarkPutMany(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([][]byte, 256)
	for i := range batch {
		batch[i] = make([]byte, 2560)
	}
	b.SetBytes(2560)
	b.ResetTimer()
	for done := 0; done < b.N; done += len(batch) {
		for _, blob := range batch {
			for j := 0; j < len(blob); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					blob[j+k] = byte(v >> (8 * k))
				}
			}
		}
		if _, err := s.PutMany(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// stored fills a fresh store with 100 batches of 256 random 2.5 KiB blobs
// and returns it with their names.
func stored(b *testing.B) (*Store, []string) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var names []string
	for range 100 {
		batch := make([][]byte, 256)
		for i := range batch {
			batch[i] = make([]byte, 2560)
			for j := range batch[i] {
				batch[i][j] = byte(rng.Uint32())
			}
		}
		n, err := s.PutMany(batch)
		if err != nil {
			b.Fatal(err)
		}
		names = append(names, n...)
	}
	return s, names
}

// BenchmarkHas looks up blobs just stored, as CheckTx does for each new
// record; b.N counts lookups.
func BenchmarkHas(b *testing.B) {
	s, names := stored(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !s.Has(names[i%len(names)]) {
			b.Fatal("stored blob missing")
		}
	}
}

// BenchmarkGet reads blobs just stored, as a record read does; b.N counts
// reads.
func BenchmarkGet(b *testing.B) {
	s, names := stored(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(names[(i*7919)%len(names)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetRecordBlobs reads what a record read fetches, a record's
// ciphertext (1-4 KiB) and its epoch envelope (1,200 bytes), from a store
// of 120,000 records stored as the bench stores them (each record's three
// blobs together, 256 records a batch): about 500 MB, twice the store's
// block cache, so most reads load their blocks from the files, as they do
// on a large ledger. Records are read in a scattered order, none of them
// from the recent set; b.N counts records.
func BenchmarkGetRecordBlobs(b *testing.B) {
	const records = 120_000
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []byte {
		p := make([]byte, n)
		for j := 0; j+8 <= n; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				p[j+k] = byte(v >> (8 * k))
			}
		}
		return p
	}
	pairs := make([][2]string, 0, records)
	for len(pairs) < records {
		var batch [][]byte
		for range 256 {
			batch = append(batch, fill(1024+rng.IntN(3*1024+1)), fill(1200), fill(81))
		}
		names, err := s.PutMany(batch)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(names); i += 3 {
			pairs = append(pairs, [2]string{names[i], names[i+1]})
		}
	}
	s.recent = recent{} // reads find their blobs through the index, as older ones are
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pairs[(i*7919)%len(pairs)]
		for _, name := range p {
			if _, err := s.Get(name); err != nil {
				b.Fatal(err)
			}
		}
	}
}

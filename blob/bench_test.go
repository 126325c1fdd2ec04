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

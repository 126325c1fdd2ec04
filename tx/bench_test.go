package tx

import "testing"

// BenchmarkDecodeVerify measures what CheckTx pays for a typical org.add
// before touching state: canonical decoding and one Ed25519 verification.
func BenchmarkDecodeVerify(b *testing.B) {
	raw := readVector(b, "valid-org-add")
	pub := testKey(b, "admin").Public().Sign
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		x, _, err := Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Verify(testChain, pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode isolates decoding, which runs before the signature check
// and so is what a flood of garbage costs.
func BenchmarkDecode(b *testing.B) {
	raw := readVector(b, "valid-org-add")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatch decodes a record batch of 256 records, the bench's
// batch: through Decode (the one-pass canonical reader) and through the
// strict reflective decoder it steps aside for. b.N counts batches.
func BenchmarkDecodeBatch(b *testing.B) {
	recs := make([]RecordPut, 256)
	for i := range recs {
		recs[i] = recordPut("mc1" + hex64('f')[:40])
	}
	raw := encode(b, signed(b, testKey(b, "admin"), TypeRecordBatch, 1, RecordBatch{Records: recs}))
	for _, c := range []struct {
		name   string
		decode func([]byte) (*Tx, any, error)
	}{{"Decode", Decode}, {"strict", decodeStrict}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

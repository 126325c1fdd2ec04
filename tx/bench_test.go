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

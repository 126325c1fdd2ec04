package seal

import (
	"crypto/hpke"
	"fmt"
	"testing"
)

func BenchmarkSealRecord(b *testing.B) {
	ek := mustEpoch(b, testIdentity(b, "patient"), "lab", 1)
	pub := ek.PublicKey()
	aad := []byte("rec-1|patient|lab")
	for _, size := range []int{1 << 10, 4 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			pt := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealRecord(pt, aad, pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	ek := mustEpoch(b, testIdentity(b, "patient"), "lab", 1)
	aad := []byte("rec-1|patient|lab")
	for _, size := range []int{1 << 10, 4 << 10, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			s, err := SealRecord(make([]byte, size), aad, ek.PublicKey())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Open(s.Ciphertext, s.DEK, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenEpochEnvelope(b *testing.B) {
	ek := mustEpoch(b, testIdentity(b, "patient"), "lab", 1)
	s, err := SealRecord(nil, []byte("r"), ek.PublicKey())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := OpenEpochEnvelope(ek, s.EpochEnvelope, []byte("r")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapForSelf(b *testing.B) {
	self := testIdentity(b, "author")
	dek := make([]byte, DEKSize)
	for b.Loop() {
		if _, err := WrapForSelf(self, dek, []byte("r")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEpochKey(b *testing.B) {
	patient := testIdentity(b, "patient")
	for b.Loop() {
		if _, err := EpochKey(patient, "lab", 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWrapEpochKey(b *testing.B) {
	ek := mustEpoch(b, testIdentity(b, "patient"), "lab", 1)
	grantee := testIdentity(b, "grantee").Box.PublicKey()
	for b.Loop() {
		if _, err := WrapEpochKey(grantee, ek, []byte("ctx")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapEpochKey(b *testing.B) {
	ek := mustEpoch(b, testIdentity(b, "patient"), "lab", 1)
	grantee := testIdentity(b, "grantee")
	env, err := WrapEpochKey(grantee.Box.PublicKey(), ek, []byte("ctx"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := UnwrapEpochKey(grantee.Box, env, []byte("ctx")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHPKESealBaseline is one bare hpke.Seal of a 32-byte key: the
// floor for SealRecord and WrapEpochKey, each of which does exactly one.
func BenchmarkHPKESealBaseline(b *testing.B) {
	pub := mustEpoch(b, testIdentity(b, "patient"), "lab", 1).PublicKey()
	key := make([]byte, DEKSize)
	for b.Loop() {
		if _, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), key); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

package bench

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/sha256"
	"time"
)

// measure runs f repeatedly for about d and returns the calls per second.
func measure(d time.Duration, f func()) float64 {
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for range 16 {
			f()
		}
		n += 16
	}
	return float64(n) / time.Since(start).Seconds()
}

// ceilings measures what one core can do: the limits no ledger beats.
func ceilings(rep *Report) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 512)
	sig := ed25519.Sign(priv, msg)
	rep.Ed25519VerifyPerS = measure(400*time.Millisecond, func() { ed25519.Verify(pub, msg, sig) })

	buf := make([]byte, 64<<10)
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	out := make([]byte, 0, len(buf)+gcm.Overhead())
	rep.AESGCMMBPerS = measure(300*time.Millisecond, func() { out = gcm.Seal(out[:0], nonce, buf, nil) }) * float64(len(buf)) / 1e6
	rep.SHA256MBPerS = measure(300*time.Millisecond, func() { sha256.Sum256(buf) }) * float64(len(buf)) / 1e6
}

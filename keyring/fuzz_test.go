package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad writes arbitrary bytes as a key file and reads it back with Load,
// Public, List and Resolve. None may panic; errors must be the sentinels.
func FuzzLoad(f *testing.F) {
	// Seed with a real file, written with cheapKDF under passphrase "pw".
	r := newRing(f)
	k, err := r.New("seed", "pw")
	if err != nil {
		f.Fatal(err)
	}
	real, err := os.ReadFile(filepath.Join(r.Dir(), "seed.key"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real)
	if golden, err := os.ReadFile(filepath.Join("testdata", "golden.key")); err == nil {
		f.Add(golden)
	}
	// Mutations that each reach a different check.
	f.Add(bytes.Replace(real, []byte(`"version": 1`), []byte(`"version": 2`), 1))             // unknown version
	f.Add(bytes.Replace(real, []byte(`"name": "seed"`), []byte(`"name": "other"`), 1))        // name does not match file
	f.Add(bytes.Replace(real, []byte(`"id": "mc1`), []byte(`"id": "mc2`), 1))                 // id does not match public
	f.Add(bytes.Replace(real, []byte(`"public": "mcpub1`), []byte(`"public": "mcpub1AA`), 1)) // public wrong size
	f.Add(bytes.Replace(real, []byte(`"time": 1`), []byte(`"time": 4294967295`), 1))          // absurd KDF time
	f.Add(bytes.Replace(real, []byte(`"memory_kib": 64`), []byte(`"memory_kib": 99999999`), 1))
	f.Add(bytes.Replace(real, []byte(`"threads": 1`), []byte(`"threads": 0`), 1))
	f.Add(bytes.Replace(real, []byte(`"time": 1`), []byte(`"time": 2`), 1))              // valid KDF, wrong key
	f.Add(bytes.Replace(real, []byte(`"aead": "x`), []byte(`"aead": "y`), 1))            // unknown AEAD
	f.Add(bytes.Replace(real, []byte(`"nonce": "`), []byte(`"nonce": "AAAA`), 1))        // nonce wrong size
	f.Add(bytes.Replace(real, []byte(`"ciphertext": "`), []byte(`"ciphertext": "A`), 1)) // bad base64
	f.Add(real[:len(real)/2])                                                            // truncated
	f.Add(append(append([]byte{}, real...), real...))                                    // trailing data
	f.Add([]byte(`{"version":1,"name":"seed","kdf":{"salt":null},"nonce":[]}`))          // wrong types
	f.Add([]byte{})
	f.Add([]byte("\x00\xff{"))

	dir := filepath.Join(f.TempDir(), "ring")
	fr, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	fr.KDF = cheapKDF
	path := filepath.Join(dir, "seed.key")
	id := k.ID()

	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		pub, gotID, perr := fr.Public("seed")
		if perr == nil {
			if pub.Check() != nil || pub.ID() != gotID {
				t.Fatal("Public accepted an inconsistent key")
			}
		} else if !errors.Is(perr, ErrMalformed) {
			t.Fatalf("Public: unexpected error %v", perr)
		}

		// Run the KDF only with parameters cheap enough for a fuzzer;
		// the caps themselves are tested in TestTamper.
		if kf, _, err := parse("seed", data); err == nil && (kf.KDF.MemoryKiB > 1024 || kf.KDF.Time > 2) {
			return
		}
		_, lerr := fr.Load("seed", "pw")
		switch {
		case lerr == nil:
			if perr != nil {
				t.Fatal("Load succeeded where Public failed")
			}
		case errors.Is(lerr, ErrMalformed), errors.Is(lerr, ErrWrongPassphrase):
		default:
			t.Fatalf("Load: unexpected error %v", lerr)
		}
		if _, err := fr.List(); (err == nil) != (perr == nil) {
			t.Fatalf("List error %v disagrees with Public error %v", err, perr)
		}
		if _, err := fr.Resolve(id); err != nil && perr == nil && gotID == id {
			t.Fatalf("Resolve: %v", err)
		}
	})
}

// Package blob is a node's content-addressed store for ciphertext and key
// envelopes. A blob's name is the SHA-256 of its bytes, checked on every
// write and every read, so a node can hold and serve blobs without being
// trusted with them: a changed byte is found, never served.
//
// blob stores only what it is given; it never sees plaintext or keys.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxSize bounds one blob.
const MaxSize = 64 << 20

// Sentinel errors.
var (
	ErrNotFound = errors.New("blob not found")
	ErrCorrupt  = errors.New("blob corrupt")
	ErrBadName  = errors.New("blob name must be 64 lowercase hex digits")
	ErrTooLarge = errors.New("blob too large")
)

// Store is a directory of blobs, safe for concurrent use.
type Store struct{ dir string }

// Open opens or creates a store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Hash returns the name of b.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ValidName reports whether name is a well-formed blob name.
func ValidName(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name[:2], name[2:]) }

// Put stores b under its hash, durably, and returns the hash. Storing the
// same bytes twice is a no-op.
func (s *Store) Put(b []byte) (string, error) {
	if len(b) > MaxSize {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	name := Hash(b)
	if s.Has(name) {
		if _, err := s.Get(name); err == nil {
			return name, nil
		}
		// The stored copy is damaged: replace it with these good bytes.
	}
	p := s.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return "", fmt.Errorf("write blob %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("sync blob %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return "", fmt.Errorf("store blob %s: %w", name, err)
	}
	return name, syncDir(filepath.Dir(p))
}

// PutNamed stores b and checks that its hash is name.
func (s *Store) PutNamed(name string, b []byte) error {
	if !ValidName(name) {
		return ErrBadName
	}
	if Hash(b) != name {
		return fmt.Errorf("%w: bytes do not hash to %s", ErrCorrupt, name)
	}
	_, err := s.Put(b)
	return err
}

// Has reports whether the store holds name (without checking it).
func (s *Store) Has(name string) bool {
	if !ValidName(name) {
		return false
	}
	_, err := os.Stat(s.path(name))
	return err == nil
}

// Get returns the blob name after checking its hash.
func (s *Store) Get(name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, ErrBadName
	}
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", name, err)
	}
	if Hash(b) != name {
		return nil, fmt.Errorf("%w: %s does not match its hash", ErrCorrupt, name)
	}
	return b, nil
}

// Walk calls fn with the name of every stored blob, in directory order.
func (s *Store) Walk(fn func(name string) error) error {
	return filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := filepath.Base(filepath.Dir(p)) + d.Name()
		if !ValidName(name) {
			return nil // temp files and strays
		}
		return fn(name)
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

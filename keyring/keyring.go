// Package keyring stores medchain identities at rest, each encrypted under a
// passphrase.
//
// A keyring is a directory holding one file per identity, DIR/NAME.key, mode
// 0600. The file is JSON: the public half of the identity in the clear (so a
// key can be listed and resolved without its passphrase) and the two private
// seeds sealed with XChaCha20-Poly1305 under a key derived from the
// passphrase with Argon2id. The associated data binds the format version, the
// name, the actor ID, the public key and the KDF parameters, so swapping
// files or fields between files is detected.
//
// This package must never:
//   - write a private key or seed to disk in the clear, not even briefly
//     (files are written whole, already sealed, to a temporary file that is
//     then renamed into place);
//   - log, print or put into an error a passphrase, a derived key or any
//     private key bytes;
//   - tell apart, in what it reports, a wrong passphrase from a ciphertext
//     that fails authentication for any other reason;
//   - trust a key file: every field is checked, sizes are bounded and KDF
//     parameters are capped before any work is done, so a hostile file can
//     cost at most one bounded Argon2id run and yields [ErrMalformed] or
//     [ErrWrongPassphrase], never a panic.
package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/medchain/medchain/ident"
)

// Sentinel errors. Errors returned by this package wrap one of these where
// one applies; test with [errors.Is].
var (
	ErrNotFound        = errors.New("key not found")
	ErrExists          = errors.New("key already exists")
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrMalformed       = errors.New("malformed key file")
	ErrBadName         = errors.New("bad key name")
)

// Format constants.
const (
	fileVersion = 1
	kdfAlg      = "argon2id"
	aeadAlg     = "xchacha20poly1305"
	fileExt     = ".key"

	saltSize   = 16 // written
	minSalt    = 16 // accepted when reading
	maxSalt    = 64
	maxFile    = 64 << 10 // bytes; a real file is about 2.5 KiB
	maxSeed    = 4096     // bytes per seed in the plaintext
	maxCipher  = 2 + 2*maxSeed + 2 + chacha20poly1305.Overhead
	minCipher  = 2 + 2 + chacha20poly1305.Overhead
	adLabel    = "medchain/keyring/v1\x00"
	dirMode    = 0o700
	fileMode   = 0o600
	maxPassLen = 1024 // bytes accepted from a terminal
)

// Limits on Argon2id parameters, enforced both when writing and when reading
// a file, so that a hostile file cannot make Load burn unbounded memory or
// time.
const (
	MaxKDFTime      = 10
	MaxKDFMemoryKiB = 1 << 20 // 1 GiB
	MaxKDFThreads   = 64
)

// KDF holds Argon2id parameters.
type KDF struct {
	Time      uint32 // passes over memory, 1..MaxKDFTime
	MemoryKiB uint32 // memory in KiB, 8*Threads..MaxKDFMemoryKiB
	Threads   uint8  // parallelism, 1..MaxKDFThreads
}

// DefaultKDF returns the parameters [Open] sets: time 2, 64 MiB, 2 threads.
func DefaultKDF() KDF { return KDF{Time: 2, MemoryKiB: 64 << 10, Threads: 2} }

func (k KDF) check() error {
	switch {
	case k.Time < 1 || k.Time > MaxKDFTime:
		return fmt.Errorf("argon2id time %d out of range 1..%d", k.Time, MaxKDFTime)
	case k.Threads < 1 || k.Threads > MaxKDFThreads:
		return fmt.Errorf("argon2id threads %d out of range 1..%d", k.Threads, MaxKDFThreads)
	case k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > MaxKDFMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", k.MemoryKiB, 8*uint32(k.Threads), MaxKDFMemoryKiB)
	}
	return nil
}

// Keyring is a directory of encrypted identities. Its methods may be called
// concurrently as long as KDF is not being changed at the same time.
type Keyring struct {
	dir string

	// KDF is used when writing new key files (New, Import). Reading always
	// uses the parameters recorded in the file, within the Max* limits.
	KDF KDF
}

// Open returns the keyring in dir, creating the directory with mode 0700 if
// it does not exist. An existing directory's mode is left alone.
func Open(dir string) (*Keyring, error) {
	if dir == "" {
		return nil, errors.New("open keyring: empty directory name")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open keyring: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open keyring: %s is not a directory", dir)
	}
	return &Keyring{dir: dir, KDF: DefaultKDF()}, nil
}

// Dir returns the keyring's directory.
func (r *Keyring) Dir() string { return r.dir }

// Entry describes one stored key.
type Entry struct {
	Name string
	ID   string // actor ID, see [ident.Public.ID]
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name may name a key: it matches
// ^[a-z0-9][a-z0-9._-]{0,63}$ and does not have the shape of an actor ID
// (so that [Keyring.Resolve] is never ambiguous between a name and an ID).
func ValidName(name string) bool {
	return nameRE.MatchString(name) && !ident.ValidID(name)
}

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: must match ^[a-z0-9][a-z0-9._-]{0,63}$ and not be an actor ID", ErrBadName)
	}
	return nil
}

func (r *Keyring) path(name string) string { return filepath.Join(r.dir, name+fileExt) }

// New generates an identity, stores it as name under passphrase and returns
// it. It fails with [ErrExists] if name is taken.
func (r *Keyring) New(name, passphrase string) (ident.Private, error) {
	if err := checkName(name); err != nil {
		return ident.Private{}, fmt.Errorf("new key %q: %w", name, err)
	}
	if _, err := os.Lstat(r.path(name)); err == nil {
		return ident.Private{}, fmt.Errorf("new key %q: %w", name, ErrExists)
	}
	k, err := ident.Generate()
	if err != nil {
		return ident.Private{}, fmt.Errorf("new key %q: generate: %w", name, err)
	}
	if err := r.store(name, k, passphrase); err != nil {
		return ident.Private{}, fmt.Errorf("new key %q: %w", name, err)
	}
	return k, nil
}

// Import stores an existing identity as name under passphrase. It fails with
// [ErrExists] if name is taken.
func (r *Keyring) Import(name string, k ident.Private, passphrase string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("import key %q: %w", name, err)
	}
	if err := r.store(name, k, passphrase); err != nil {
		return fmt.Errorf("import key %q: %w", name, err)
	}
	return nil
}

// Load reads and decrypts the identity stored as name. A wrong passphrase,
// or a file altered anywhere the format cannot check structurally, gives
// [ErrWrongPassphrase]; a structurally bad file gives [ErrMalformed].
func (r *Keyring) Load(name, passphrase string) (ident.Private, error) {
	k, err := r.load(name, passphrase)
	if err != nil {
		return ident.Private{}, fmt.Errorf("load key %q: %w", name, err)
	}
	return k, nil
}

// Public returns the public key and actor ID stored as name, without the
// passphrase. It checks that the public key parses and that the ID is the
// one it derives, and that the rest of the file is well-formed; it cannot
// check the ciphertext.
func (r *Keyring) Public(name string) (ident.Public, string, error) {
	f, pub, err := r.read(name)
	if err != nil {
		return ident.Public{}, "", fmt.Errorf("public key %q: %w", name, err)
	}
	return pub, f.ID, nil
}

// List returns every key in the keyring, sorted by name. Files whose names
// are not NAME.key for a valid NAME are ignored. If some key files cannot be
// read, List returns the entries it could read together with a non-nil error
// describing the others.
func (r *Keyring) List() ([]Entry, error) {
	des, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	var (
		out  []Entry
		errs []error
	)
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), fileExt)
		if !ok || !ValidName(name) {
			continue
		}
		f, _, err := r.read(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("list keys: key %q: %w", name, err))
			continue
		}
		out = append(out, Entry{Name: name, ID: f.ID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

// Resolve returns the name of the key called nameOrID, or of the key whose
// actor ID is nameOrID. It fails with [ErrNotFound] if there is none, and
// with an error naming both if two stored keys have that ID.
func (r *Keyring) Resolve(nameOrID string) (string, error) {
	if ValidName(nameOrID) {
		if _, _, err := r.read(nameOrID); err != nil {
			return "", fmt.Errorf("resolve %q: %w", nameOrID, err)
		}
		return nameOrID, nil
	}
	if !ident.ValidID(nameOrID) {
		return "", fmt.Errorf("resolve %q: %w: neither a key name nor an actor ID", nameOrID, ErrNotFound)
	}
	entries, listErr := r.List()
	found := ""
	for _, e := range entries {
		if e.ID != nameOrID {
			continue
		}
		if found != "" {
			return "", fmt.Errorf("resolve %q: ambiguous: keys %q and %q have this ID", nameOrID, found, e.Name)
		}
		found = e.Name
	}
	if found == "" {
		if listErr != nil {
			return "", fmt.Errorf("resolve %q: %w (and some key files could not be read: %w)", nameOrID, ErrNotFound, listErr)
		}
		return "", fmt.Errorf("resolve %q: %w", nameOrID, ErrNotFound)
	}
	return found, nil
}

// keyFile is the on-disk JSON. []byte fields are standard padded base64.
type keyFile struct {
	Version    int     `json:"version"`
	Name       string  `json:"name"`
	ID         string  `json:"id"`
	Public     string  `json:"public"`
	KDF        kdfJSON `json:"kdf"`
	AEAD       string  `json:"aead"`
	Nonce      []byte  `json:"nonce"`
	Ciphertext []byte  `json:"ciphertext"`
}

type kdfJSON struct {
	Alg       string `json:"alg"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

func (j kdfJSON) params() KDF { return KDF{Time: j.Time, MemoryKiB: j.MemoryKiB, Threads: j.Threads} }

// additionalData binds everything in the file except the nonce and the
// ciphertext themselves.
func (f *keyFile) additionalData() []byte {
	var b []byte
	b = append(b, adLabel...)
	b = binary.BigEndian.AppendUint32(b, uint32(f.Version))
	for _, s := range []string{f.Name, f.ID, f.Public, f.KDF.Alg, f.AEAD} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint32(b, f.KDF.Time)
	b = binary.BigEndian.AppendUint32(b, f.KDF.MemoryKiB)
	b = append(b, f.KDF.Threads)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.KDF.Salt)))
	b = append(b, f.KDF.Salt...)
	return b
}

// deriveKey runs Argon2id. Callers must have checked the parameters.
func deriveKey(passphrase string, salt []byte, p KDF) []byte {
	return argon2.IDKey([]byte(passphrase), salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// encodeSeeds is the plaintext: u16 len || sign seed || u16 len || box seed.
func encodeSeeds(sign, box []byte) ([]byte, error) {
	if len(sign) > maxSeed || len(box) > maxSeed {
		return nil, errors.New("private seed too large")
	}
	b := make([]byte, 0, 4+len(sign)+len(box))
	b = binary.BigEndian.AppendUint16(b, uint16(len(sign)))
	b = append(b, sign...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(box)))
	b = append(b, box...)
	return b, nil
}

func decodeSeeds(b []byte) (sign, box []byte, err error) {
	next := func() ([]byte, bool) {
		if len(b) < 2 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if n > maxSeed || len(b)-2 < n {
			return nil, false
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		return v, true
	}
	sign, ok1 := next()
	box, ok2 := next()
	if !ok1 || !ok2 || len(b) != 0 {
		return nil, nil, fmt.Errorf("%w: bad plaintext layout", ErrMalformed)
	}
	return sign, box, nil
}

func (r *Keyring) store(name string, k ident.Private, passphrase string) error {
	if passphrase == "" {
		return errors.New("empty passphrase")
	}
	if k.Sign == nil || k.Box == nil {
		return errors.New("incomplete identity")
	}
	if err := r.KDF.check(); err != nil {
		return fmt.Errorf("keyring KDF parameters: %w", err)
	}
	sign, box, err := k.Seeds()
	if err != nil {
		return err
	}
	pt, err := encodeSeeds(sign, box)
	if err != nil {
		return err
	}
	defer clear(pt)

	pub := k.Public()
	f := keyFile{
		Version: fileVersion,
		Name:    name,
		ID:      pub.ID(),
		Public:  pub.String(),
		KDF: kdfJSON{
			Alg:       kdfAlg,
			Time:      r.KDF.Time,
			MemoryKiB: r.KDF.MemoryKiB,
			Threads:   r.KDF.Threads,
			Salt:      make([]byte, saltSize),
		},
		AEAD:  aeadAlg,
		Nonce: make([]byte, chacha20poly1305.NonceSizeX),
	}
	rand.Read(f.KDF.Salt)
	rand.Read(f.Nonce)

	key := deriveKey(passphrase, f.KDF.Salt, r.KDF)
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return err
	}
	f.Ciphertext = aead.Seal(nil, f.Nonce, pt, f.additionalData())

	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return r.writeNew(name, data)
}

// writeNew writes data to DIR/NAME.key atomically, failing with ErrExists if
// that file exists: temporary file in the same directory, fsync, then a hard
// link (which never replaces an existing file) or, where the file system
// cannot link, a rename after an existence check; then fsync of the
// directory.
func (r *Keyring) writeNew(name string, data []byte) (err error) {
	final := r.path(name)
	tmp, err := os.CreateTemp(r.dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after link, or after failure; harmless after rename
	}()
	if err := tmp.Chmod(fileMode); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}

	if lerr := os.Link(tmpName, final); lerr != nil {
		if errors.Is(lerr, fs.ErrExist) {
			return ErrExists
		}
		// No hard links here (some network or FUSE file systems): fall
		// back to rename. The check and the rename race; links are the
		// normal path.
		if _, serr := os.Lstat(final); serr == nil {
			return ErrExists
		}
		if err := os.Rename(tmpName, final); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if err := syncDir(r.dir); err != nil {
		return fmt.Errorf("write: sync directory: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for fsync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// read reads and structurally validates the key file for name.
func (r *Keyring) read(name string) (*keyFile, ident.Public, error) {
	if err := checkName(name); err != nil {
		return nil, ident.Public{}, err
	}
	data, err := readFile(r.path(name))
	if err != nil {
		return nil, ident.Public{}, err
	}
	return parse(name, data)
}

func readFile(path string) ([]byte, error) {
	// Stat first so that a FIFO or device planted in the directory is
	// refused before open can block on it.
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", ErrMalformed)
	}
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, maxFile)
	}
	return data, nil
}

// parse validates everything in a key file that can be checked without the
// passphrase.
func parse(name string, data []byte) (*keyFile, ident.Public, error) {
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, ident.Public{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ident.Public{}, fmt.Errorf("%w: trailing data after JSON", ErrMalformed)
	}
	bad := func(format string, args ...any) (*keyFile, ident.Public, error) {
		return nil, ident.Public{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	switch {
	case f.Version != fileVersion:
		return bad("unknown version %d", f.Version)
	case f.Name != name:
		return bad("file for key %q records name %q", name, f.Name)
	case f.KDF.Alg != kdfAlg:
		return bad("unknown KDF %q", f.KDF.Alg)
	case f.AEAD != aeadAlg:
		return bad("unknown AEAD %q", f.AEAD)
	case len(f.KDF.Salt) < minSalt || len(f.KDF.Salt) > maxSalt:
		return bad("salt is %d bytes, want %d..%d", len(f.KDF.Salt), minSalt, maxSalt)
	case len(f.Nonce) != chacha20poly1305.NonceSizeX:
		return bad("nonce is %d bytes, want %d", len(f.Nonce), chacha20poly1305.NonceSizeX)
	case len(f.Ciphertext) < minCipher || len(f.Ciphertext) > maxCipher:
		return bad("ciphertext is %d bytes", len(f.Ciphertext))
	}
	if err := f.KDF.params().check(); err != nil {
		return bad("%v", err)
	}
	pub, err := ident.ParsePublic(f.Public)
	if err != nil {
		return bad("public key: %v", err)
	}
	if id := pub.ID(); f.ID != id {
		return bad("id %q does not match public key (its ID is %s)", f.ID, id)
	}
	return &f, pub, nil
}

func (r *Keyring) load(name, passphrase string) (ident.Private, error) {
	f, pub, err := r.read(name)
	if err != nil {
		return ident.Private{}, err
	}
	key := deriveKey(passphrase, f.KDF.Salt, f.KDF.params())
	defer clear(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return ident.Private{}, err
	}
	pt, err := aead.Open(nil, f.Nonce, f.Ciphertext, f.additionalData())
	if err != nil {
		return ident.Private{}, ErrWrongPassphrase
	}
	defer clear(pt)
	sign, box, err := decodeSeeds(pt)
	if err != nil {
		return ident.Private{}, err
	}
	k, err := ident.FromSeeds(sign, box)
	if err != nil {
		// ident's error is not wrapped: errors from here stay free of
		// anything derived from the sealed bytes.
		return ident.Private{}, fmt.Errorf("%w: sealed private key does not decode", ErrMalformed)
	}
	got := k.Public()
	if !bytes.Equal(got.Sign, pub.Sign) || !bytes.Equal(got.Box, pub.Box) {
		return ident.Private{}, fmt.Errorf("%w: sealed private key does not match the public key", ErrMalformed)
	}
	return k, nil
}

package keyring

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medchain/medchain/ident"
)

// cheapKDF keeps tests fast. Never use it for real keys.
var cheapKDF = KDF{Time: 1, MemoryKiB: 64, Threads: 1}

func newRing(t testing.TB) *Keyring {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ring")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.KDF != DefaultKDF() {
		t.Fatalf("Open set KDF %+v, want defaults %+v", r.KDF, DefaultKDF())
	}
	r.KDF = cheapKDF
	return r
}

func sameKey(t *testing.T, got, want ident.Private) {
	t.Helper()
	gs, gb, err := got.Seeds()
	if err != nil {
		t.Fatal(err)
	}
	ws, wb, err := want.Seeds()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gs, ws) || !bytes.Equal(gb, wb) {
		t.Fatal("loaded key differs from stored key")
	}
	if got.Public().String() != want.Public().String() || got.ID() != want.ID() {
		t.Fatal("loaded public key differs")
	}
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	r := newRing(t)
	fi, err := os.Stat(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("keyring dir mode %o, want 700", got)
	}
	// Opening again is fine.
	if _, err := Open(r.Dir()); err != nil {
		t.Fatal(err)
	}
	// A file is not a keyring.
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := Open(f); err == nil {
		t.Error("Open on a regular file succeeded")
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name, pass string
		imported   bool
	}{
		{"alice", "correct horse battery staple", false},
		{"bob.clinic-1", "p", false},
		{"0", "ünïcødé pässphrase ✓", false},
		{"imported_key", strings.Repeat("long", 256), true},
		{strings.Repeat("z", 64), "x y z", true},
	}
	r := newRing(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want ident.Private
			var err error
			if tc.imported {
				if want, err = ident.Generate(); err != nil {
					t.Fatal(err)
				}
				if err := r.Import(tc.name, want, tc.pass); err != nil {
					t.Fatal(err)
				}
			} else if want, err = r.New(tc.name, tc.pass); err != nil {
				t.Fatal(err)
			}
			got, err := r.Load(tc.name, tc.pass)
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, got, want)

			pub, id, err := r.Public(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if pub.String() != want.Public().String() || id != want.ID() {
				t.Error("Public returned the wrong key")
			}
		})
	}
}

func TestExistsAndNotFound(t *testing.T) {
	r := newRing(t)
	k, err := r.New("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.New("alice", "other"); !errors.Is(err, ErrExists) {
		t.Errorf("New over existing: %v, want ErrExists", err)
	}
	if err := r.Import("alice", k, "other"); !errors.Is(err, ErrExists) {
		t.Errorf("Import over existing: %v, want ErrExists", err)
	}
	// The original is untouched.
	if _, err := r.Load("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("nobody", "pw"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load missing: %v, want ErrNotFound", err)
	}
	if _, _, err := r.Public("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Public missing: %v, want ErrNotFound", err)
	}
}

func TestWriteRejects(t *testing.T) {
	r := newRing(t)
	if _, err := r.New("alice", ""); err == nil {
		t.Error("New with empty passphrase succeeded")
	}
	if err := r.Import("alice", ident.Private{}, "pw"); err == nil {
		t.Error("Import of zero identity succeeded")
	}
	for _, bad := range []KDF{
		{Time: 0, MemoryKiB: 64, Threads: 1},
		{Time: MaxKDFTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 1, MemoryKiB: MaxKDFMemoryKiB + 1, Threads: 1},
		{Time: 1, MemoryKiB: 8, Threads: 2},
		{Time: 1, MemoryKiB: 64, Threads: 0},
	} {
		r.KDF = bad
		if _, err := r.New("alice", "pw"); err == nil {
			t.Errorf("New with KDF %+v succeeded", bad)
		}
	}
	if es, err := r.List(); err != nil || len(es) != 0 {
		t.Errorf("failed writes left keys behind: %v %v", es, err)
	}
	assertNoStrays(t, r)
}

func assertNoStrays(t *testing.T, r *Keyring) {
	t.Helper()
	des, err := os.ReadDir(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".key") {
			t.Errorf("stray file %q left in keyring", de.Name())
		}
	}
}

func TestWrongPassphrase(t *testing.T) {
	r := newRing(t)
	const right, wrong = "right-passphrase-123", "wrong-passphrase-456"
	if _, err := r.New("alice", right); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{wrong, "", right + " ", strings.ToUpper(right)} {
		_, err := r.Load("alice", p)
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("Load with %q: %v, want ErrWrongPassphrase", p, err)
		}
		if msg := err.Error(); msg != `load key "alice": wrong passphrase` {
			t.Errorf("error message %q says more than it should", msg)
		}
	}
}

func TestFileModeAndContent(t *testing.T) {
	r := newRing(t)
	k, err := r.New("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.Dir(), "alice.key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode %o, want 600", got)
	}
	assertNoStrays(t, r)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sign, box, _ := k.Seeds()
	for _, secret := range [][]byte{sign, box, k.Sign} {
		for _, enc := range [][]byte{
			secret,
			[]byte(base64.StdEncoding.EncodeToString(secret)),
			[]byte(base64.RawURLEncoding.EncodeToString(secret)),
		} {
			if bytes.Contains(data, enc) {
				t.Fatal("key file contains private key material in the clear")
			}
		}
	}

	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	kdf := m["kdf"].(map[string]any)
	if m["version"] != 1.0 || m["name"] != "alice" || m["id"] != k.ID() ||
		m["public"] != k.Public().String() || m["aead"] != "xchacha20poly1305" ||
		kdf["alg"] != "argon2id" || kdf["time"] != 1.0 || kdf["memory_kib"] != 64.0 || kdf["threads"] != 1.0 {
		t.Errorf("unexpected file layout:\n%s", data)
	}
}

func TestNames(t *testing.T) {
	valid := []string{"a", "0", "alice", "bob.smith", "x-1_2.3", "a..b", "x.key", strings.Repeat("a", 64),
		"mc1" + strings.Repeat("0", 39), // one short of an ID
	}
	invalid := []string{"", "A", "Alice", ".hidden", "-x", "_x", "..", ".", "../x", "a/b", "a\\b", "/abs",
		"a b", "a\x00b", "é", strings.Repeat("a", 65), "a\n",
		"mc1" + strings.Repeat("0", 40), // has the shape of an actor ID
	}
	r := newRing(t)
	for _, n := range valid {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range invalid {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
		if _, err := r.New(n, "pw"); !errors.Is(err, ErrBadName) {
			t.Errorf("New(%q): %v, want ErrBadName", n, err)
		}
		if err := r.Import(n, ident.Private{}, "pw"); !errors.Is(err, ErrBadName) {
			t.Errorf("Import(%q): %v, want ErrBadName", n, err)
		}
		if _, err := r.Load(n, "pw"); !errors.Is(err, ErrBadName) {
			t.Errorf("Load(%q): %v, want ErrBadName", n, err)
		}
		if _, _, err := r.Public(n); !errors.Is(err, ErrBadName) {
			t.Errorf("Public(%q): %v, want ErrBadName", n, err)
		}
	}
	// Nothing escaped the keyring directory.
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.Dir()), "x.key")); err == nil {
		t.Error("path traversal wrote outside the keyring")
	}
}

func TestListAndResolve(t *testing.T) {
	r := newRing(t)
	ids := map[string]string{}
	for _, n := range []string{"carol", "alice", "bob", "0zero", "alice.2"} {
		k, err := r.New(n, "pw-"+n)
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = k.ID()
	}
	// Junk that List must skip.
	os.WriteFile(filepath.Join(r.Dir(), "README"), []byte("hi"), 0o600)
	os.WriteFile(filepath.Join(r.Dir(), ".tmp-x-123"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(r.Dir(), "UPPER.key"), []byte("{"), 0o600)
	os.Mkdir(filepath.Join(r.Dir(), "sub"), 0o700)

	es, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
		if e.ID != ids[e.Name] {
			t.Errorf("List: %s has ID %s, want %s", e.Name, e.ID, ids[e.Name])
		}
	}
	if got, want := strings.Join(names, ","), "0zero,alice,alice.2,bob,carol"; got != want {
		t.Errorf("List order %s, want %s", got, want)
	}

	resolve := []struct{ in, want string }{
		{"alice", "alice"},
		{ids["alice"], "alice"},
		{ids["carol"], "carol"},
		{"alice.2", "alice.2"},
		{ids["alice.2"], "alice.2"},
	}
	for _, tc := range resolve {
		got, err := r.Resolve(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"dave", "mc1" + strings.Repeat("a", 40), "", "../alice", "MC1"} {
		if _, err := r.Resolve(in); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadName) {
			t.Errorf("Resolve(%q): %v, want ErrNotFound", in, err)
		}
	}

	// A corrupt file: List still returns the rest, with an error.
	os.WriteFile(filepath.Join(r.Dir(), "broken.key"), []byte("{"), 0o600)
	es, err = r.List()
	if !errors.Is(err, ErrMalformed) || len(es) != 5 {
		t.Errorf("List with a corrupt file: %d entries, %v", len(es), err)
	}
	if got, err := r.Resolve(ids["bob"]); err != nil || got != "bob" {
		t.Errorf("Resolve with a corrupt file present: %q, %v", got, err)
	}

	// The same identity under two names makes its ID ambiguous.
	k, err := r.Load("bob", "pw-bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Import("bob2", k, "pw"); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Resolve(ids["bob"]); err == nil {
		t.Errorf("Resolve of a shared ID = %q, want ambiguity error", got)
	}
}

// mutate returns the key file with one JSON field replaced.
func mutate(t testing.TB, data []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func flipB64(s any) string {
	b, _ := base64.StdEncoding.DecodeString(s.(string))
	b[len(b)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

func TestTamper(t *testing.T) {
	r := newRing(t)
	if _, err := r.New("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	other, err := r.New("bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(r.Dir(), "alice.key"))
	if err != nil {
		t.Fatal(err)
	}
	bobFile, _ := os.ReadFile(filepath.Join(r.Dir(), "bob.key"))
	kdfSet := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m["kdf"].(map[string]any)[k] = v }
	}
	set := func(k string, v any) func(map[string]any) {
		return func(m map[string]any) { m[k] = v }
	}
	del := func(k string) func(map[string]any) {
		return func(m map[string]any) { delete(m, k) }
	}

	const (
		malformed = iota // structurally bad: Public and Load both say ErrMalformed
		auth             // only decryption notices: Public succeeds, Load says ErrWrongPassphrase
	)
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"empty", nil, malformed},
		{"not json", []byte("hello"), malformed},
		{"json null", []byte("null"), malformed},
		{"json array", []byte("[]"), malformed},
		{"truncated", orig[:len(orig)/2], malformed},
		{"trailing data", append(append([]byte{}, orig...), "{}"...), malformed},
		{"huge", bytes.Repeat([]byte(" "), maxFile+1), malformed},
		{"unknown field", mutate(t, orig, set("extra", 1)), malformed},
		{"version 0", mutate(t, orig, set("version", 0)), malformed},
		{"version 2", mutate(t, orig, set("version", 2)), malformed},
		{"version string", mutate(t, orig, set("version", "1")), malformed},
		{"version float", mutate(t, orig, set("version", 1.5)), malformed},
		{"no version", mutate(t, orig, del("version")), malformed},
		{"name changed", mutate(t, orig, set("name", "bob")), malformed},
		{"name number", mutate(t, orig, set("name", 7)), malformed},
		{"id other", mutate(t, orig, set("id", other.ID())), malformed},
		{"id garbage", mutate(t, orig, set("id", "x")), malformed},
		{"public other", mutate(t, orig, set("public", other.Public().String())), malformed},
		{"public truncated", mutate(t, orig, func(m map[string]any) { m["public"] = m["public"].(string)[:100] }), malformed},
		{"public garbage", mutate(t, orig, set("public", "mcpub1!!!")), malformed},
		{"public and id other", mutate(t, orig, func(m map[string]any) {
			m["public"], m["id"] = other.Public().String(), other.ID()
		}), auth},
		{"kdf missing", mutate(t, orig, del("kdf")), malformed},
		{"kdf alg", mutate(t, orig, kdfSet("alg", "scrypt")), malformed},
		{"kdf time 0", mutate(t, orig, kdfSet("time", 0)), malformed},
		{"kdf time 11", mutate(t, orig, kdfSet("time", 11)), malformed},
		{"kdf time huge", mutate(t, orig, kdfSet("time", 1<<32-1)), malformed},
		{"kdf time overflow", mutate(t, orig, kdfSet("time", 1<<40)), malformed},
		{"kdf time negative", mutate(t, orig, kdfSet("time", -1)), malformed},
		{"kdf memory huge", mutate(t, orig, kdfSet("memory_kib", 1<<32-1)), malformed},
		{"kdf memory over cap", mutate(t, orig, kdfSet("memory_kib", MaxKDFMemoryKiB+1)), malformed},
		{"kdf memory tiny", mutate(t, orig, kdfSet("memory_kib", 1)), malformed},
		{"kdf threads 0", mutate(t, orig, kdfSet("threads", 0)), malformed},
		{"kdf threads 255", mutate(t, orig, kdfSet("threads", 255)), malformed},
		{"kdf threads 256", mutate(t, orig, kdfSet("threads", 256)), malformed},
		{"kdf salt short", mutate(t, orig, kdfSet("salt", "AAAA")), malformed},
		{"kdf salt not b64", mutate(t, orig, kdfSet("salt", "!!!")), malformed},
		{"kdf time changed", mutate(t, orig, kdfSet("time", 2)), auth},
		{"kdf memory changed", mutate(t, orig, kdfSet("memory_kib", 128)), auth},
		{"kdf threads changed", mutate(t, orig, kdfSet("threads", 2)), auth},
		{"kdf salt flipped", mutate(t, orig, func(m map[string]any) {
			k := m["kdf"].(map[string]any)
			k["salt"] = flipB64(k["salt"])
		}), auth},
		{"aead", mutate(t, orig, set("aead", "aes-gcm")), malformed},
		{"nonce short", mutate(t, orig, set("nonce", "AAAA")), malformed},
		{"nonce null", mutate(t, orig, set("nonce", nil)), malformed},
		{"nonce flipped", mutate(t, orig, func(m map[string]any) { m["nonce"] = flipB64(m["nonce"]) }), auth},
		{"ciphertext flipped", mutate(t, orig, func(m map[string]any) { m["ciphertext"] = flipB64(m["ciphertext"]) }), auth},
		{"ciphertext empty", mutate(t, orig, set("ciphertext", "")), malformed},
		{"ciphertext short", mutate(t, orig, set("ciphertext", base64.StdEncoding.EncodeToString(make([]byte, 19)))), malformed},
		{"ciphertext long", mutate(t, orig, set("ciphertext", base64.StdEncoding.EncodeToString(make([]byte, maxCipher+1)))), malformed},
		{"ciphertext zeros", mutate(t, orig, set("ciphertext", base64.StdEncoding.EncodeToString(make([]byte, 100)))), auth},
		{"ciphertext from bob", mutate(t, orig, func(m map[string]any) {
			b := mutate(t, bobFile, func(map[string]any) {})
			var bm map[string]any
			json.Unmarshal(b, &bm)
			m["ciphertext"], m["nonce"], m["kdf"] = bm["ciphertext"], bm["nonce"], bm["kdf"]
		}), auth},
		{"bob's file renamed", bobFile, malformed},
		{"bob's file renamed and name fixed", mutate(t, bobFile, set("name", "alice")), auth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(r.Dir(), "alice.key"), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, perr := r.Public("alice")
			_, lerr := r.Load("alice", "pw")
			switch tc.want {
			case malformed:
				if !errors.Is(perr, ErrMalformed) {
					t.Errorf("Public: %v, want ErrMalformed", perr)
				}
				if !errors.Is(lerr, ErrMalformed) {
					t.Errorf("Load: %v, want ErrMalformed", lerr)
				}
			case auth:
				if perr != nil {
					t.Errorf("Public: %v, want success", perr)
				}
				if !errors.Is(lerr, ErrWrongPassphrase) {
					t.Errorf("Load: %v, want ErrWrongPassphrase", lerr)
				}
			}
		})
	}

	// And the untouched file still loads.
	os.WriteFile(filepath.Join(r.Dir(), "alice.key"), orig, 0o600)
	if _, err := r.Load("alice", "pw"); err != nil {
		t.Fatal(err)
	}
}

func TestNotRegularFile(t *testing.T) {
	r := newRing(t)
	if err := os.Mkdir(filepath.Join(r.Dir(), "dir.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("dir", "pw"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Load of a directory: %v, want ErrMalformed", err)
	}
}

// TestGolden keeps files written by earlier versions loadable. The file was
// written with cheapKDF, passphrase "golden passphrase".
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.key")
	if os.Getenv("KEYRING_WRITE_GOLDEN") != "" {
		r := newRing(t)
		if _, err := r.New("golden", "golden passphrase"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(r.Dir(), "golden.key"))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := newRing(t)
	if err := os.WriteFile(filepath.Join(r.Dir(), "golden.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := r.Load("golden", "golden passphrase")
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := r.Public("golden")
	if err != nil || id != k.ID() {
		t.Fatalf("Public: %q, %v; want %q", id, err, k.ID())
	}
}

func TestPassphraseEnvAndNonTerminal(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	var out bytes.Buffer
	got, err := passphrase("Passphrase: ", true, "from-env", pr, &out)
	if err != nil || got != "from-env" || out.Len() != 0 {
		t.Errorf("env: %q, %v, printed %q", got, err, out.String())
	}
	pw.WriteString("typed\n")
	_, err = passphrase("Passphrase: ", false, "", pr, &out)
	if err == nil || !strings.Contains(err.Error(), PassphraseEnv) {
		t.Errorf("non-terminal: %v, want an error naming %s", err, PassphraseEnv)
	}
	if strings.Contains(out.String(), "typed") || (err != nil && strings.Contains(err.Error(), "typed")) {
		t.Error("passphrase leaked")
	}

	t.Setenv(PassphraseEnv, "exported")
	if got, err := Passphrase("x", false); err != nil || got != "exported" {
		t.Errorf("Passphrase with env: %q, %v", got, err)
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"secret\n", "secret", true},
		{"secret\r\n", "secret", true},
		{"secret\nnext line\n", "secret", true},
		{"no newline", "no newline", true},
		{"\n", "", true},
		{"", "", false},
		{strings.Repeat("a", maxPassLen+1) + "\n", "", false},
	}
	for _, tc := range tests {
		got, err := readLine(strings.NewReader(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("readLine(%.20q) = %.20q, %v", tc.in, got, err)
		}
	}
}

func TestDefaultKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Argon2id with 64 MiB twice")
	}
	r := newRing(t)
	r.KDF = DefaultKDF()
	want, err := r.New("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Load("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	sameKey(t, got, want)
}

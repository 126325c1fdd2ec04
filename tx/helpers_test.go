package tx

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medchain/medchain/ident"
)

const testChain = "medchain-test"

// testKey builds a fixed identity from a name, so vectors are reproducible:
// Ed25519 signing is deterministic, so the same key and transaction always
// give the same bytes.
func testKey(t testing.TB, name string) ident.Private {
	t.Helper()
	sign := sha256.Sum256([]byte("tx-test/sign/" + name))
	box := sha256.Sum256([]byte("tx-test/box/" + name))
	k, err := ident.FromSeeds(sign[:], box[:])
	if err != nil {
		t.Fatalf("FromSeeds(%s): %v", name, err)
	}
	return k
}

// signed builds a transaction and signs it with key, whose ID is the signer.
func signed(t testing.TB, key ident.Private, typ Type, nonce uint64, body any) *Tx {
	t.Helper()
	x, err := New(typ, key.ID(), nonce, body)
	if err != nil {
		t.Fatalf("New(%s): %v", typ, err)
	}
	if err := x.Sign(testChain, key.Sign); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return x
}

// encode returns the canonical bytes of x.
func encode(t testing.TB, x *Tx) []byte {
	t.Helper()
	b, err := x.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// fields spells a transaction object by hand: pairs of name and raw JSON
// value, in the order given. It lets a vector break one rule at a time.
type fields [][2]string

func (f fields) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range f {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(kv[0]) + ":" + kv[1])
	}
	b.WriteByte('}')
	return b.String()
}

// with returns a copy of f with field name's value replaced by v.
func (f fields) with(name, v string) fields {
	out := append(fields(nil), f...)
	for i := range out {
		if out[i][0] == name {
			out[i][1] = v
		}
	}
	return out
}

// without returns a copy of f without field name.
func (f fields) without(name string) fields {
	var out fields
	for _, kv := range f {
		if kv[0] != name {
			out = append(out, kv)
		}
	}
	return out
}

// fieldsOf splits a signed transaction into its canonical fields.
func fieldsOf(t testing.TB, x *Tx) fields {
	t.Helper()
	q := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return fields{
		{"type", q(x.Type)},
		{"signer", q(x.Signer)},
		{"nonce", strconv.FormatUint(x.Nonce, 10)},
		{"body", string(x.Body)},
		{"sig", q(base64.StdEncoding.EncodeToString(x.Sig))},
	}
}

// vectorPath names the golden file of a Decode case.
func vectorPath(name string) string { return filepath.Join("testdata", "decode", name+".json") }

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(vectorPath(name))
	if err != nil {
		t.Fatalf("read vector (regenerate with go test -run TestDecodeVectors -update): %v", err)
	}
	return b
}

// orgAddBody is the body of the base vector. Its name holds an ampersand,
// which canonical JSON spells \u0026.
func orgAddBody(t testing.TB) *OrgAdd {
	return &OrgAdd{Public: testKey(t, "org").Public().String(), Name: "Mercy & Co"}
}

// sized returns an org.add signed by admin whose encoding is exactly n bytes
// long, padding the organization name.
func sized(t testing.TB, n int) []byte {
	t.Helper()
	admin := testKey(t, "admin")
	body := orgAddBody(t)
	body.Name = ""
	base := len(encode(t, signed(t, admin, TypeOrgAdd, 7, body)))
	if n < base {
		t.Fatalf("cannot build a %d-byte transaction; the smallest is %d", n, base)
	}
	body.Name = string(bytes.Repeat([]byte{'a'}, n-base))
	b := encode(t, signed(t, admin, TypeOrgAdd, 7, body))
	if len(b) != n {
		t.Fatalf("sized(%d) gave %d bytes", n, len(b))
	}
	return b
}

package seal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/medchain/medchain/ident"
)

// testIdentity builds a fixed identity from a name, so tests and golden
// vectors are reproducible.
func testIdentity(t testing.TB, name string) ident.Private {
	t.Helper()
	sign := sha256.Sum256([]byte("seal-test/sign/" + name))
	box := sha256.Sum256([]byte("seal-test/box/" + name))
	k, err := ident.FromSeeds(sign[:], box[:])
	if err != nil {
		t.Fatalf("FromSeeds(%s): %v", name, err)
	}
	return k
}

// isSealErr reports whether err is one of the package's sentinels.
func isSealErr(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrMalformed)
}

// hexBytes is a []byte that JSON encodes as hex.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*h = v
	return err
}

const goldenPath = "testdata/golden.json"

type golden struct {
	Comment   string            `json:"comment"`
	Patient   string            `json:"patient"` // testIdentity names
	Author    string            `json:"author"`
	Grantee   string            `json:"grantee"`
	EpochKeys []goldenEpochKey  `json:"epoch_keys"`
	Records   []goldenRecord    `json:"records"`
	Grants    []goldenGrant     `json:"grants"`
	Commits   []goldenCommitKAT `json:"commitments"`
}

type goldenEpochKey struct {
	Category     string   `json:"category"`
	Epoch        uint64   `json:"epoch"`
	PublicSHA256 hexBytes `json:"public_sha256"`
}

type goldenRecord struct {
	Name           string   `json:"name"`
	Category       string   `json:"category"`
	Epoch          uint64   `json:"epoch"`
	AAD            hexBytes `json:"aad"`
	Plaintext      hexBytes `json:"plaintext"`
	DEK            hexBytes `json:"dek"`
	Ciphertext     hexBytes `json:"ciphertext"`
	Commitment     hexBytes `json:"commitment"`
	CiphertextHash hexBytes `json:"ciphertext_hash"`
	EpochEnvelope  hexBytes `json:"epoch_envelope"`
	SelfEnvelope   hexBytes `json:"self_envelope"`
}

type goldenGrant struct {
	Category string   `json:"category"`
	Epoch    uint64   `json:"epoch"`
	Ctx      hexBytes `json:"ctx"`
	Envelope hexBytes `json:"envelope"`
}

type goldenCommitKAT struct {
	DEK        hexBytes `json:"dek"`
	Plaintext  hexBytes `json:"plaintext"`
	Commitment hexBytes `json:"commitment"`
}

func loadGolden(t testing.TB) *golden {
	t.Helper()
	b, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("read golden vectors (regenerate with go test -run TestGolden -update): %v", err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("parse %s: %v", goldenPath, err)
	}
	return &g
}

// Package tx defines medchain transactions: their types, their one canonical
// encoding, and how they are signed and checked.
//
// A transaction is canonical JSON: the struct fields in declaration order, no
// insignificant whitespace, no unknown fields. [Decode] rejects every other
// spelling of the same content, so a transaction has exactly one encoding and
// one hash. The signature covers a domain label, the chain ID and the
// transaction without its signature, so it cannot be replayed on another chain
// or reinterpreted as another kind of signed message.
//
// tx knows nothing of the ledger's state: whether a signer exists, holds the
// right role or has used a nonce is decided by the application.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/medchain/medchain/ident"
)

// MaxSize bounds an encoded transaction. Record contents never travel in a
// transaction, so legitimate ones are far smaller.
const MaxSize = 64 << 10

// MaxBatchSize bounds a record batch, the one kind allowed to be larger.
const MaxBatchSize = 1 << 20

// Domain separates transaction signatures from every other medchain signature.
const Domain = "medchain/tx/v1"

// Sentinel errors that callers branch on.
var (
	ErrMalformed    = errors.New("malformed transaction")
	ErrTooLarge     = errors.New("transaction too large")
	ErrBadSignature = errors.New("bad signature")
)

// Type names a transaction kind.
type Type string

// Transaction kinds.
const (
	TypeOrgAdd     Type = "org.add"
	TypeMemberAdd  Type = "member.add"
	TypePatientAdd Type = "patient.add"
)

// Tx is a signed transaction. Body holds the canonical JSON of the body type
// that Type names.
type Tx struct {
	Type   Type            `json:"type"`
	Signer string          `json:"signer"`
	Nonce  uint64          `json:"nonce"`
	Body   json.RawMessage `json:"body"`
	Sig    []byte          `json:"sig,omitempty"`
}

// OrgAdd admits an organization. Signed by a network admin.
type OrgAdd struct {
	Public string `json:"public"`
	Name   string `json:"name"`
}

// MemberAdd admits a member into the signing organization.
type MemberAdd struct {
	Public string `json:"public"`
	Role   string `json:"role"`
}

// PatientAdd registers a patient. Signed by the patient's own key, which
// Public carries, since the ledger does not know it yet. Epochs publishes
// the first key epoch of every category.
type PatientAdd struct {
	Public string     `json:"public"`
	Epochs []EpochPub `json:"epochs"`
}

// newBody returns a pointer to a zero body of type t.
func newBody(t Type) (any, error) {
	switch t {
	case TypeOrgAdd:
		return new(OrgAdd), nil
	case TypeMemberAdd:
		return new(MemberAdd), nil
	case TypePatientAdd:
		return new(PatientAdd), nil
	case TypeRecordPut:
		return new(RecordPut), nil
	case TypeRecordBatch:
		return new(RecordBatch), nil
	case TypeConsentGrant:
		return new(ConsentGrant), nil
	case TypeConsentRevoke:
		return new(ConsentRevoke), nil
	case TypeAccess:
		return new(Access), nil
	case TypeAccessBatch:
		return new(AccessBatch), nil
	case TypeAccessMany:
		return new(AccessMany), nil
	}
	return nil, fmt.Errorf("%w: unknown type %q", ErrMalformed, t)
}

func (t Type) maxSize() int {
	if t == TypeRecordBatch || t == TypeAccessBatch {
		return MaxBatchSize
	}
	return MaxSize
}

// New builds an unsigned transaction carrying body.
func New(t Type, signer string, nonce uint64, body any) (*Tx, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s body: %w", t, err)
	}
	return &Tx{Type: t, Signer: signer, Nonce: nonce, Body: b}, nil
}

// SignBytes returns what the signature covers.
func (t *Tx) SignBytes(chainID string) ([]byte, error) {
	return t.appendSignBytes(nil, chainID)
}

// appendSignBytes appends what the signature covers to b.
func (t *Tx) appendSignBytes(b []byte, chainID string) ([]byte, error) {
	b = slices.Grow(b, len(Domain)+len(chainID)+2+t.unsignedSize())
	b = append(append(append(append(b, Domain...), 0), chainID...), 0)
	b, err := t.appendUnsigned(b)
	if err != nil {
		return nil, fmt.Errorf("encode transaction: %w", err)
	}
	return b, nil
}

// messages holds the buffers Sign and Verify build signed messages in: a
// batch's is tens of kilobytes, and a fresh one each time costs the page
// faults of memory the runtime had handed back.
var messages = sync.Pool{New: func() any { return new([]byte) }}

// Sign sets the signature with key.
func (t *Tx) Sign(chainID string, key ed25519.PrivateKey) error {
	buf := messages.Get().(*[]byte)
	defer messages.Put(buf)
	msg, err := t.appendSignBytes((*buf)[:0], chainID)
	if err != nil {
		return err
	}
	*buf = msg
	t.Sig = ed25519.Sign(key, msg)
	return nil
}

// Verify checks the signature against pub, and that pub belongs to Signer.
func (t *Tx) Verify(chainID string, pub ed25519.PublicKey) error {
	if ident.IDOf(pub) != t.Signer {
		return fmt.Errorf("%w: key does not belong to signer %s", ErrBadSignature, t.Signer)
	}
	buf := messages.Get().(*[]byte)
	defer messages.Put(buf)
	msg, err := t.appendSignBytes((*buf)[:0], chainID)
	if err != nil {
		return err
	}
	*buf = msg
	if len(t.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, t.Sig) {
		return fmt.Errorf("%w: signature by %s does not verify", ErrBadSignature, t.Signer)
	}
	return nil
}

// Encode returns the canonical encoding.
func (t *Tx) Encode() ([]byte, error) {
	u, err := t.encodeUnsigned()
	if err != nil {
		return nil, err
	}
	return appendSig(u, t.Sig), nil
}

// Hash returns the transaction hash, as CometBFT computes it.
func Hash(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// Decode parses a canonical transaction and its body. It rejects anything
// oversized, any unknown field or type, a missing signature, and any encoding
// that is not the canonical one.
func Decode(raw []byte) (*Tx, any, error) {
	if len(raw) > MaxBatchSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxBatchSize)
	}
	if t, body, ok := decodeCanonical(raw); ok {
		if err := t.checkDecoded(len(raw)); err != nil {
			return nil, nil, err
		}
		return t, body, nil
	}
	return decodeStrict(raw)
}

// decodeStrict is Decode for any input: the reflective decoder, which
// says what is wrong.
func decodeStrict(raw []byte) (*Tx, any, error) {
	var t Tx
	if err := strictUnmarshal(raw, &t); err != nil {
		if len(raw) > MaxSize {
			return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxSize)
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := t.checkDecoded(len(raw)); err != nil {
		return nil, nil, err
	}
	body, err := newBody(t.Type)
	if err != nil {
		return nil, nil, err
	}
	if err := checkElements(t.Body); err != nil {
		return nil, nil, err
	}
	if err := strictUnmarshal(t.Body, body); err != nil {
		return nil, nil, fmt.Errorf("%w: %s body: %v", ErrMalformed, t.Type, err)
	}
	cb, err := json.Marshal(body)
	if err != nil || !bytes.Equal(cb, t.Body) {
		return nil, nil, fmt.Errorf("%w: %s body not in canonical encoding", ErrMalformed, t.Type)
	}
	unsigned, err := t.encodeUnsigned()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(appendSig(unsigned, t.Sig), raw) {
		return nil, nil, fmt.Errorf("%w: not in canonical encoding", ErrMalformed)
	}
	return &t, body, nil
}

// checkDecoded checks what the envelope's JSON cannot say: the size limit
// of its kind, the signer's form and the signature's length.
func (t *Tx) checkDecoded(size int) error {
	if limit := t.Type.maxSize(); size > limit {
		return fmt.Errorf("%w: %d bytes, limit %d for %s", ErrTooLarge, size, limit, t.Type)
	}
	if !ident.ValidID(t.Signer) {
		return fmt.Errorf("%w: signer %q is not an actor ID", ErrMalformed, t.Signer)
	}
	if len(t.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature missing or not %d bytes", ErrMalformed, ed25519.SignatureSize)
	}
	return nil
}

// encodeUnsigned returns the canonical encoding without the signature,
// assembled around the body so that a large body is copied once, not
// re-validated and re-compacted as json.Marshal would do with a RawMessage.
// Body must already be canonical JSON, as New and Decode guarantee.
func (t *Tx) encodeUnsigned() ([]byte, error) {
	return t.appendUnsigned(make([]byte, 0, t.unsignedSize()))
}

// unsignedSize is about the length of the unsigned encoding: enough
// unless the type or signer needs escaping.
func (t *Tx) unsignedSize() int { return len(t.Body) + len(t.Type) + len(t.Signer) + 64 }

// appendUnsigned appends the unsigned encoding to b.
func (t *Tx) appendUnsigned(b []byte) ([]byte, error) {
	typ, err := json.Marshal(t.Type)
	if err != nil {
		return nil, err
	}
	signer, err := json.Marshal(t.Signer)
	if err != nil {
		return nil, err
	}
	b = append(append(b, `{"type":`...), typ...)
	b = append(append(b, `,"signer":`...), signer...)
	b = strconv.AppendUint(append(b, `,"nonce":`...), t.Nonce, 10)
	b = append(append(b, `,"body":`...), t.Body...)
	return append(b, '}'), nil
}

// appendSig turns an unsigned encoding into the signed one: the signature
// is the last field.
func appendSig(unsigned, sig []byte) []byte {
	if len(sig) == 0 {
		return unsigned
	}
	out := make([]byte, 0, len(unsigned)+16+base64.StdEncoding.EncodedLen(len(sig)))
	out = append(out, unsigned[:len(unsigned)-1]...)
	out = append(out, `,"sig":"`...)
	out = base64.StdEncoding.AppendEncode(out, sig)
	return append(out, `"}`...)
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

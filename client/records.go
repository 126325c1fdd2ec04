package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/tx"
)

// Record is a record's ledger entry: metadata and hashes, no contents.
type Record struct {
	ID          string `json:"id"`
	Patient     string `json:"patient"`
	Author      string `json:"author"`
	Category    string `json:"category"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Epoch       uint64 `json:"epoch"`
	Ciphertext  string `json:"ciphertext"`
	Commitment  string `json:"commitment"`
	EpochEnv    string `json:"epoch_env"`
	SelfEnv     string `json:"self_env"`
	Height      int64  `json:"height"`
	Time        int64  `json:"time"`
}

// Consent is a consent contract as the ledger holds it.
type Consent struct {
	consent.Consent
	Height        int64 `json:"height"`
	RevokedHeight int64 `json:"revoked_height,omitempty"`
}

// AccessEvent is one disclosure of a record.
type AccessEvent struct {
	Record   string `json:"record"`
	Accessor string `json:"accessor"`
	Purpose  string `json:"purpose"`
	Consent  string `json:"consent"`
	Height   int64  `json:"height"`
	Time     int64  `json:"time"`
}

// Epoch is a patient's current key epoch of one category.
type Epoch struct {
	Epoch uint64 `json:"epoch"`
	Key   []byte `json:"key"`
}

// RecordAAD binds a record's ciphertext and envelopes to its chain,
// patient, category and key epoch.
func RecordAAD(chain, patient, category string, epoch uint64) []byte {
	return fmt.Appendf(nil, "medchain/record/v1\x00%s\x00%s\x00%s\x00%d", chain, patient, category, epoch)
}

// KeyContext binds an epoch key envelope to its patient, category, epoch
// and holder.
func KeyContext(chain, patient, category string, epoch uint64, holder string) []byte {
	return fmt.Appendf(nil, "medchain/epochkey/v1\x00%s\x00%s\x00%s\x00%d\x00%s", chain, patient, category, epoch, holder)
}

// RecordID is the ID the ledger gives a record with this ciphertext hash.
func RecordID(ciphertextHash string) string { return "r" + ciphertextHash[:32] }

// EpochPubs derives the patient's epoch public keys for categories at epoch.
func EpochPubs(patient ident.Private, categories []string, epoch uint64) ([]tx.EpochPub, error) {
	out := make([]tx.EpochPub, 0, len(categories))
	for _, c := range categories {
		k, err := seal.EpochKey(patient, c, epoch)
		if err != nil {
			return nil, err
		}
		out = append(out, tx.EpochPub{Category: c, Epoch: epoch, Key: k.PublicKey().Bytes()})
	}
	return out, nil
}

// RegisterPatient registers key as a patient with its first key epochs.
func (c *Client) RegisterPatient(ctx context.Context, key ident.Private) (Result, error) {
	eps, err := EpochPubs(key, consent.Categories, 0)
	if err != nil {
		return Result{}, err
	}
	return c.Send(ctx, key, tx.TypePatientAdd, tx.PatientAdd{Public: key.Public().String(), Epochs: eps})
}

// PutRecord encrypts plaintext on this machine, uploads the ciphertext and
// envelopes, and registers the record. Only hashes reach the ledger.
func (c *Client) PutRecord(ctx context.Context, author ident.Private, patient, category, contentType string, plaintext []byte) (string, Result, error) {
	chain, err := c.chainID(ctx)
	if err != nil {
		return "", Result{}, err
	}
	eps, err := c.Epochs(ctx, patient)
	if err != nil {
		return "", Result{}, fmt.Errorf("patient %s: %w", patient, err)
	}
	ep, ok := eps[category]
	if !ok {
		return "", Result{}, fmt.Errorf("unknown category %q; use one of %v", category, consent.Categories)
	}
	pub, err := seal.ParseEpochPublic(ep.Key)
	if err != nil {
		return "", Result{}, fmt.Errorf("patient's epoch key: %w", err)
	}
	aad := RecordAAD(chain, patient, category, ep.Epoch)
	s, err := seal.SealRecord(plaintext, aad, pub)
	if err != nil {
		return "", Result{}, err
	}
	self, err := seal.WrapForSelf(author, s.DEK, aad)
	if err != nil {
		return "", Result{}, err
	}
	if _, err := c.PutBlobs(ctx, author, [][]byte{s.Ciphertext, s.EpochEnvelope, self}); err != nil {
		return "", Result{}, fmt.Errorf("upload: %w", err)
	}
	body := tx.RecordPut{
		Patient: patient, Category: category, ContentType: contentType, Size: int64(len(plaintext)), Epoch: ep.Epoch,
		Ciphertext: hex.EncodeToString(s.CiphertextHash[:]), Commitment: hex.EncodeToString(s.Commitment[:]),
		EpochEnv: blob.Hash(s.EpochEnvelope), SelfEnv: blob.Hash(self),
	}
	res, err := c.Send(ctx, author, tx.TypeRecordPut, body)
	return RecordID(body.Ciphertext), res, err
}

// readResult is the node's answer to a read.
type readResult struct {
	Record     Record `json:"record"`
	Consent    string `json:"consent"`
	Height     int64  `json:"height"`
	Ciphertext []byte `json:"ciphertext"`
	EpochEnv   []byte `json:"epoch_env"`
	KeyEnv     []byte `json:"key_env"`
	KeyKind    string `json:"key_kind"`
}

// GetRecord reads and decrypts a record as reader, for purpose. The node
// commits the access event before it serves; this client then checks every
// hash against the ledger's entry before it returns the plaintext.
func (c *Client) GetRecord(ctx context.Context, reader ident.Private, id, purpose string) ([]byte, Record, error) {
	chain, err := c.chainID(ctx)
	if err != nil {
		return nil, Record{}, err
	}
	t, err := c.Sign(ctx, reader, tx.TypeAccess, tx.Access{Record: id, Purpose: purpose})
	if err != nil {
		return nil, Record{}, err
	}
	raw, err := t.Encode()
	if err != nil {
		return nil, Record{}, err
	}
	var rr readResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/records/"+id+"/read", bytesReader(raw))
	if err != nil {
		return nil, Record{}, err
	}
	if err := c.send(req, &rr); err != nil {
		return nil, Record{}, err
	}
	if rr.Record.ID != id || !blob.ValidName(rr.Record.Ciphertext) || RecordID(rr.Record.Ciphertext) != id {
		return nil, Record{}, fmt.Errorf("asked for record %s, the node served %s; try another node", id, rr.Record.ID)
	}
	pt, err := open(chain, reader, &rr)
	return pt, rr.Record, err
}

// Opened is one record read and decrypted.
type Opened struct {
	Record    Record
	Plaintext []byte
}

// GetRecords reads and decrypts several records under one signed request
// (up to [tx.MaxAccessRecords]): the node serves all of them or none, and
// each leaves its own access event. Each is checked against the ledger's
// hashes as [Client.GetRecord] checks one; the results follow ids' order.
func (c *Client) GetRecords(ctx context.Context, reader ident.Private, ids []string, purpose string) ([]Opened, error) {
	chain, err := c.chainID(ctx)
	if err != nil {
		return nil, err
	}
	t, err := c.Sign(ctx, reader, tx.TypeAccessMany, tx.AccessMany{Records: ids, Purpose: purpose})
	if err != nil {
		return nil, err
	}
	raw, err := t.Encode()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/records/read", bytesReader(raw))
	if err != nil {
		return nil, err
	}
	var out struct {
		Reads []readResult `json:"reads"`
	}
	if err := c.send(req, &out); err != nil {
		return nil, err
	}
	if len(out.Reads) != len(ids) {
		return nil, fmt.Errorf("asked for %d records, the node served %d; try another node", len(ids), len(out.Reads))
	}
	opened := make([]Opened, len(ids))
	for i, id := range ids {
		rr := &out.Reads[i]
		if rr.Record.ID != id || !blob.ValidName(rr.Record.Ciphertext) || RecordID(rr.Record.Ciphertext) != id {
			return nil, fmt.Errorf("asked for record %s, the node served %s; try another node", id, rr.Record.ID)
		}
		pt, err := open(chain, reader, rr)
		if err != nil {
			return nil, err
		}
		opened[i] = Opened{Record: rr.Record, Plaintext: pt}
	}
	return opened, nil
}

func open(chain string, reader ident.Private, rr *readResult) ([]byte, error) {
	r := &rr.Record
	if blob.Hash(rr.Ciphertext) != r.Ciphertext || blob.Hash(rr.EpochEnv) != r.EpochEnv {
		return nil, fmt.Errorf("record %s: the node served bytes that do not match the ledger's hashes", r.ID)
	}
	aad := RecordAAD(chain, r.Patient, r.Category, r.Epoch)
	var dek []byte
	var err error
	switch {
	case reader.ID() == r.Patient:
		k, kerr := seal.EpochKey(reader, r.Category, r.Epoch)
		if kerr != nil {
			return nil, kerr
		}
		dek, err = seal.OpenEpochEnvelope(k, rr.EpochEnv, aad)
	case reader.ID() == r.Author:
		if blob.Hash(rr.KeyEnv) != r.SelfEnv {
			return nil, fmt.Errorf("record %s: author envelope does not match the ledger", r.ID)
		}
		dek, err = seal.UnwrapForSelf(reader, rr.KeyEnv, aad)
	default:
		dek, err = openAsGrantee(chain, reader, rr, aad)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: unwrap data key: %w", r.ID, err)
	}
	pt, err := seal.Open(rr.Ciphertext, dek, aad)
	if err != nil {
		return nil, fmt.Errorf("record %s: decrypt: %w", r.ID, err)
	}
	var want [32]byte
	if b, err := hex.DecodeString(r.Commitment); err != nil || len(b) != 32 {
		return nil, fmt.Errorf("record %s: malformed commitment on the ledger", r.ID)
	} else {
		copy(want[:], b)
	}
	if err := seal.CheckCommitment(pt, dek, want); err != nil {
		return nil, fmt.Errorf("record %s: contents do not match the ledger's commitment", r.ID)
	}
	return pt, nil
}

func openAsGrantee(chain string, reader ident.Private, rr *readResult, aad []byte) ([]byte, error) {
	r := &rr.Record
	// The envelope may be wrapped to the reader or to the reader's
	// organization; the reader's own key is tried, as that is what it holds.
	k, err := seal.UnwrapEpochKey(reader.Box, rr.KeyEnv, KeyContext(chain, r.Patient, r.Category, r.Epoch, reader.ID()))
	if err != nil {
		return nil, err
	}
	return seal.OpenEpochEnvelope(k, rr.EpochEnv, aad)
}

// GrantOptions are a consent's terms.
type GrantOptions struct {
	Grantee    string
	Categories []string
	Purposes   []string
	Actions    []string
	Until      time.Time
	ExpiresIn  time.Duration
	Condition  string
}

// Grant signs a consent as patient, first wrapping the keys of every epoch
// in scope for the grantee (and, for an organization, for each member).
func (c *Client) Grant(ctx context.Context, patient ident.Private, o GrantOptions) (string, Result, error) {
	if err := c.requirePatient(ctx, patient.ID(), "grant consent"); err != nil {
		return "", Result{}, err
	}
	keys, err := c.wrapForGrant(ctx, patient, o)
	if err != nil {
		return "", Result{}, err
	}
	body := tx.ConsentGrant{Grantee: o.Grantee, Categories: o.Categories, Purposes: o.Purposes, Actions: o.Actions,
		ExpiresIn: int64(o.ExpiresIn), Condition: o.Condition, Keys: keys}
	if !o.Until.IsZero() {
		body.Until = o.Until.UnixNano()
	}
	t, err := c.Sign(ctx, patient, tx.TypeConsentGrant, body)
	if err != nil {
		return "", Result{}, err
	}
	raw, err := t.Encode()
	if err != nil {
		return "", Result{}, err
	}
	res, err := c.Submit(ctx, t)
	return "c" + tx.Hash(raw)[:32], res, err
}

// scope returns the categories a consent's category list covers.
func scope(cats []string) []string {
	if len(cats) == 0 {
		cats = []string{consent.All}
	}
	var out []string
	for _, c := range consent.Categories {
		if slices.Contains(cats, c) || (slices.Contains(cats, consent.All) && !consent.IsSensitive(c)) {
			out = append(out, c)
		}
	}
	return out
}

// holders returns who receives keys under a grant to grantee.
func (c *Client) holders(ctx context.Context, grantee string) ([]Actor, error) {
	g, err := c.Actor(ctx, grantee)
	if err != nil {
		return nil, fmt.Errorf("grantee %s: %w", grantee, err)
	}
	out := []Actor{g}
	if g.Kind == "org" {
		ms, err := c.Members(ctx, grantee)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			a, err := c.Actor(ctx, m)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

func (c *Client) wrapForGrant(ctx context.Context, patient ident.Private, o GrantOptions) ([]tx.KeyEnvelope, error) {
	if len(o.Actions) > 0 && !slices.Contains(o.Actions, consent.ActionRead) {
		return nil, nil // write-only: no read keys
	}
	hs, err := c.holders(ctx, o.Grantee)
	if err != nil {
		return nil, err
	}
	eps, err := c.Epochs(ctx, patient.ID())
	if err != nil {
		return nil, err
	}
	var keys []tx.KeyEnvelope
	for _, cat := range scope(o.Categories) {
		for e := uint64(0); e <= eps[cat].Epoch; e++ {
			more, err := c.wrapEpoch(ctx, patient, cat, e, hs)
			if err != nil {
				return nil, err
			}
			keys = append(keys, more...)
		}
	}
	return keys, nil
}

// wrapEpoch wraps one epoch key for each holder and uploads the envelopes.
func (c *Client) wrapEpoch(ctx context.Context, patient ident.Private, cat string, epoch uint64, hs []Actor) ([]tx.KeyEnvelope, error) {
	chain, err := c.chainID(ctx)
	if err != nil {
		return nil, err
	}
	k, err := seal.EpochKey(patient, cat, epoch)
	if err != nil {
		return nil, err
	}
	var out []tx.KeyEnvelope
	for _, h := range hs {
		pub, err := ident.ParsePublic(h.Public)
		if err != nil {
			return nil, err
		}
		box, err := pub.BoxKey()
		if err != nil {
			return nil, err
		}
		env, err := seal.WrapEpochKey(box, k, KeyContext(chain, patient.ID(), cat, epoch, h.ID))
		if err != nil {
			return nil, err
		}
		name := blob.Hash(env)
		if _, err := c.PutBlob(ctx, patient, name, env); err != nil {
			return nil, err
		}
		out = append(out, tx.KeyEnvelope{Category: cat, Epoch: epoch, Holder: h.ID, Blob: name})
	}
	return out, nil
}

// Revoke ends a consent and starts a new key epoch for each category it
// covered, wrapped for the grantees that remain.
func (c *Client) Revoke(ctx context.Context, patient ident.Private, id string) (Result, error) {
	if err := c.requirePatient(ctx, patient.ID(), "revoke consent"); err != nil {
		return Result{}, err
	}
	cs, err := c.Consents(ctx, patient, patient.ID())
	if err != nil {
		return Result{}, err
	}
	i := slices.IndexFunc(cs, func(x Consent) bool { return x.ID == id })
	if i < 0 {
		return Result{}, &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("consent %s is not one of %s's; only the patient who granted a consent may revoke it", id, patient.ID())}
	}
	revoked := cs[i]
	eps, err := c.Epochs(ctx, patient.ID())
	if err != nil {
		return Result{}, err
	}
	now := time.Now().UnixNano() // an estimate; the ledger decides at its own block time
	var body tx.ConsentRevoke
	body.Consent = id
	for _, cat := range scope(revoked.Categories) {
		next := eps[cat].Epoch + 1
		pubs, err := EpochPubs(patient, []string{cat}, next)
		if err != nil {
			return Result{}, err
		}
		body.Epochs = append(body.Epochs, pubs...)
		for _, other := range cs {
			// Only grantees that keep an active consent for cat get the new
			// epoch: not the revoked one, and not one whose consent expired.
			if other.ID == id || other.Revoked || (other.Until != 0 && other.Until <= now) ||
				!slices.Contains(scope(other.Categories), cat) || !slices.Contains(other.Actions, consent.ActionRead) {
				continue
			}
			hs, err := c.holders(ctx, other.Grantee)
			if err != nil {
				return Result{}, err
			}
			keys, err := c.wrapEpoch(ctx, patient, cat, next, hs)
			if err != nil {
				return Result{}, err
			}
			body.Keys = append(body.Keys, keys...)
		}
	}
	return c.Send(ctx, patient, tx.TypeConsentRevoke, body)
}

// requirePatient refuses early, as the ledger would, when id is not a
// registered patient.
func (c *Client) requirePatient(ctx context.Context, id, what string) error {
	a, err := c.Actor(ctx, id)
	if NotFound(err) {
		return &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("only patients may %s; %s is not registered (run `medchain patient add` first)", what, id)}
	}
	if err != nil {
		return err
	}
	if a.Kind != "patient" {
		return &Error{Status: http.StatusForbidden, Msg: fmt.Sprintf("only patients may %s; %s is a %s", what, id, a.Kind)}
	}
	return nil
}

package app

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// env is what a transaction executes against: a block in progress (or a
// throwaway one in CheckTx), the block's height and time.
type env struct {
	w      *state.Delta // the transaction's own writes once execute starts
	hash   string       // of the transaction being executed
	height int64
	time   int64      // block time, unix nanoseconds
	final  bool       // in FinalizeBlock, not CheckTx
	run    *blockRun  // FinalizeBlock: the block being executed
	pre    txPrefetch // FinalizeBlock: what was prefetched for this transaction
}

// touched are the patients whose consents the block in progress has
// changed so far; nil in CheckTx.
func (e env) touched() map[string]bool {
	if e.run == nil {
		return nil
	}
	return e.run.touched
}

// execute checks and applies one raw transaction. Every check runs here, in
// CheckTx and again in FinalizeBlock. The one result carried over is that
// these exact bytes decode and carry a valid signature (see verify): a
// property of the bytes and of a key that never changes, so reusing it
// changes no decision.
//
// e.hash must be raw's hash: the callers have it already, and hashing a
// 1 MiB batch again is not free.
func (a *App) execute(e env, raw []byte, pendingNonce uint64) (*tx.Tx, error) {
	t, body, err := a.verify(e.w, raw, e.hash, e.final)
	if err != nil {
		return t, err
	}
	last, err := getNonce(e.w, t.Signer)
	if err != nil {
		return t, err
	}
	last = max(last, pendingNonce)
	if t.Nonce <= last {
		return t, fmt.Errorf("%w: nonce %d of %s is not above its last nonce %d; sign again with a fresh nonce", ErrReplay, t.Nonce, t.Signer, last)
	}
	o := e.w.Child()
	e.w = o
	if err := a.apply(e, t, body); err != nil {
		return t, err
	}
	putNonce(o, t.Signer, t.Nonce)
	o.Flush()
	return t, nil
}

// verify decodes raw and checks its signature, once per distinct bytes:
// CheckTx, the API and FinalizeBlock share the result. take drops it from
// the cache, as FinalizeBlock does: a committed transaction never returns.
func (a *App) verify(r reader, raw []byte, hash string, take bool) (*tx.Tx, any, error) {
	if v, ok := a.verified.get(hash, take); ok {
		return v.t, v.body, nil
	}
	t, body, err := tx.Decode(raw)
	if err != nil {
		return nil, nil, err
	}
	pub, err := a.signerKey(r, t, body)
	if err != nil {
		return t, nil, err
	}
	if err := t.Verify(a.chainID, pub); err != nil {
		return t, nil, err
	}
	if !take {
		a.verified.put(hash, verifiedTx{t, body, len(raw)})
	}
	return t, body, nil
}

// VerifyTx decodes a transaction and checks its signature against the
// committed state, as CheckTx would.
func (a *App) VerifyTx(raw []byte) (*tx.Tx, any, error) {
	return a.verify(a.store, raw, tx.Hash(raw), false)
}

// signerKey finds the signer's public key: from the ledger, or, for a
// patient registering itself, from the transaction.
func (a *App) signerKey(r reader, t *tx.Tx, body any) (ed25519.PublicKey, error) {
	if p, ok := body.(*tx.PatientAdd); ok {
		pub, err := ident.ParsePublic(p.Public)
		if err != nil {
			return nil, fmt.Errorf("%w: patient key: %v", tx.ErrMalformed, err)
		}
		return pub.Sign, nil
	}
	act, err := a.actor(r, t.Signer)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s is not registered on this ledger; register it first", ErrUnknownSigner, t.Signer)
	}
	if err != nil {
		return nil, err
	}
	return act.SigningKey()
}

func (a *App) apply(e env, t *tx.Tx, body any) error {
	switch b := body.(type) {
	case *tx.OrgAdd:
		return a.orgAdd(e, t, b)
	case *tx.MemberAdd:
		return a.memberAdd(e, t, b)
	case *tx.PatientAdd:
		return a.patientAdd(e, t, b)
	case *tx.RecordPut:
		return a.recordPut(e, t, b)
	case *tx.RecordBatch:
		return a.recordBatch(e, t, b)
	case *tx.ConsentGrant:
		return a.consentGrant(e, t, b)
	case *tx.ConsentRevoke:
		return a.consentRevoke(e, t, b)
	case *tx.Access:
		return a.access(e, t, b)
	case *tx.AccessBatch:
		return a.accessBatch(e, t, b)
	case *tx.AccessMany:
		return a.accessMany(e, t, b)
	}
	return fmt.Errorf("%w: no handler for %s", tx.ErrMalformed, t.Type)
}

// newActor validates a public key and that it is not registered yet.
func (a *App) newActor(e env, public, kind string) (*Actor, error) {
	pub, err := ident.ParsePublic(public)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id := pub.ID()
	if _, err := a.actor(e.w, id); err == nil {
		return nil, fmt.Errorf("%w: %s is already on the ledger", ErrExists, id)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return &Actor{ID: id, Kind: kind, Public: public, Height: e.height}, nil
}

func (a *App) requireKind(r reader, id, kind, what string) (*Actor, error) {
	act, err := a.actor(r, id)
	if err != nil {
		return nil, err
	}
	if act.Kind != kind {
		return nil, fmt.Errorf("%w: only %s may %s; %s is %s", ErrUnauthorized, kindNames[kind]+"s", what, id, article(kindNames[act.Kind]))
	}
	return act, nil
}

func (a *App) orgAdd(e env, t *tx.Tx, b *tx.OrgAdd) error {
	if _, err := a.requireKind(e.w, t.Signer, KindAdmin, "admit an organization"); err != nil {
		return err
	}
	name := strings.TrimSpace(b.Name)
	if name == "" || len(name) > 128 || name != b.Name {
		return fmt.Errorf("%w: organization name must be 1-128 characters without surrounding spaces", ErrInvalid)
	}
	org, err := a.newActor(e, b.Public, KindOrg)
	if err != nil {
		return err
	}
	org.Name = name
	return putActor(e.w, org)
}

func (a *App) memberAdd(e env, t *tx.Tx, b *tx.MemberAdd) error {
	if _, err := a.requireKind(e.w, t.Signer, KindOrg, "admit members"); err != nil {
		return err
	}
	if !consent.ValidRole(b.Role) {
		return fmt.Errorf("%w: role %q; use one of %s", ErrInvalid, b.Role, strings.Join(consent.Roles, ", "))
	}
	m, err := a.newActor(e, b.Public, KindMember)
	if err != nil {
		return err
	}
	m.Role, m.Org = b.Role, t.Signer
	e.w.Set(memberKey(t.Signer, m.ID), nil)
	return putActor(e.w, m)
}

func (a *App) patientAdd(e env, t *tx.Tx, b *tx.PatientAdd) error {
	p, err := a.newActor(e, b.Public, KindPatient)
	if err != nil {
		return err
	}
	if p.ID != t.Signer {
		return fmt.Errorf("%w: a patient registers only its own key", ErrUnauthorized)
	}
	if err := a.patientEpochs(e, p.ID, b.Epochs); err != nil {
		return err
	}
	return putActor(e.w, p)
}

var kindNames = map[string]string{KindAdmin: "network admin", KindOrg: "organization", KindMember: "member", KindPatient: "patient", KindNode: "node"}

func article(s string) string {
	if strings.IndexByte("aeiou", s[0]) >= 0 {
		return "an " + s
	}
	return "a " + s
}

package app

import (
	"fmt"
	"sync"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/tx"
)

// programs caches compiled conditions by their source. Compilation is
// deterministic, so the cache changes only speed, never a decision.
type programs struct {
	mu sync.Mutex
	m  map[string]*consent.Program
}

const maxPrograms = 4096

func (p *programs) compile(c consent.Consent) (*consent.Program, error) {
	p.mu.Lock()
	prog, ok := p.m[c.Condition]
	p.mu.Unlock()
	if ok {
		return prog, nil
	}
	prog, err := consent.Compile(c.Condition)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxPrograms {
		p.m = map[string]*consent.Program{}
	}
	p.m[c.Condition] = prog
	p.mu.Unlock()
	return prog, nil
}

func (a *App) consentGrant(e env, t *tx.Tx, b *tx.ConsentGrant) error {
	if _, err := a.requireKind(e.w, t.Signer, KindPatient, "grant consent"); err != nil {
		return err
	}
	g, err := a.actor(e.w, b.Grantee)
	if err != nil || (g.Kind != KindMember && g.Kind != KindOrg) {
		return fmt.Errorf("%w: grantee %s is not a registered member or organization", ErrInvalid, b.Grantee)
	}
	if b.Until != 0 && b.ExpiresIn != 0 {
		return fmt.Errorf("%w: give an expiry (expires_in) or an end time (until), not both", ErrInvalid)
	}
	if b.ExpiresIn < 0 {
		return fmt.Errorf("%w: expires_in must be positive", ErrInvalid)
	}
	c := consent.Consent{
		ID: "c" + e.hash[:32], Patient: t.Signer, Grantee: b.Grantee, GranteeIsOrg: g.Kind == KindOrg,
		Categories: b.Categories, Purposes: b.Purposes, Actions: b.Actions,
		Start: e.time, Until: b.Until, Condition: b.Condition,
	}
	if b.ExpiresIn > 0 {
		c.Until = e.time + b.ExpiresIn
	}
	if err := consent.NormalizeWith(&c, a.programs.compile); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := a.putKeyEnvelopes(e, t.Signer, b.Keys, func(k tx.KeyEnvelope) bool {
		return k.Holder == g.ID || (g.Kind == KindOrg && a.isMember(e.w, g.ID, k.Holder))
	}); err != nil {
		return err
	}
	a.touch(e, t.Signer)
	e.w.Set(patientConsentKey(t.Signer, c.ID), nil)
	e.w.Set(granteeConsentKey(b.Grantee, c.ID), nil)
	return putJSON(e.w, consentKey(c.ID), Consent{Consent: c, Height: e.height})
}

func (a *App) isMember(r reader, org, id string) bool {
	_, err := r.Get(memberKey(org, id))
	return err == nil
}

// putKeyEnvelopes records where the wrapped epoch keys are, after checking
// each names a holder the patient may give keys to and an existing epoch.
func (a *App) putKeyEnvelopes(e env, patient string, keys []tx.KeyEnvelope, holderOK func(tx.KeyEnvelope) bool) error {
	if len(keys) > maxKeyEnvelopes {
		return fmt.Errorf("%w: at most %d key envelopes per transaction", ErrInvalid, maxKeyEnvelopes)
	}
	for _, k := range keys {
		if !consent.ValidCategory(k.Category) || !validHash(k.Blob) {
			return fmt.Errorf("%w: key envelope for category %q with blob %q", ErrInvalid, k.Category, k.Blob)
		}
		if !holderOK(k) {
			return fmt.Errorf("%w: key envelope for %s, who is not the grantee or one of its members", ErrInvalid, k.Holder)
		}
		cur, err := epochNum(e.w, patient, k.Category)
		if err != nil {
			return err
		}
		if k.Epoch > cur {
			return fmt.Errorf("%w: key envelope for epoch %d of %s, which does not exist yet", ErrInvalid, k.Epoch, k.Category)
		}
		e.w.Set(keyEnvKey(patient, k.Category, k.Epoch, k.Holder), []byte(k.Blob))
		if e.final {
			e.run.newBlobs = append(e.run.newBlobs, k.Blob)
		}
	}
	return nil
}

func (a *App) consentRevoke(e env, t *tx.Tx, b *tx.ConsentRevoke) error {
	var c Consent
	if err := getJSON(e.w, consentKey(b.Consent), &c); err != nil {
		return fmt.Errorf("consent %s: %w", b.Consent, err)
	}
	if c.Patient != t.Signer {
		return fmt.Errorf("%w: only the patient who granted consent %s may revoke it", ErrUnauthorized, b.Consent)
	}
	if c.Revoked {
		return fmt.Errorf("%w: consent %s was revoked at height %d", ErrExists, b.Consent, c.RevokedHeight)
	}
	if err := a.checkEpochs(b.Epochs); err != nil {
		return err
	}
	for _, ep := range b.Epochs {
		cur, err := epochNum(e.w, t.Signer, ep.Category)
		if err != nil {
			return err
		}
		if ep.Epoch != cur+1 {
			return fmt.Errorf("%w: new epoch for %s must be %d", ErrInvalid, ep.Category, cur+1)
		}
		if err := putEpoch(e.w, t.Signer, ep.Category, Epoch{Epoch: ep.Epoch, Key: ep.Key}); err != nil {
			return err
		}
	}
	a.touch(e, t.Signer)
	c.Revoked, c.RevokedHeight = true, e.height
	if err := putJSON(e.w, consentKey(c.ID), c); err != nil {
		return err
	}
	// New epochs go only to holders that another active consent of the
	// patient still covers: never to the revoked grantee on its account.
	others, err := a.consentsOf(e.w, e.touched(), t.Signer)
	if err != nil {
		return err
	}
	return a.putKeyEnvelopes(e, t.Signer, b.Keys, func(k tx.KeyEnvelope) bool {
		for _, o := range others.Consents() {
			if !o.Revoked && (o.Until == 0 || o.Until > e.time) &&
				(o.Grantee == k.Holder || (o.GranteeIsOrg && a.isMember(e.w, o.Grantee, k.Holder))) {
				return true
			}
		}
		return false
	})
}

// access records a disclosure, after deciding it from the ledger alone.
func (a *App) access(e env, t *tx.Tx, b *tx.Access) error {
	d, rec, err := a.authorizeRead(e.w, e.touched(), t.Signer, b.Record, b.Purpose, e.time)
	if err != nil {
		return err
	}
	if seen, err := has(e.w, accessReqKey(e.hash)); err != nil {
		return err
	} else if seen {
		return fmt.Errorf("%w: this access was recorded already", ErrReplay)
	}
	ev := AccessEvent{Record: rec.ID, Accessor: t.Signer, Purpose: b.Purpose, Consent: d, Height: e.height, Time: e.time}
	e.w.Set(accessReqKey(e.hash), nil)
	return putJSON(e.w, accessKey(rec.Patient, e.height, e.hash), ev)
}

// authorizeRead decides whether reader may read record id for purpose at
// time: the patient and the author always may; anyone else needs a consent.
// It returns the consent that allows it ("" for patient and author).
// touched is as for consentsOf.
func (a *App) authorizeRead(r reader, touched map[string]bool, who, id, purpose string, time int64) (string, *Record, error) {
	rec, err := a.record(r, id)
	if err != nil {
		return "", nil, fmt.Errorf("record %s: %w", id, err)
	}
	consentID, err := a.authorizeRecord(r, touched, who, &rec, purpose, time)
	if err != nil {
		return "", nil, err
	}
	return consentID, &rec, nil
}

// authorizeRecord is authorizeRead for a record already read: the
// reader's actor and the patient's consents, evaluated.
func (a *App) authorizeRecord(r reader, touched map[string]bool, who string, rec *Record, purpose string, time int64) (string, error) {
	if !consent.ValidPurpose(purpose) {
		return "", fmt.Errorf("%w: purpose %q", ErrInvalid, purpose)
	}
	if who == rec.Patient || who == rec.Author {
		return "", nil
	}
	// A read's usual case, both from the cache in one look: the reader,
	// and consents the block in progress has not changed.
	var act *Actor
	var cs *consent.Set
	if !touched[rec.Patient] {
		act, cs = a.cache.actorAndConsents(who, rec.Patient)
	}
	if act == nil {
		var err error
		if act, err = a.actor(r, who); err != nil {
			return "", err
		}
	}
	if act.Kind != KindMember {
		return "", fmt.Errorf("%w: %s holds no consent for record %s", ErrUnauthorized, who, rec.ID)
	}
	req := consent.Request{Requester: requesterOf(act), Action: consent.ActionRead, Purpose: purpose,
		Category: rec.Category, Author: rec.Author, Time: time}
	var d consent.Decision
	var err error
	if cs != nil {
		d, err = a.decideBy(cs, req)
	} else {
		d, err = a.decide(r, touched, rec.Patient, req)
	}
	if err != nil {
		return "", err
	}
	return d.ConsentID, nil
}

// touch marks the patient's consents as changed by the block in progress.
func (a *App) touch(e env, patient string) {
	if e.final {
		e.run.touched[patient] = true
	}
}

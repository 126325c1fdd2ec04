package app

import (
	"errors"
	"fmt"

	"github.com/medchain/medchain/tx"
)

// AccessWindow is how far ahead of the block that records it a served
// access request's time (its nonce, in unix nanoseconds) may lie.
const AccessWindow int64 = 10 * 60 * 1e9

func accessReqKey(hash string) []byte { return []byte("accessreq/" + hash) }

// accessBatch records the disclosures a node served. Each request is the
// reader's own signed access transaction: the node cannot invent one. A
// request that is malformed, forged, from the future or already recorded is
// skipped;
// the rest are recorded with the consent that allows them at this block, or
// with none if the consent ended between the read and this block.
func (a *App) accessBatch(e env, t *tx.Tx, b *tx.AccessBatch) error {
	if _, err := a.requireKind(e.w, t.Signer, KindNode, "record served reads"); err != nil {
		return err
	}
	if len(b.Requests) == 0 || len(b.Requests) > tx.MaxAccessBatch {
		return fmt.Errorf("%w: an access batch holds 1 to %d requests", ErrInvalid, tx.MaxAccessBatch)
	}
	if !e.final {
		// CheckTx: each request is judged in FinalizeBlock, which skips a bad
		// one rather than failing the batch. Here their signatures are
		// checked, off the consensus path, so FinalizeBlock finds them
		// verified.
		for _, raw := range b.Requests {
			if len(raw) <= tx.MaxSize {
				_, _, _ = a.verify(e.w, raw, tx.Hash(raw), false)
			}
		}
		return nil
	}
	for _, raw := range b.Requests {
		if err := a.recordServed(e, raw); err != nil && !errors.Is(err, errSkip) {
			return err
		}
	}
	return nil
}

// errSkip marks a request in a batch that is not recorded.
var errSkip = errors.New("skipped")

func (a *App) recordServed(e env, raw []byte) error {
	if len(raw) > tx.MaxSize {
		return errSkip
	}
	hash := tx.Hash(raw)
	r, body, err := a.verify(e.w, raw, hash, e.final) // CheckTx leaves it for FinalizeBlock
	if err != nil {
		return errSkip
	}
	ids, purpose, many := accessed(body)
	if ids == nil {
		return errSkip
	}
	if seen, err := has(e.w, accessReqKey(hash)); err != nil {
		return err
	} else if seen {
		return errSkip // recorded already
	}
	// A request from the future is refused. An old one is recorded: it may
	// have waited in a node's outbox through an outage, and a disclosure
	// recorded late beats one never recorded. Replays are refused above,
	// forever, by hash.
	if int64(r.Nonce)-e.time > AccessWindow {
		return errSkip
	}
	recorded := false
	for _, id := range ids {
		rec, err := a.record(e.w, id)
		if err != nil || r.Signer == rec.Patient {
			continue
		}
		consentID, _, err := a.authorizeRead(e.w, e.touched(), r.Signer, id, purpose, e.time)
		if err != nil && !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrInvalid) {
			return err
		}
		ev := AccessEvent{Record: rec.ID, Accessor: r.Signer, Purpose: purpose, Consent: consentID, Height: e.height, Time: e.time}
		if err != nil {
			ev.Note = "served under a consent that ended before this block"
		}
		if err := putJSON(e.w, eventKey(rec.Patient, e.height, hash, rec.ID, many), ev); err != nil {
			return err
		}
		recorded = true
	}
	if !recorded {
		return errSkip
	}
	e.w.Set(accessReqKey(hash), nil)
	return nil
}

// accessed returns the records and purpose of a reader's access request,
// and whether it may name several; nil records if body is not a
// well-formed request.
func accessed(body any) (ids []string, purpose string, many bool) {
	switch b := body.(type) {
	case *tx.Access:
		return []string{b.Record}, b.Purpose, false
	case *tx.AccessMany:
		if b.Check() != nil {
			return nil, "", false
		}
		return b.Records, b.Purpose, true
	}
	return nil, "", false
}

// eventKey is where the access event of record id, read by the request
// hash at height, is kept. A request for several records keeps one event
// per record, each under the record's ID.
func eventKey(patient string, height int64, hash, id string, many bool) []byte {
	k := accessKey(patient, height, hash)
	if many {
		k = append(append(k, '/'), id...)
	}
	return k
}

// accessMany records a request for several records submitted as a
// transaction of its own: every record must be allowed, or none is
// recorded.
func (a *App) accessMany(e env, t *tx.Tx, b *tx.AccessMany) error {
	if err := b.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if seen, err := has(e.w, accessReqKey(e.hash)); err != nil {
		return err
	} else if seen {
		return fmt.Errorf("%w: this access was recorded already", ErrReplay)
	}
	for _, id := range b.Records {
		consentID, rec, err := a.authorizeRead(e.w, e.touched(), t.Signer, id, b.Purpose, e.time)
		if err != nil {
			return err
		}
		ev := AccessEvent{Record: rec.ID, Accessor: t.Signer, Purpose: b.Purpose, Consent: consentID, Height: e.height, Time: e.time}
		if err := putJSON(e.w, eventKey(rec.Patient, e.height, e.hash, rec.ID, true), ev); err != nil {
			return err
		}
	}
	e.w.Set(accessReqKey(e.hash), nil)
	return nil
}

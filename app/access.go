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
	acc, ok := body.(*tx.Access)
	if !ok {
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
	rec, err := a.record(e.w, acc.Record)
	if err != nil || r.Signer == rec.Patient {
		return errSkip
	}
	consentID, _, err := a.authorizeRead(e.w, e.touched(), r.Signer, acc.Record, acc.Purpose, e.time)
	if err != nil && !errors.Is(err, ErrUnauthorized) && !errors.Is(err, ErrInvalid) {
		return err
	}
	ev := AccessEvent{Record: rec.ID, Accessor: r.Signer, Purpose: acc.Purpose, Consent: consentID, Height: e.height, Time: e.time}
	if err != nil {
		ev.Note = "served under a consent that ended before this block"
	}
	e.w.Set(accessReqKey(hash), nil)
	return putJSON(e.w, accessKey(rec.Patient, e.height, hash), ev)
}

package app

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/state"
)

// timeKey holds the last block's time, so reads between blocks judge
// consents at the ledger's own "now", never a node's clock.
var timeKey = []byte("chain/time")

func putTime(w writer, t int64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t))
	w.Set(timeKey, b[:])
}

// BlockTime returns the time of the last committed block (unix ns).
func (a *App) BlockTime() int64 { return a.blockTime.Load() }

// committedTime reads the last committed block's time from store: 0 before
// the first block.
func committedTime(store *state.Store) int64 {
	b, err := store.Get(timeKey)
	if err != nil || len(b) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// GetRecord reads a committed record.
func (a *App) GetRecord(id string) (*Record, error) {
	r, err := a.record(a.store, id)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	return &r, nil
}

// Page bounds a listing: the entries after the one After names (from the
// first when empty), at most Limit of them (all when 0). A listing cut
// short returns the After of its next page; "" when nothing is left.
type Page struct {
	After string
	Limit int
}

// MaxPageLimit bounds Page.Limit where a client sets it.
const MaxPageLimit = 1000

// Records lists the patient's records that who may see: all of them for the
// patient, those a consent covers for anyone else.
func (a *App) Records(who, patient string) ([]Record, error) {
	recs, _, err := a.RecordsPage(who, patient, Page{})
	return recs, err
}

// RecordsPage is Records a page at a time, in record ID order; a page's
// After is the last record ID of the page before.
func (a *App) RecordsPage(who, patient string, pg Page) ([]Record, string, error) {
	var cs []consent.Consent
	var req consent.Request
	if who != patient {
		act, err := a.actor(a.store, who)
		if err != nil {
			return nil, "", err
		}
		set, err := a.consentsOf(a.store, nil, patient)
		if err != nil {
			return nil, "", err
		}
		cs = set.Consents()
		req = consent.Request{Requester: requesterOf(act), Action: consent.ActionRead, Time: a.BlockTime()}
	}
	prefix := "precord/" + patient + "/"
	out, next := []Record{}, ""
	var inner error
	err := a.store.ScanAfter([]byte(prefix), []byte(pg.After), func(k, _ []byte) bool {
		var r *Record
		if r, inner = a.GetRecord(string(k[len(prefix):])); inner != nil {
			return false
		}
		if who != patient && who != r.Author && !listable(cs, req, r) {
			return true
		}
		if pg.Limit > 0 && len(out) == pg.Limit {
			next = out[len(out)-1].ID // one more remains
			return false
		}
		out = append(out, *r)
		return true
	})
	if err = errors.Join(err, inner); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// listable reports whether some consent covers r for req, for any of its
// purposes. Conditions are judged at read time, not here.
func listable(cs []consent.Consent, req consent.Request, r *Record) bool {
	req.Category, req.Author = r.Category, r.Author
	for _, c := range cs {
		for _, p := range c.Purposes {
			req.Purpose = p
			if consent.Covers(c, req) == nil {
				return true
			}
		}
	}
	return false
}

// Consents lists the consents who may see: a patient's own (patient set),
// or those granted to who or to who's organization.
func (a *App) Consents(who, patient string) ([]Consent, error) {
	if patient == "" {
		if act, err := a.actor(a.store, who); err == nil && act.Kind == KindPatient {
			patient = who
		}
	}
	var ids []string
	if patient != "" {
		if who != patient {
			return nil, fmt.Errorf("%w: only the patient lists its consents; grantees list their own without --patient", ErrUnauthorized)
		}
		var err error
		if ids, err = scanIDs(a.store, []byte("pconsent/"+patient+"/")); err != nil {
			return nil, err
		}
	} else {
		act, err := a.actor(a.store, who)
		if err != nil {
			return nil, err
		}
		holders := []string{who}
		if act.Org != "" {
			holders = append(holders, act.Org)
		}
		for _, h := range holders {
			more, err := scanIDs(a.store, []byte("gconsent/"+h+"/"))
			if err != nil {
				return nil, err
			}
			ids = append(ids, more...)
		}
	}
	out := []Consent{}
	for _, id := range ids {
		var c Consent
		if err := getJSON(a.store, consentKey(id), &c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// GetConsent reads one consent.
func (a *App) GetConsent(id string) (*Consent, error) {
	var c Consent
	if err := getJSON(a.store, consentKey(id), &c); err != nil {
		return nil, fmt.Errorf("consent %s: %w", id, err)
	}
	return &c, nil
}

// AccessLog lists the access events of a patient's records, oldest first.
func (a *App) AccessLog(patient string) ([]AccessEvent, error) {
	evs, _, err := a.AccessLogPage(patient, Page{})
	return evs, err
}

// AccessLogPage is AccessLog a page at a time; a page's After is the
// cursor the page before returned (the last event's key within the log).
func (a *App) AccessLogPage(patient string, pg Page) ([]AccessEvent, string, error) {
	prefix := "access/" + patient + "/"
	out, next, last := []AccessEvent{}, "", ""
	var inner error
	err := a.store.ScanAfter([]byte(prefix), []byte(pg.After), func(k, v []byte) bool {
		if pg.Limit > 0 && len(out) == pg.Limit {
			next = last // one more remains
			return false
		}
		var ev AccessEvent
		if inner = decodeEntry(k, v, func(b []byte) error { return jsonUnmarshal(b, &ev) }); inner != nil {
			return false
		}
		out, last = append(out, ev), string(k[len(prefix):])
		return true
	})
	if err = errors.Join(err, inner); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// Epochs returns the patient's current key epoch of every category.
func (a *App) Epochs(patient string) (map[string]Epoch, error) {
	out := map[string]Epoch{}
	for _, c := range consent.Categories {
		ep, err := getEpoch(a.store, patient, c)
		if err != nil {
			return nil, fmt.Errorf("epoch of %s for %s: %w", patient, c, err)
		}
		out[c] = ep
	}
	return out, nil
}

// KeyEnvelope returns the blob name of epoch's key wrapped to holder.
func (a *App) KeyEnvelope(patient, category string, epoch uint64, holder string) (string, error) {
	b, err := a.store.Get(keyEnvKey(patient, category, epoch, holder))
	if errors.Is(err, state.ErrNotFound) {
		return "", ErrNotFound
	}
	return string(b), err
}

// Members lists an organization's members.
func (a *App) Members(org string) ([]string, error) {
	return scanIDs(a.store, []byte("orgmember/"+org+"/"))
}

// AuthorizeRead decides a read from committed state, as FinalizeBlock will
// decide it again from the state of its block.
func (a *App) AuthorizeRead(who, id, purpose string) (string, *Record, error) {
	return a.authorizeRead(a.store, nil, who, id, purpose, a.BlockTime())
}

// AuthorizeRecord decides, as AuthorizeRead does, a read of a record the
// caller has already read from committed state (GetRecord): the consent
// evaluation without the record lookup. It returns the consent that
// allows the read ("" for the patient and the author).
func (a *App) AuthorizeRecord(who string, rec *Record, purpose string) (string, error) {
	return a.authorizeRecord(a.store, nil, who, rec, purpose, a.BlockTime())
}

// Blobs lists every blob the committed state names: each record's
// ciphertext and envelopes, and every wrapped epoch key. A node that was
// away fetches the ones it lacks.
func (a *App) Blobs(fn func(name string)) error {
	err := a.store.Scan([]byte("record/"), func(_, v []byte) bool {
		var r Record
		if err := decodeRecord(v, &r); err == nil {
			for _, b := range r.Blobs() {
				fn(b)
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return a.store.Scan([]byte("keyenv/"), func(_, v []byte) bool {
		fn(string(v))
		return true
	})
}

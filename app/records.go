package app

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

// Limits on what a record or a grant may carry.
const (
	MaxRecordSize     = 64 << 20
	maxContentTypeLen = 128
	maxKeyEnvelopes   = 1024
)

// Record is a record as the ledger holds it: who, what kind, and hashes.
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

// Blobs returns the hashes of the blobs the record needs.
func (r *Record) Blobs() []string { return []string{r.Ciphertext, r.EpochEnv, r.SelfEnv} }

// Consent is a consent contract with its place on the ledger.
type Consent struct {
	consent.Consent
	Height        int64 `json:"height"`
	RevokedHeight int64 `json:"revoked_height,omitempty"`
}

// Epoch is a patient's current key epoch for a category.
type Epoch struct {
	Epoch uint64 `json:"epoch"`
	Key   []byte `json:"key"`
}

// AccessEvent is one disclosure, as the patient reads it.
type AccessEvent struct {
	Record   string `json:"record"`
	Accessor string `json:"accessor"`
	Purpose  string `json:"purpose"`
	Consent  string `json:"consent"`
	Height   int64  `json:"height"`
	Time     int64  `json:"time"`
	Note     string `json:"note,omitempty"`
}

func recordKey(id string) []byte { return []byte("record/" + id) }
func patientRecordKey(p, id string) []byte {
	return []byte("precord/" + p + "/" + id)
}
func consentKey(id string) []byte           { return []byte("consent/" + id) }
func patientConsentKey(p, id string) []byte { return []byte("pconsent/" + p + "/" + id) }
func granteeConsentKey(g, id string) []byte { return []byte("gconsent/" + g + "/" + id) }
func epochKey(p, cat string) []byte         { return []byte("epoch/" + p + "/" + cat) }
func epochNumKey(p, cat string) []byte      { return []byte("epochnum/" + p + "/" + cat) }
func keyEnvKey(p, cat string, epoch uint64, holder string) []byte {
	return fmt.Appendf(nil, "keyenv/%s/%s/%020d/%s", p, cat, epoch, holder)
}
func accessKey(p string, height int64, hash string) []byte {
	return fmt.Appendf(nil, "access/%s/%020d/%s", p, height, hash)
}

// record reads record id through r. A committed record never changes, so
// once read from committed state it is kept decoded; a record written by the
// block in progress is read from r and not kept.
func (a *App) record(r reader, id string) (Record, error) {
	if rec, ok := a.cache.record(id); ok {
		return rec, nil
	}
	rec, err := getRecord(a.store, id)
	if err == nil {
		a.cache.putRecord(rec)
		return rec, nil
	}
	if !errors.Is(err, ErrNotFound) || r == reader(a.store) {
		return Record{}, err
	}
	return getRecord(r, id)
}

// getRecord reads record id from r.
func getRecord(r reader, id string) (Record, error) {
	var rec Record
	if err := getDecoded(r, recordKey(id), func(b []byte) error { return decodeRecord(b, &rec) }); err != nil {
		return Record{}, err
	}
	return rec, nil
}

func getJSON(r reader, key []byte, v any) error {
	return getDecoded(r, key, func(b []byte) error { return jsonUnmarshal(b, v) })
}

// getDecoded reads key from r and decodes it: ErrNotFound when absent, a
// corrupt-entry error naming the key when it does not decode.
func getDecoded(r reader, key []byte, decode func([]byte) error) error {
	b, err := r.Get(key)
	if errors.Is(err, state.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return decodeEntry(key, b, decode)
}

// decodeEntry decodes the value b of key, or says the entry is corrupt.
func decodeEntry(key, b []byte, decode func([]byte) error) error {
	if err := decode(b); err != nil {
		return fmt.Errorf("state holds a corrupt entry %q: %w", key, err)
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func putJSON(w writer, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Set(key, b)
	return nil
}

// validHash reports whether s is a SHA-256 in lowercase hex, as blob names
// are.
func validHash(s string) bool { return blob.ValidName(s) }

// checkEpochs validates a set of epoch public keys: known categories, each
// once, each a valid HPKE key.
func (a *App) checkEpochs(eps []tx.EpochPub) error {
	seen := map[string]bool{}
	for _, e := range eps {
		if !consent.ValidCategory(e.Category) {
			return fmt.Errorf("%w: epoch key for unknown category %q", ErrInvalid, e.Category)
		}
		if seen[e.Category] {
			return fmt.Errorf("%w: two epoch keys for %s", ErrInvalid, e.Category)
		}
		seen[e.Category] = true
		if !a.keys.valid(e.Key) {
			return fmt.Errorf("%w: epoch key for %s is not an ML-KEM-768+X25519 public key", ErrInvalid, e.Category)
		}
	}
	return nil
}

func (a *App) patientEpochs(e env, p string, eps []tx.EpochPub) error {
	if len(eps) != len(consent.Categories) {
		return fmt.Errorf("%w: a patient publishes an epoch key for each of the %d categories", ErrInvalid, len(consent.Categories))
	}
	if err := a.checkEpochs(eps); err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.Epoch != 0 {
			return fmt.Errorf("%w: first epochs are 0", ErrInvalid)
		}
		if err := putEpoch(e.w, p, ep.Category, Epoch{Epoch: 0, Key: ep.Key}); err != nil {
			return err
		}
	}
	return nil
}

// putEpoch writes an epoch, and its number alone beside it: every record
// write checks the number, and decoding the key each time would cost more
// than the rest of the check.
func putEpoch(w writer, p, cat string, ep Epoch) error {
	w.Set(epochNumKey(p, cat), binary.BigEndian.AppendUint64(nil, ep.Epoch))
	return putJSON(w, epochKey(p, cat), ep)
}

// epochNum returns the current epoch number of the patient's category.
func epochNum(r reader, p, cat string) (uint64, error) {
	b, err := r.Get(epochNumKey(p, cat))
	if errors.Is(err, state.ErrNotFound) {
		return 0, fmt.Errorf("epoch of %s for %s: %w", p, cat, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("state holds a corrupt epoch number for %s", p)
	}
	return binary.BigEndian.Uint64(b), nil
}

// epochOf is epochNum, remembered in m for the rest of a batch.
func (a *App) epochOf(e env, p, cat, pair string, m *batchMemo) (uint64, error) {
	if m != nil {
		if n, ok := m.epochs[pair]; ok {
			return n, nil
		}
	}
	n, err := a.currentEpoch(e, p, cat)
	if err == nil && m != nil {
		m.epochs[pair] = n
	}
	return n, err
}

// currentEpoch is epochNum through the cache of committed epoch numbers. A
// block reads around it for the patients it touches, and for patients it
// registers (absent from committed state, and never cached as absent).
func (a *App) currentEpoch(e env, p, cat string) (uint64, error) {
	if e.touched()[p] {
		return epochNum(e.w, p, cat)
	}
	if n, ok := a.cache.epoch(p, cat); ok {
		return n, nil
	}
	gen := a.cache.generation()
	n, err := epochNum(a.store, p, cat)
	if err == nil {
		a.cache.putEpoch(gen, p, cat, n)
		return n, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	return epochNum(e.w, p, cat)
}

func getEpoch(r reader, p, cat string) (Epoch, error) {
	var ep Epoch
	err := getJSON(r, epochKey(p, cat), &ep)
	return ep, err
}

func (a *App) recordBatch(e env, t *tx.Tx, b *tx.RecordBatch) error {
	if len(b.Records) == 0 || len(b.Records) > tx.MaxBatchRecords {
		return fmt.Errorf("%w: a batch holds 1 to %d records", ErrInvalid, tx.MaxBatchRecords)
	}
	// One author, one block time, no epoch change: the write decision and
	// the current epoch depend only on the patient and the category, so
	// each pair is looked up once per batch.
	m := &batchMemo{allowed: map[string]bool{}, epochs: map[string]uint64{}}
	for i := range b.Records {
		if err := a.putRecord(e, t, &b.Records[i], m); err != nil {
			return fmt.Errorf("record %d of the batch: %w", i, err)
		}
	}
	return nil
}

func (a *App) recordPut(e env, t *tx.Tx, b *tx.RecordPut) error {
	return a.putRecord(e, t, b, nil)
}

// batchMemo remembers, within one record batch, what depends only on the
// patient and the category.
type batchMemo struct {
	allowed map[string]bool   // pairs the author may write
	epochs  map[string]uint64 // current epoch of each pair
}

// putRecord checks and writes one record by t's signer. m, if not nil,
// remembers per patient and category what a batch already looked up.
func (a *App) putRecord(e env, t *tx.Tx, b *tx.RecordPut, m *batchMemo) error {
	if err := checkRecord(b); err != nil {
		return err
	}
	p, err := a.actor(e.w, b.Patient)
	if err != nil || p.Kind != KindPatient {
		return fmt.Errorf("%w: %s is not a registered patient", ErrInvalid, b.Patient)
	}
	pair := b.Patient + "/" + b.Category
	if t.Signer != b.Patient && (m == nil || !m.allowed[pair]) {
		author, err := a.actor(e.w, t.Signer)
		if err != nil {
			return err
		}
		req := consent.Request{Requester: requesterOf(author), Action: consent.ActionWrite, Category: b.Category, Author: t.Signer, Time: e.time}
		if _, err := a.decide(e.w, e.touched(), b.Patient, req); err != nil {
			return err
		}
		if m != nil {
			m.allowed[pair] = true
		}
	}
	cur, err := a.epochOf(e, b.Patient, b.Category, pair, m)
	if err != nil {
		return err
	}
	if cur != b.Epoch {
		return fmt.Errorf("%w: record sealed to key epoch %d, the patient's current epoch for %s is %d; fetch it and seal again", ErrInvalid, b.Epoch, b.Category, cur)
	}
	if !e.final && m != nil {
		// CheckTx of a batch stops here: looking up every record ID would
		// cost more than the rest of the check, and FinalizeBlock refuses a
		// record that exists (and with it the whole batch).
		return nil
	}
	id := recordID(b)
	pre, prefetched := e.pre[id]
	if exists, err := recordExists(e, id, pre, prefetched); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("%w: record %s", ErrExists, id)
	}
	if !e.final {
		// CheckTx has decided everything it can; its writes would be thrown
		// away. (A batch naming one record twice fails in FinalizeBlock.)
		return nil
	}
	rec := newRecord(t.Signer, b, e.height, e.time)
	e.w.Set(patientRecordKey(b.Patient, id), nil)
	e.run.newBlobs = append(e.run.newBlobs, rec.Blobs()...)
	value := pre.value
	if !prefetched {
		var err error
		if value, err = encodeRecord(&rec); err != nil {
			return err
		}
	}
	e.w.Set(recordKey(id), value)
	return nil
}

// recordID is the ID of the record b registers: its ciphertext's hash,
// shortened.
func recordID(b *tx.RecordPut) string { return "r" + b.Ciphertext[:32] }

// newRecord is the record that author's b becomes in a block.
func newRecord(author string, b *tx.RecordPut, height, time int64) Record {
	return Record{ID: recordID(b), Patient: b.Patient, Author: author, Category: b.Category,
		ContentType: b.ContentType, Size: b.Size, Epoch: b.Epoch, Ciphertext: b.Ciphertext,
		Commitment: b.Commitment, EpochEnv: b.EpochEnv, SelfEnv: b.SelfEnv, Height: height, Time: time}
}

// recordExists reports whether record id is committed or written earlier
// in the block. For the committed state, a block that defers the question
// (idcheck.go) takes the ID to be new and notes it; otherwise pre, if
// prefetched, answers.
func recordExists(e env, id string, pre recordPrefetch, prefetched bool) (bool, error) {
	key := recordKey(id)
	if v, written := e.w.Pending(key); written {
		return v != nil, nil
	}
	switch {
	case e.run != nil && e.run.assumeNew:
		e.run.assumed = append(e.run.assumed, key)
		return false, nil
	case prefetched:
		return pre.committed, nil
	}
	return has(e.w, key)
}

func checkRecord(b *tx.RecordPut) error {
	switch {
	case !consent.ValidCategory(b.Category):
		return fmt.Errorf("%w: category %q; use one of %s", ErrInvalid, b.Category, strings.Join(consent.Categories, ", "))
	case b.ContentType == "" || len(b.ContentType) > maxContentTypeLen || strings.ContainsAny(b.ContentType, " \t\r\n"):
		return fmt.Errorf("%w: content type must be a MIME type of at most %d bytes", ErrInvalid, maxContentTypeLen)
	case b.Size < 0 || b.Size > MaxRecordSize:
		return fmt.Errorf("%w: size %d outside 0-%d", ErrInvalid, b.Size, MaxRecordSize)
	case !validHash(b.Ciphertext) || !validHash(b.Commitment) || !validHash(b.EpochEnv) || !validHash(b.SelfEnv):
		return fmt.Errorf("%w: hashes must be 64 lowercase hex digits", ErrInvalid)
	}
	return nil
}

// requesterOf is who a is in a consent request: interned if a came from
// the cache.
func requesterOf(a *Actor) consent.Requester {
	if a.requester.ID == a.ID && a.requester.Role == a.Role && a.requester.Org == a.Org {
		return a.requester
	}
	return consent.Requester{ID: a.ID, Role: a.Role, Org: a.Org}
}

// decide evaluates the patient's consents for req, in consent ID order.
func (a *App) decide(r reader, touched map[string]bool, patient string, req consent.Request) (consent.Decision, error) {
	cs, err := a.consentsOf(r, touched, patient)
	if err != nil {
		return consent.Decision{}, err
	}
	return a.decideBy(cs, req)
}

// decideBy evaluates consents cs for req: an error unless they allow it.
func (a *App) decideBy(cs *consent.Set, req consent.Request) (consent.Decision, error) {
	d, err := cs.Evaluate(req, a.programs.compile)
	if err != nil {
		return d, err
	}
	if !d.Allowed {
		return d, fmt.Errorf("%w: %s", ErrUnauthorized, d.Reason)
	}
	return d, nil
}

// consentsOf returns a patient's consents, in ID order, as a consent.Set.
// A block in progress reads through its delta for each one the committed
// index names; consents granted earlier in the same block are found
// through the delta's own keys.
//
// touched are the patients whose consents the block in progress has
// changed (nil outside FinalizeBlock: CheckTx and queries judge by
// committed state).
func (a *App) consentsOf(r reader, touched map[string]bool, patient string) (*consent.Set, error) {
	fromCommitted := !touched[patient]
	var gen uint64
	if fromCommitted {
		if cs, ok := a.cache.patientConsents(patient); ok {
			return cs, nil
		}
		gen = a.cache.generation()
		r = a.store
	}
	cs, err := readConsents(r, patient)
	if err != nil {
		return nil, err
	}
	if fromCommitted {
		return a.cache.putConsents(gen, patient, cs), nil
	}
	return consent.NewSet(cs), nil
}

func readConsents(r reader, patient string) ([]consent.Consent, error) {
	ids, err := scanIDs(r, []byte("pconsent/"+patient+"/"))
	if err != nil {
		return nil, err
	}
	out := make([]consent.Consent, 0, len(ids))
	for _, id := range ids {
		var c Consent
		if err := getJSON(r, consentKey(id), &c); err != nil {
			return nil, err
		}
		out = append(out, c.Consent)
	}
	return out, nil
}

// blobNames lists the blobs a transaction body names.
func blobNames(body any) []string {
	var names []string
	switch b := body.(type) {
	case *tx.RecordPut:
		names = []string{b.Ciphertext, b.EpochEnv, b.SelfEnv}
	case *tx.RecordBatch:
		for _, r := range b.Records {
			names = append(names, r.Ciphertext, r.EpochEnv, r.SelfEnv)
		}
	case *tx.ConsentGrant:
		for _, k := range b.Keys {
			names = append(names, k.Blob)
		}
	case *tx.ConsentRevoke:
		for _, k := range b.Keys {
			names = append(names, k.Blob)
		}
	}
	return names
}

package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// BlobBackend is the part of the node that holds and replicates blobs.
type BlobBackend interface {
	// StoreBlobs keeps blobs locally and on enough peers to survive f
	// failures, returning how many nodes hold them.
	StoreBlobs(ctx context.Context, blobs *blob.Batch) (int, error)
	// Blob returns a blob from the local store, fetching it from a peer if
	// it is missing here.
	Blob(ctx context.Context, name string) ([]byte, error)
	// HasBlob reports whether the local store holds name.
	HasBlob(name string) bool
	// PeerRequest authenticates a request signed by a peer node.
	PeerRequest(r *http.Request, body []byte) error
	// PeerKnown checks what a peer's request header says without its body:
	// well formed, fresh, and from one of this node's peers.
	PeerKnown(r *http.Request) error
	// KeepBlobs stores blobs a peer pushed.
	KeepBlobs(blobs *blob.Batch) error
}

// ReadResult is the body of a successful record read.
type ReadResult struct {
	Record     app.Record `json:"record"`
	Consent    string     `json:"consent,omitempty"`
	Height     int64      `json:"height"`
	Ciphertext []byte     `json:"ciphertext"`
	EpochEnv   []byte     `json:"epoch_env"`
	KeyEnv     []byte     `json:"key_env,omitempty"`
	KeyKind    string     `json:"key_kind"` // "patient", "author" or "grantee"
}

// readBody reads r's body, at most limit bytes. With presize, into a
// buffer of the announced length (uploads: a 2 MiB batch of blobs read
// into a buffer grown as the bytes came was copied a dozen times); only
// for bodies whose length UploadBudget has already counted, since the
// buffer is taken before the bytes arrive.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request, limit int64, presize bool) ([]byte, bool) {
	body := http.MaxBytesReader(w, r.Body, limit)
	var b []byte
	var err error
	if n := r.ContentLength; presize && n >= 0 && n <= limit {
		b = make([]byte, n)
		_, err = io.ReadFull(body, b)
	} else {
		b, err = io.ReadAll(body)
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		return nil, false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		writeError(w, http.StatusRequestTimeout, fmt.Sprintf("request body arrived too slowly (an upload gets 30 s plus a second per %d bytes); send it again", MinUploadRate))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return nil, false
	}
	return b, true
}

func (h *handler) putBlob(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("hash")
	if !blob.ValidName(name) {
		writeError(w, http.StatusBadRequest, blob.ErrBadName.Error())
		return
	}
	body, release, ok := h.uploadBody(w, r, blob.MaxSize)
	if !ok {
		return
	}
	defer release()
	batch, err := blob.NewBatch([][]byte{body})
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if batch.Names()[0] != name {
		writeError(w, http.StatusBadRequest, "blob bytes do not hash to "+name)
		return
	}
	if _, err := h.authenticate(r, body); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	copies, err := h.blobs.StoreBlobs(r.Context(), batch)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"blob": name, "copies": copies})
}

// UploadBudget bounds the bytes of upload bodies a node holds at once,
// read or being stored: a signature can only be checked once the body is
// read, and an upload's claimed sender only needs a registered actor's ID
// and the time, so without it a few requests of 256 MiB each would take
// the node's memory. Uploads beyond it wait for their turn. Peers' pushes
// have a budget of their own: an actor's upload holds its bytes while the
// node pushes them to its peers, and if the pushes needed the same budget
// on the peers, two nodes full of uploads would each wait for the other.
const UploadBudget = 512 << 20

// uploadBody reads an upload's body, at most limit bytes, once it is not
// too large and could be from an actor or a peer, under UploadBudget.
// release gives the bytes back; call it once the body is no longer used.
func (h *handler) uploadBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), ok bool) {
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		return nil, nil, false
	}
	budget := h.uploads
	switch {
	case r.Header.Get("Authorization") != "":
		if _, _, _, err := h.preauth(r); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return nil, nil, false
		}
	case r.Header.Get(PeerHeader) != "":
		if err := h.blobs.PeerKnown(r); err != nil {
			writeError(w, http.StatusUnauthorized, "sign the request as an actor, or as a configured peer node")
			return nil, nil, false
		}
		budget = h.pushes
	default:
		writeError(w, http.StatusUnauthorized, "sign the upload as an actor (Authorization) or as a peer node")
		return nil, nil, false
	}
	n := limit
	if r.ContentLength >= 0 {
		n = r.ContentLength
	}
	if err := budget.Acquire(r.Context(), n); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the node is busy storing other uploads; retry")
		return nil, nil, false
	}
	release = func() { budget.Release(n) }
	if h.slowest != nil {
		// Not supported by every ResponseWriter (test recorders); the
		// server's ReadTimeout still holds there.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.slowest(n)))
	}
	if body, ok = h.readBody(w, r, limit, true); !ok {
		release()
		return nil, nil, false
	}
	return body, release, true
}

// putBlobs stores a framed batch of blobs (blob.EncodeBatch), from a client
// (signed by an actor; replicated before the answer) or from a peer node.
func (h *handler) putBlobs(w http.ResponseWriter, r *http.Request) {
	body, release, ok := h.uploadBody(w, r, blob.MaxBatch)
	if !ok {
		return
	}
	defer release()
	blobs, err := blob.DecodeBatch(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Who sent it is checked before the blobs are hashed: the signature
	// covers the body, so an unsigned batch costs one hash of it, not one
	// per blob and their names.
	peer := r.Header.Get("Authorization") == ""
	if peer {
		if err := h.blobs.PeerRequest(r, body); err != nil {
			writeError(w, http.StatusUnauthorized, "sign the request as an actor, or as a configured peer node")
			return
		}
	} else if _, err := h.authenticate(r, body); err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	batch, err := blob.NewBatch(blobs)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	names := batch.Names()
	if peer {
		if err := h.blobs.KeepBlobs(batch); err != nil {
			h.internal(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"blobs": names, "copies": 1})
		return
	}
	copies, err := h.blobs.StoreBlobs(r.Context(), batch)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"blobs": names, "copies": copies})
}

func (h *handler) getBlob(w http.ResponseWriter, r *http.Request) {
	if err := h.blobs.PeerRequest(r, nil); err != nil {
		writeError(w, http.StatusForbidden, "blobs are served to peer nodes only; read records with POST /v1/records/{id}/read")
		return
	}
	name := r.PathValue("hash")
	if !h.blobs.HasBlob(name) {
		writeError(w, http.StatusNotFound, "no blob "+name+" here")
		return
	}
	b, err := h.blobs.Blob(r.Context(), name)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

// readRecord serves a record to a reader the ledger allows. For anyone but
// the patient, the signed access request is first made durable on this node
// and queued for the ledger, where an access batch records it.
func (h *handler) readRecord(w http.ResponseWriter, r *http.Request) {
	raw, t, body, ok := h.accessRequest(w, r)
	if !ok {
		return
	}
	acc, isAccess := body.(*tx.Access)
	if !isAccess || acc.Record != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, "the body must be an access transaction for this record")
		return
	}
	g, ok := h.allow(w, t.Signer, acc.Record, acc.Purpose, nil)
	if !ok || !h.disclose(w, raw, t, []grant{g}) {
		return
	}
	out, err := h.readResult(r.Context(), g, h.b.Status().Height, nil)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// readRecords serves several records under one signed access.many request:
// all of them, if the ledger allows the reader every one, or none.
func (h *handler) readRecords(w http.ResponseWriter, r *http.Request) {
	raw, t, body, ok := h.accessRequest(w, r)
	if !ok {
		return
	}
	many, isMany := body.(*tx.AccessMany)
	if !isMany {
		writeError(w, http.StatusBadRequest, "the body must be an access.many transaction")
		return
	}
	if err := many.Check(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	gs := make([]grant, len(many.Records))
	var declared int64
	sh := newShared()
	for i, id := range many.Records {
		if gs[i], ok = h.allow(w, t.Signer, id, many.Purpose, sh); !ok {
			return
		}
		declared += gs[i].rec.Size
	}
	if declared > MaxReadBytes {
		writeError(w, http.StatusBadRequest, tooMuch)
		return
	}
	if !h.disclose(w, raw, t, gs) {
		return
	}
	height := h.b.Status().Height
	out := make([]ReadResult, len(gs))
	served := 0
	for i, g := range gs {
		var err error
		if out[i], err = h.readResult(r.Context(), g, height, sh); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		// The sizes are the authors' word; the bytes are what a node
		// holds in memory and writes out, envelopes included (each is a
		// blob its author chose). Twice the bound leaves room for what
		// sealing adds to honest records.
		if served += len(out[i].Ciphertext) + len(out[i].EpochEnv) + len(out[i].KeyEnv); served > 2*MaxReadBytes {
			writeError(w, http.StatusBadRequest, tooMuch)
			return
		}
	}
	writeJSON(w, http.StatusOK, ReadResults{Reads: out})
}

// MaxReadBytes bounds the records one access.many request is served, by
// their sizes on the ledger: as much as one record of the largest size.
const MaxReadBytes = app.MaxRecordSize

const tooMuch = "these records together hold more than the 64 MiB one request serves; read them in smaller groups"

// ReadResults is the body of a successful access.many read, one result per
// record in the order the request named them.
type ReadResults struct {
	Reads []ReadResult `json:"reads"`
}

// accessRequest reads and verifies a signed access request.
func (h *handler) accessRequest(w http.ResponseWriter, r *http.Request) ([]byte, *tx.Tx, any, bool) {
	raw, ok := h.readBody(w, r, tx.MaxSize, false)
	if !ok {
		return nil, nil, nil, false
	}
	t, body, err := h.b.App().VerifyTx(raw)
	if err != nil {
		writeJSON(w, httpStatus(app.CodeOf(err)), Error{Error: err.Error()})
		return nil, nil, nil, false
	}
	return raw, t, body, true
}

// grant is one record a reader may read, and the key that opens it.
type grant struct {
	rec           *app.Record
	consent       string
	kind, keyBlob string
}

// allow decides whether who may read record id, and answers the request
// with the reason when not.
func (h *handler) allow(w http.ResponseWriter, who, id, purpose string, sh *shared) (grant, bool) {
	consentID, rec, err := h.b.App().AuthorizeRead(who, id, purpose)
	if err != nil {
		if !errors.Is(err, app.ErrNotFound) {
			err = fmt.Errorf("record %s: %w", id, err)
		}
		h.txError(w, err)
		return grant{}, false
	}
	// A reader with no key for this record could decrypt nothing: refuse
	// before an access event is written for a read that cannot happen.
	kind, keyBlob, err := h.keyFor(rec, who, sh)
	if err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return grant{}, false
	}
	return grant{rec: rec, consent: consentID, kind: kind, keyBlob: keyBlob}, true
}

// disclose refuses a stale or replayed request and, unless every record is
// the reader's own, makes the request durable and queues it for the ledger
// before a byte is served. The patient's own reads leave no event.
func (h *handler) disclose(w http.ResponseWriter, raw []byte, t *tx.Tx, gs []grant) bool {
	if d := time.Since(time.Unix(0, int64(t.Nonce))); d > MaxSkew || d < -MaxSkew || !h.replays.fresh(t.Sig, time.Now()) {
		writeError(w, http.StatusUnauthorized, "stale or replayed read request; sign a new one")
		return false
	}
	if !slices.ContainsFunc(gs, func(g grant) bool { return g.rec.Patient != t.Signer }) {
		return true
	}
	if err := h.b.RecordAccess(raw); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error()+"; nothing was served, retry")
		return false
	}
	return true
}

// keyFor says which key opens rec for who: the patient's own, the author's
// envelope, or a grantee's envelope of the record's key epoch.
func (h *handler) keyFor(rec *app.Record, who string, sh *shared) (kind, keyBlob string, err error) {
	switch who {
	case rec.Patient:
		return "patient", "", nil
	case rec.Author:
		return "author", rec.SelfEnv, nil
	}
	keyBlob, err = sh.key(fmt.Sprintf("%s/%s/%d", rec.Patient, rec.Category, rec.Epoch), func() (string, error) { return h.grantKey(rec, who) })
	return "grantee", keyBlob, err
}

// readResult gathers what a reader needs to open g's record.
func (h *handler) readResult(ctx context.Context, g grant, height int64, sh *shared) (ReadResult, error) {
	out := ReadResult{Record: *g.rec, Consent: g.consent, Height: height, KeyKind: g.kind}
	for _, p := range []struct {
		name string
		dst  *[]byte
	}{{g.rec.Ciphertext, &out.Ciphertext}, {g.rec.EpochEnv, &out.EpochEnv}, {g.keyBlob, &out.KeyEnv}} {
		if p.name == "" {
			continue
		}
		var err error
		if *p.dst, err = sh.blob(p.name, func() ([]byte, error) { return h.blobs.Blob(ctx, p.name) }); err != nil {
			return ReadResult{}, fmt.Errorf("record %s: %v; retry when a peer holding it is up", g.rec.ID, err)
		}
	}
	return out, nil
}

// shared remembers, for one request, what its records share: records of
// one patient, category and key epoch share the reader's key envelope.
// A nil *shared remembers nothing.
type shared struct {
	keys  map[string]string // "patient/category/epoch" -> key envelope blob
	blobs map[string][]byte
}

func newShared() *shared { return &shared{keys: map[string]string{}, blobs: map[string][]byte{}} }

func (sh *shared) key(k string, find func() (string, error)) (string, error) {
	if sh == nil {
		return find()
	}
	return remember(sh.keys, k, find)
}

func (sh *shared) blob(name string, fetch func() ([]byte, error)) ([]byte, error) {
	if sh == nil {
		return fetch()
	}
	return remember(sh.blobs, name, fetch)
}

// remember returns m[k], or what find answers, kept in m if it succeeds.
func remember[V any](m map[string]V, k string, find func() (V, error)) (V, error) {
	if v, ok := m[k]; ok {
		return v, nil
	}
	v, err := find()
	if err == nil {
		m[k] = v
	}
	return v, err
}

// grantKey finds the envelope of the record's key epoch wrapped to who.
func (h *handler) grantKey(rec *app.Record, who string) (string, error) {
	if b, err := h.b.App().KeyEnvelope(rec.Patient, rec.Category, rec.Epoch, who); err == nil {
		return b, nil
	}
	return "", fmt.Errorf("%w: the patient has not shared key epoch %d of %s with %s (a member who joined after an organization grant needs a new grant); ask the patient to grant again", app.ErrUnauthorized, rec.Epoch, rec.Category, who)
}

// txError answers an error from the application with its status.
func (h *handler) txError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, app.ErrUnauthorized):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, app.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, app.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		h.internal(w, err)
	}
}

func (h *handler) listRecords(w http.ResponseWriter, r *http.Request) {
	who, ok := h.signed(w, r)
	if !ok {
		return
	}
	patient := r.URL.Query().Get("patient")
	if !ident.ValidID(patient) {
		writeError(w, http.StatusBadRequest, "say whose records: ?patient=ID")
		return
	}
	pg, ok := page(w, r)
	if !ok {
		return
	}
	recs, next, err := h.b.App().RecordsPage(who.ID, patient, pg)
	if err != nil {
		h.txError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, paged("records", recs, next))
}

// page reads a listing's optional page: ?limit=N (1 to app.MaxPageLimit)
// and ?after=CURSOR, the next of the page before. Without limit a listing
// is whole, as it always was.
func page(w http.ResponseWriter, r *http.Request) (app.Page, bool) {
	q := r.URL.Query()
	var pg app.Page
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > app.MaxPageLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a number from 1 to %d", app.MaxPageLimit))
			return pg, false
		}
		pg.Limit = n
	}
	pg.After = q.Get("after")
	if len(pg.After) > maxCursor || strings.ContainsFunc(pg.After, func(c rune) bool { return c <= ' ' || c > '~' }) {
		writeError(w, http.StatusBadRequest, "after must be the next cursor of the page before, as the node returned it")
		return pg, false
	}
	return pg, true
}

// maxCursor bounds a page cursor: an access event's key within its log is
// a height, a transaction hash and a record ID.
const maxCursor = 256

// paged is a listing's answer: its entries under name, and the cursor of
// its next page when it was cut short.
func paged(name string, entries any, next string) map[string]any {
	m := map[string]any{name: entries}
	if next != "" {
		m["next"] = next
	}
	return m
}

func (h *handler) listConsents(w http.ResponseWriter, r *http.Request) {
	who, ok := h.signed(w, r)
	if !ok {
		return
	}
	cs, err := h.b.App().Consents(who.ID, r.URL.Query().Get("patient"))
	if err != nil {
		h.txError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"consents": cs})
}

func (h *handler) accessLog(w http.ResponseWriter, r *http.Request) {
	who, ok := h.signed(w, r)
	if !ok {
		return
	}
	patient := r.URL.Query().Get("patient")
	if patient == "" {
		patient = who.ID
	}
	if patient != who.ID {
		writeError(w, http.StatusForbidden, "only the patient reads its access log")
		return
	}
	pg, ok := page(w, r)
	if !ok {
		return
	}
	evs, next, err := h.b.App().AccessLogPage(patient, pg)
	if err != nil {
		h.txError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, paged("events", evs, next))
}

func (h *handler) epochs(w http.ResponseWriter, r *http.Request) {
	eps, err := h.b.App().Epochs(r.PathValue("id"))
	if err != nil {
		h.txError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"epochs": eps})
}

func (h *handler) members(w http.ResponseWriter, r *http.Request) {
	ms, err := h.b.App().Members(r.PathValue("id"))
	if err != nil {
		h.internal(w, err)
		return
	}
	if ms == nil {
		ms = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

// signed authenticates a GET request.
func (h *handler) signed(w http.ResponseWriter, r *http.Request) (*app.Actor, bool) {
	a, err := h.authenticate(r, nil)
	if err != nil {
		writeError(w, http.StatusUnauthorized, err.Error())
		return nil, false
	}
	return a, true
}

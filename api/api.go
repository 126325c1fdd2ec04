// Package api is the node's HTTP JSON interface: status, identities and
// transaction submission. Handlers decide nothing themselves: authorization
// comes from the ledger through the application, and every request that
// acts for someone carries that actor's signature.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// ErrUnavailable reports a node that cannot take the request now.
var ErrUnavailable = errors.New("node unavailable")

// Status is the body of GET /v1/status.
type Status struct {
	ChainID    string `json:"chain_id"`
	Height     int64  `json:"height"`
	NodeID     string `json:"node_id"`
	Validators int    `json:"validators"`
	AppHash    string `json:"app_hash"`
	Peers      int    `json:"peers"`
}

// Backend is the node as the handlers see it.
type Backend interface {
	Status() Status
	App() *app.App
	Submit(ctx context.Context, raw []byte) (app.Result, error)
	// RecordAccess makes a served read durable and queues its access event
	// for the ledger.
	RecordAccess(raw []byte) error
}

// SubmitTimeout bounds how long a submission waits for its block.
const SubmitTimeout = 30 * time.Second

type handler struct {
	b       Backend
	blobs   BlobBackend
	maxBody int64
	log     *slog.Logger
	replays replayCache
	uploads *semaphore.Weighted // bytes of actors' upload bodies being read or stored; see uploadBody
	pushes  *semaphore.Weighted // the same for peers' pushes
	// slowest is the time an upload of n bytes may take to arrive once it
	// holds its share of the budget; nil: the server's ReadTimeout alone.
	slowest func(n int64) time.Duration
}

// ReadTimeout bounds the time a request, body included, may take to
// arrive: a client that sends its body slower than that loses the
// connection instead of holding the node's memory. An upload is given
// its own deadline instead (UploadTime), from when it gets its share of
// the upload budget.
const ReadTimeout = 60 * time.Second

// MinUploadRate is the slowest an upload's body may arrive, in bytes per
// second, after a grace of 30 s: a 256 MiB batch has 4 min 46 s.
const MinUploadRate = 1 << 20

// UploadTime is the time an upload of n bytes may take to arrive.
func UploadTime(n int64) time.Duration {
	return 30*time.Second + time.Duration(n)*time.Second/MinUploadRate
}

// NewHandler returns the API's routes.
func NewHandler(b Backend, blobs BlobBackend, maxBody int64, log *slog.Logger) http.Handler {
	h := &handler{b: b, blobs: blobs, maxBody: maxBody, log: log, uploads: semaphore.NewWeighted(UploadBudget), pushes: semaphore.NewWeighted(UploadBudget), slowest: UploadTime}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("GET /v1/actors/{id}", h.actor)
	mux.HandleFunc("POST /v1/txs", h.submit)
	mux.HandleFunc("PUT /v1/blobs/{hash}", h.putBlob)
	mux.HandleFunc("POST /v1/blobs", h.putBlobs)
	mux.HandleFunc("GET /v1/blobs/{hash}", h.getBlob)
	mux.HandleFunc("POST /v1/records/{id}/read", h.readRecord)
	mux.HandleFunc("POST /v1/records/read", h.readRecords)
	mux.HandleFunc("GET /v1/records", h.listRecords)
	mux.HandleFunc("GET /v1/consents", h.listConsents)
	mux.HandleFunc("GET /v1/access", h.accessLog)
	mux.HandleFunc("GET /v1/patients/{id}/epochs", h.epochs)
	mux.HandleFunc("GET /v1/orgs/{id}/members", h.members)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return mux
}

func (h *handler) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.b.Status())
}

// ActorInfo is the body of GET /v1/actors/{id}.
type ActorInfo struct {
	app.Actor
	Nonce uint64 `json:"nonce"`
}

func (h *handler) actor(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ident.ValidID(id) {
		writeError(w, http.StatusBadRequest, "malformed actor ID; IDs look like mc1 followed by 40 hex digits")
		return
	}
	a, err := h.b.App().GetActor(id)
	if errors.Is(err, app.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("actor %s is not registered on this ledger", id))
		return
	}
	if err != nil {
		h.internal(w, err)
		return
	}
	nonce, err := h.b.App().Nonce(id)
	if err != nil {
		h.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ActorInfo{Actor: *a, Nonce: nonce})
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	raw, ok := h.readBody(w, r, min(h.maxBody, tx.MaxBatchSize), false)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), SubmitTimeout)
	defer cancel()
	res, err := h.b.Submit(ctx, raw)
	switch {
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error()+"; retry shortly")
		return
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err.Error())
		return
	case err != nil:
		h.internal(w, err)
		return
	}
	writeJSON(w, httpStatus(res.Code), res)
}

// httpStatus maps a result code to the HTTP status that fits it.
func httpStatus(code uint32) int {
	switch code {
	case app.CodeOK:
		return http.StatusOK
	case app.CodeMalformed, app.CodeInvalid:
		return http.StatusBadRequest
	case app.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case app.CodeBadSignature, app.CodeUnknownSigner:
		return http.StatusUnauthorized
	case app.CodeUnauthorized:
		return http.StatusForbidden
	case app.CodeReplay, app.CodeExists, app.CodeMissingBlob:
		return http.StatusConflict
	case app.CodeNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

func (h *handler) internal(w http.ResponseWriter, err error) {
	h.log.Error("api internal error", "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; see the node's log")
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Encoded whole, then written with its length: one write instead of a
	// chunked stream, and a failure to encode is still a clean error.
	// Encoded into a reused buffer: a record's answer is ~8 KB, and
	// json.Marshal's copy of it was a fifth of the bytes a one-record read
	// allocated, each bringing the next garbage collection cycle nearer
	// (docs/performance.md, "Reads at scale: the tail").
	buf := answerBufs.Get().(*bytes.Buffer)
	defer putAnswerBuf(buf)
	buf.Reset()
	b := []byte("{\"error\":\"internal error: encode response\"}\n")
	if err := json.NewEncoder(buf).Encode(v); err != nil { // Encode ends it with a newline, as Marshal's caller once did
		status = http.StatusInternalServerError
	} else {
		b = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// answerBufs holds the buffers writeJSON encodes answers into.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer bounds the buffers answerBufs keeps: a chart of 8
// records is answered in 60 – 80 KB, but the answer for a 1 MiB record is
// not worth holding for the next read.
const maxPooledAnswer = 256 << 10

func putAnswerBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledAnswer {
		answerBufs.Put(b)
	}
}

package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/tx"
)

// readFlag is a request body that records whether anyone read it.
type readFlag struct {
	r    io.Reader
	read bool
}

func (f *readFlag) Read(p []byte) (int, error) { f.read = true; return f.r.Read(p) }

// TestUploadSenderCheckedBeforeBody: an upload whose headers cannot be
// from a peer of this node, or from a registered actor, is refused before
// a byte of its body is read, whatever size it claims.
func TestUploadSenderCheckedBeforeBody(t *testing.T) {
	w := newFuzzWorld(t)
	doc := w.actors[2]
	for _, tc := range []struct {
		name, method, path string
		header             [2]string
	}{
		{"batch, a peer header from no peer", http.MethodPost, "/v1/blobs", [2]string{PeerHeader, "x"}},
		{"batch, a well-formed peer header from a stranger", http.MethodPost, "/v1/blobs", [2]string{PeerHeader, "abc:" + nowNanos() + ":AAAA:AAAA"}},
		{"one blob, a peer header", http.MethodPut, "/v1/blobs/" + blob.Hash([]byte("b")), [2]string{PeerHeader, "x"}},
		{"batch, an unregistered actor", http.MethodPost, "/v1/blobs", [2]string{"Authorization", tx.RequestScheme + " mc1" + strings.Repeat("a", 32) + ":" + nowNanos() + ":AAAA"}},
		{"batch, a registered actor's stale header", http.MethodPost, "/v1/blobs", [2]string{"Authorization", tx.RequestScheme + " " + doc.ID() + ":1:AAAA"}},
		{"batch, no header", http.MethodPost, "/v1/blobs", [2]string{"X-Nothing", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := &readFlag{r: strings.NewReader(strings.Repeat("\x00", 1<<16))}
			req := httptest.NewRequest(tc.method, tc.path, body)
			req.Header.Set(tc.header[0], tc.header[1])
			rec := httptest.NewRecorder()
			w.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d %s; want 401", rec.Code, rec.Body)
			}
			if body.read {
				t.Error("the body was read before the sender was refused")
			}
		})
	}
}

func nowNanos() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }

// TestUploadWaitsForTheBudget: while other uploads hold the whole upload
// budget, an upload waits, unread, and gives up with its request (503);
// once the budget is free it goes through, and gives its bytes back.
func TestUploadWaitsForTheBudget(t *testing.T) {
	w := newFuzzWorld(t)
	const budget = 1 << 20
	h := &handler{b: fuzzBackend{w.app}, blobs: w.blobs, maxBody: 1 << 20, log: slog.New(slog.DiscardHandler), uploads: semaphore.NewWeighted(budget), pushes: semaphore.NewWeighted(budget)}
	doc := w.actors[2]
	batch := blob.EncodeBatch([][]byte{[]byte("a blob uploaded under a budget")})
	upload := func(ctx context.Context) (*httptest.ResponseRecorder, *readFlag) {
		body := &readFlag{r: strings.NewReader(string(batch))}
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/blobs", body)
		req.ContentLength = int64(len(batch))
		req.Header.Set("Authorization", tx.SignRequest(fuzzChain, doc.ID(), doc.Sign, http.MethodPost, "/v1/blobs", time.Now().UnixNano(), batch))
		rec := httptest.NewRecorder()
		h.putBlobs(rec, req)
		return rec, body
	}
	if !h.uploads.TryAcquire(budget) {
		t.Fatal("a fresh budget is not free")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec, body := upload(ctx)
	if rec.Code != http.StatusServiceUnavailable || body.read {
		t.Fatalf("upload with the budget taken: status %d %s, body read %v; want 503, unread", rec.Code, rec.Body, body.read)
	}
	h.uploads.Release(budget)
	if rec, _ = upload(context.Background()); rec.Code != http.StatusOK {
		t.Fatalf("upload with the budget free: status %d %s; want 200", rec.Code, rec.Body)
	}
	if !h.uploads.TryAcquire(budget) {
		t.Fatal("the upload did not give its bytes back")
	}
}

// TestUploadShorterThanAnnounced: an upload read into a buffer of its
// announced length, whose body ends before that, is refused (400), stores
// nothing and gives its budget back.
func TestUploadShorterThanAnnounced(t *testing.T) {
	w := newFuzzWorld(t)
	const budget = 1 << 20
	h := &handler{b: fuzzBackend{w.app}, blobs: w.blobs, maxBody: 1 << 20, log: slog.New(slog.DiscardHandler), uploads: semaphore.NewWeighted(budget), pushes: semaphore.NewWeighted(budget)}
	doc := w.actors[2]
	b := []byte("a blob whose upload is cut short")
	batch := blob.EncodeBatch([][]byte{b})
	req := httptest.NewRequest(http.MethodPost, "/v1/blobs", strings.NewReader(string(batch)))
	req.ContentLength = int64(len(batch)) + 100
	req.Header.Set("Authorization", tx.SignRequest(fuzzChain, doc.ID(), doc.Sign, http.MethodPost, "/v1/blobs", time.Now().UnixNano(), batch))
	rec := httptest.NewRecorder()
	h.putBlobs(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d %s; want 400", rec.Code, rec.Body)
	}
	if w.blobs.HasBlob(blob.Hash(b)) {
		t.Error("a blob of a body cut short was stored")
	}
	if !h.uploads.TryAcquire(budget) {
		t.Error("the refused upload did not give its bytes back")
	}
}

// TestSlowUploadCutOff: an upload whose body stops arriving is answered
// 408 once its time is up, stores nothing and gives its budget back,
// instead of holding its share of the budget for as long as the client
// likes.
func TestSlowUploadCutOff(t *testing.T) {
	w := newFuzzWorld(t)
	const budget = 1 << 20
	h := &handler{b: fuzzBackend{w.app}, blobs: w.blobs, maxBody: 1 << 20, log: slog.New(slog.DiscardHandler),
		uploads: semaphore.NewWeighted(budget), pushes: semaphore.NewWeighted(budget),
		slowest: func(int64) time.Duration { return 200 * time.Millisecond }}
	srv := httptest.NewServer(http.HandlerFunc(h.putBlobs))
	defer srv.Close()
	doc := w.actors[2]
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := tx.SignRequest(fuzzChain, doc.ID(), doc.Sign, http.MethodPost, "/v1/blobs", time.Now().UnixNano(), []byte("whatever"))
	// Headers and the first 10 of 1,000 bytes, then nothing.
	fmt.Fprintf(conn, "POST /v1/blobs HTTP/1.1\r\nHost: node\r\nContent-Length: 1000\r\nAuthorization: %s\r\n\r\n0123456789", auth)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d; want 408", resp.StatusCode)
	}
	if !h.uploads.TryAcquire(budget) {
		t.Error("the stalled upload did not give its bytes back")
	}
}

// TestUploadTime: an upload's time grows with its length, from 30 s.
func TestUploadTime(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{
		{0, 30 * time.Second},
		{MinUploadRate, 31 * time.Second},
		{blob.MaxBatch, 30*time.Second + 256*time.Second},
	} {
		if got := UploadTime(tc.n); got != tc.want {
			t.Errorf("UploadTime(%d) = %v; want %v", tc.n, got, tc.want)
		}
	}
}

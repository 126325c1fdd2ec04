package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/tx"
)

// TestReadManyBoundsItsAnswer: one access.many request is served at most
// MaxReadBytes of records by their sizes on the ledger.
func TestReadManyBoundsItsAnswer(t *testing.T) {
	half := int64(MaxReadBytes / 2)
	w := newFuzzWorld(t, half, half, 1)
	read := func(ids ...string) *httptest.ResponseRecorder { return readMany(t, w, ids...) }
	for _, c := range []struct {
		name string
		ids  []string
		want int
	}{
		{"exactly the bound", w.records[:2], http.StatusOK},
		{"one byte over", w.records, http.StatusBadRequest},
		{"one record", w.records[2:], http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := read(c.ids...)
			if rec.Code != c.want {
				t.Fatalf("HTTP %d %s; want %d", rec.Code, rec.Body, c.want)
			}
			if c.want == http.StatusBadRequest && !strings.Contains(rec.Body.String(), "smaller groups") {
				t.Errorf("refusal %s does not say what to do", rec.Body)
			}
		})
	}
}

// TestReadManyCountsEnvelopes: the bytes one access.many request is served
// count the envelopes too, not only the ciphertexts: records of one byte
// each whose epoch envelope is a blob of 40 MiB are refused once their
// bytes pass twice MaxReadBytes.
func TestReadManyCountsEnvelopes(t *testing.T) {
	w := newFuzzWorld(t, 1, 1, 1, 1)
	rec, err := w.app.GetRecord(w.records[0])
	if err != nil {
		t.Fatal(err)
	}
	w.blobs.mu.Lock()
	w.blobs.m[rec.EpochEnv] = make([]byte, 40<<20) // the store hands back what it holds
	w.blobs.mu.Unlock()
	res := readMany(t, w, w.records...)
	if res.Code != http.StatusBadRequest || !strings.Contains(res.Body.String(), "smaller groups") {
		t.Fatalf("four records with 40 MiB envelopes: HTTP %d, %d bytes; want 400 saying to read fewer", res.Code, res.Body.Len())
	}
}

// readMany has the world's physician read ids under one signed access.many
// request.
func readMany(t *testing.T, w *fuzzWorld, ids ...string) *httptest.ResponseRecorder {
	t.Helper()
	doc := w.actors[2]
	x, err := tx.New(tx.TypeAccessMany, doc.ID(), uint64(time.Now().UnixNano()), tx.AccessMany{Records: ids, Purpose: "treatment"})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Sign(fuzzChain, doc.Sign); err != nil {
		t.Fatal(err)
	}
	raw, err := x.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/records/read", strings.NewReader(string(raw))))
	return rec
}

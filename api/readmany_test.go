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
	doc := w.actors[2]
	read := func(ids ...string) *httptest.ResponseRecorder {
		t.Helper()
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

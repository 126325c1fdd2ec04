package api

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/medchain/medchain/app"
)

// discard is a ResponseWriter that keeps nothing, so that a benchmark
// counts writeJSON's own allocations.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkWriteJSONRead encodes the answer to a one-record read of the
// bench's median size: a 2.5 KiB ciphertext and two key envelopes.
func BenchmarkWriteJSONRead(b *testing.B) {
	id := string(bytes.Repeat([]byte{'a'}, 64))
	res := ReadResult{
		Record: app.Record{ID: id, Patient: id[:40], Author: id[:40], Category: "laboratory", ContentType: "application/fhir+json",
			Size: 2500, Ciphertext: id, Commitment: id, EpochEnv: id, SelfEnv: id, Height: 1234, Time: 1764201600},
		Consent: id, Height: 1300, KeyKind: "grantee",
		Ciphertext: make([]byte, 2560), EpochEnv: make([]byte, 1200), KeyEnv: make([]byte, 1200),
	}
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		writeJSON(w, http.StatusOK, res)
	}
}

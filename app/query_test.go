package app

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/medchain/medchain/state"
)

// TestAccessLogReportsACorruptEvent: an access event that does not decode
// fails the log with the entry's key, never a short or empty log.
func TestAccessLogReportsACorruptEvent(t *testing.T) {
	s, err := state.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Begin()
	d.Set(accessKey("p1", 1, "h1"), []byte(`{"record":"r1","accessor":"m1","purpose":"treatment","height":1}`))
	d.Set(accessKey("p1", 2, "h2"), []byte(`{"record":`))
	if _, err := s.Commit(d, 1); err != nil {
		t.Fatal(err)
	}
	a := New(testChain, s, slog.New(slog.DiscardHandler))
	evs, err := a.AccessLog("p1")
	if err == nil || !strings.Contains(err.Error(), "corrupt entry") || !strings.Contains(err.Error(), "h2") {
		t.Fatalf("AccessLog = %d events, %v; want the corrupt entry named", len(evs), err)
	}
	d = s.Begin()
	d.Delete(accessKey("p1", 2, "h2"))
	if _, err := s.Commit(d, 2); err != nil {
		t.Fatal(err)
	}
	if evs, err := a.AccessLog("p1"); err != nil || len(evs) != 1 || evs[0].Record != "r1" {
		t.Fatalf("AccessLog = %+v, %v; want the one event", evs, err)
	}
}

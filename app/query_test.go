package app

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestAccessLogReportsACorruptEvent: an access event that does not decode
// fails the log with the entry's key, never a short or empty log.
func TestAccessLogReportsACorruptEvent(t *testing.T) {
	s := memStore(t)
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

// TestListingPages: a patient's records and access log read a page at a
// time, each page's next the after of the one that follows, give the whole
// listing in order, whatever the page size; only a page that leaves
// something out names a next.
func TestListingPages(t *testing.T) {
	s := memStore(t)
	d := s.Begin()
	for i := range 5 {
		id := fmt.Sprintf("r%031d", i)
		d.Set(recordKey(id), fmt.Appendf(nil, `{"id":%q,"patient":"p1","author":"m1","category":"laboratory","height":1}`, id))
		d.Set(patientRecordKey("p1", id), nil)
		d.Set(accessKey("p1", int64(i+1), fmt.Sprintf("h%d", i)), fmt.Appendf(nil, `{"record":%q,"accessor":"m1","purpose":"treatment","height":%d}`, id, i+1))
	}
	d.Set(patientRecordKey("p2", "r9"), nil) // another patient's: never listed
	d.Set(accessKey("p2", 1, "h9"), []byte(`{"record":"r9"}`))
	if _, err := s.Commit(d, 1); err != nil {
		t.Fatal(err)
	}
	a := New(testChain, s, slog.New(slog.DiscardHandler))
	wholeRecs, err := a.Records("p1", "p1")
	if err != nil || len(wholeRecs) != 5 {
		t.Fatalf("Records = %d, %v; want 5", len(wholeRecs), err)
	}
	wholeLog, err := a.AccessLog("p1")
	if err != nil || len(wholeLog) != 5 {
		t.Fatalf("AccessLog = %d, %v; want 5", len(wholeLog), err)
	}
	for _, limit := range []int{1, 2, 4, 5, 6, 1000} {
		var recs []Record
		var log []AccessEvent
		for after, pages := "", 0; ; pages++ {
			page, next, err := a.RecordsPage("p1", "p1", Page{After: after, Limit: limit})
			if err != nil || len(page) > limit || (next != "") != (len(recs)+len(page) < 5) || pages > 5 {
				t.Fatalf("limit %d, after %q: %d records, next %q, %v", limit, after, len(page), next, err)
			}
			recs = append(recs, page...)
			if after = next; after == "" {
				break
			}
		}
		for after, pages := "", 0; ; pages++ {
			page, next, err := a.AccessLogPage("p1", Page{After: after, Limit: limit})
			if err != nil || len(page) > limit || (next != "") != (len(log)+len(page) < 5) || pages > 5 {
				t.Fatalf("limit %d, after %q: %d events, next %q, %v", limit, after, len(page), next, err)
			}
			log = append(log, page...)
			if after = next; after == "" {
				break
			}
		}
		if !slices.EqualFunc(recs, wholeRecs, func(x, y Record) bool { return x.ID == y.ID }) ||
			!slices.EqualFunc(log, wholeLog, func(x, y AccessEvent) bool { return x.Record == y.Record && x.Height == y.Height }) {
			t.Errorf("limit %d: pages gave %d records and %d events, not the whole listings in order", limit, len(recs), len(log))
		}
	}
	// A cursor past every key, or one that is not a key, lists what follows it.
	if page, next, err := a.AccessLogPage("p1", Page{After: "~", Limit: 2}); err != nil || len(page) != 0 || next != "" {
		t.Errorf("AccessLogPage after the last key = %d events, next %q, %v; want none", len(page), next, err)
	}
	if page, _, err := a.RecordsPage("p1", "p1", Page{After: "r0000000000000000000000000000001x", Limit: 10}); err != nil || len(page) != 3 {
		t.Errorf("RecordsPage after a cursor between two IDs = %d, %v; want the 3 above it", len(page), err)
	}
}

package bench

import (
	"testing"
	"time"
)

// TestPacedSchedule: every paced record is sent once, in its author's
// transactions of at most batch records, and each transaction is due when
// the records before it, at the offered rate, have been sent, however
// unevenly the records fall to authors.
func TestPacedSchedule(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		authorOf                []int // author of each record
		first, authors, batch   int
		rate                    int
		wantChunks, wantLastDue int // per all authors; the last due in ms
	}{
		{"even", []int{0, 1, 0, 1, 0, 1, 0, 1}, 0, 2, 2, 1000, 4, 6},
		{"uneven", []int{0, 0, 0, 0, 0, 1}, 0, 2, 2, 1000, 4, 5},
		{"after the closed-loop records", []int{1, 1, 0, 1, 0, 1}, 2, 2, 4, 2000, 2, 1},
		{"one per transaction", []int{2, 2, 2}, 0, 3, 1, 100, 3, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records := make([]record, len(tc.authorOf))
			for i, a := range tc.authorOf {
				records[i].author = int32(a)
			}
			sched := pacedSchedule(records, tc.first, tc.authors, tc.batch, tc.rate)
			seen := map[int]bool{}
			chunks, sent := 0, 0
			var last time.Duration
			var all []pacedChunk
			for a, cs := range sched {
				for j, c := range cs {
					if len(c.chunk) == 0 || len(c.chunk) > tc.batch {
						t.Fatalf("author %d: a transaction of %d records (batch %d)", a, len(c.chunk), tc.batch)
					}
					if j > 0 && c.due <= cs[j-1].due {
						t.Fatalf("author %d: transaction %d due at %v, not after the one before (%v)", a, j, c.due, cs[j-1].due)
					}
					for _, i := range c.chunk {
						if int(records[i].author) != a || i < tc.first || seen[i] {
							t.Fatalf("record %d (author %d) sent by author %d, or twice, or before %d", i, records[i].author, a, tc.first)
						}
						seen[i] = true
					}
					chunks++
					last = max(last, c.due)
					all = append(all, c)
				}
			}
			if len(seen) != len(records)-tc.first {
				t.Fatalf("%d records sent, want %d", len(seen), len(records)-tc.first)
			}
			if chunks != tc.wantChunks || last != time.Duration(tc.wantLastDue)*time.Millisecond {
				t.Fatalf("%d transactions, last due %v; want %d, %d ms", chunks, last, tc.wantChunks, tc.wantLastDue)
			}
			// In due order, each is due when the records before it went out at rate.
			for len(all) > 0 {
				k := 0
				for i, c := range all {
					if c.due < all[k].due {
						k = i
					}
				}
				want := time.Duration(float64(sent) / float64(tc.rate) * float64(time.Second))
				if all[k].due != want {
					t.Fatalf("a transaction after %d records due at %v, want %v", sent, all[k].due, want)
				}
				sent += len(all[k].chunk)
				all = append(all[:k], all[k+1:]...)
			}
		})
	}
}

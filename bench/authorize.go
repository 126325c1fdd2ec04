package bench

import (
	"fmt"
	"time"
)

// maxAuthorizations bounds the consent decisions the bench times.
const maxAuthorizations = 5000

// authorizations times consent decisions alone, in process and one at a
// time: the node's AuthorizeRead (the record read from committed state, the
// reader's actor, the patient's consents, consent.Evaluate) for distinct
// records spread over everything written, before any read has warmed a
// cache with them. This is the figure to compare across ledger sizes.
func (w *workload) authorizations(rep *Report) error {
	n := min(maxAuthorizations, len(w.written))
	if n == 0 || w.o.Reads == 0 {
		return nil
	}
	a := w.nodes[0].App()
	lat := make([]time.Duration, 0, n)
	step := len(w.written) / n
	defer w.o.phase("decisions")()
	for k := 0; k < n; k++ {
		r := w.records[w.written[k*step]]
		reader := w.members[w.reader[r.patient]].ID()
		t0 := time.Now()
		_, _, err := a.AuthorizeRead(reader, r.id, "treatment")
		lat = append(lat, time.Since(t0))
		if err != nil {
			return fmt.Errorf("consent decision for record %s: %w", r.id, err)
		}
	}
	rep.AuthorizeP50Us = percentile(lat, 50) * 1000
	rep.AuthorizeP99Us = percentile(lat, 99) * 1000
	w.o.logf("consent decisions: p50 %.0f µs, p99 %.0f µs (%d distinct records)", rep.AuthorizeP50Us, rep.AuthorizeP99Us, n)
	return nil
}

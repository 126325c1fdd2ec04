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
// cache with them. This is the figure to compare across ledger sizes. Then
// it times the consent evaluation alone (AuthorizeRecord: the same
// decision for a record already read) for as many other records: the
// decision less its record lookup, which is a cold storage read that grows
// with the ledger.
func (w *workload) authorizations(rep *Report) error {
	n := min(maxAuthorizations, len(w.written))
	if n == 0 || w.o.Reads == 0 {
		return nil
	}
	a := w.nodes[0].App()
	step := len(w.written) / n
	decide, evaluate := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
	defer w.o.phase("decisions")()
	for k := 0; k < n; k++ {
		r := w.records[w.written[k*step]]
		reader := w.members[w.reader[r.patient]].ID()
		t0 := time.Now()
		_, _, err := a.AuthorizeRead(reader, r.ID(), "treatment")
		decide = append(decide, time.Since(t0))
		if err != nil {
			return fmt.Errorf("consent decision for record %s: %w", r.ID(), err)
		}
	}
	for k := 0; k < n; k++ {
		r := w.records[w.written[k*step+step/2]]
		reader := w.members[w.reader[r.patient]].ID()
		rec, err := a.GetRecord(r.ID())
		if err != nil {
			return err
		}
		t0 := time.Now()
		_, err = a.AuthorizeRecord(reader, rec, "treatment")
		evaluate = append(evaluate, time.Since(t0))
		if err != nil {
			return fmt.Errorf("consent evaluation for record %s: %w", r.ID(), err)
		}
	}
	rep.AuthorizeP50Us, rep.AuthorizeP99Us = percentile(decide, 50)*1000, percentile(decide, 99)*1000
	rep.EvaluateP50Us, rep.EvaluateP99Us = percentile(evaluate, 50)*1000, percentile(evaluate, 99)*1000
	w.o.logf("consent decisions: p50 %.0f µs, p99 %.0f µs (%d distinct records); without the record lookup: p50 %.1f µs, p99 %.1f µs",
		rep.AuthorizeP50Us, rep.AuthorizeP99Us, n, rep.EvaluateP50Us, rep.EvaluateP99Us)
	return nil
}

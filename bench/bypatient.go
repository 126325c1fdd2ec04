package bench

import (
	"strings"

	"github.com/medchain/medchain/ident"
)

// byPatient indexes the written records by patient in two arrays. The
// bench shares the node's process, and a slice per patient (100,000 at
// the largest scale) would be as many objects for the collector to mark
// on every cycle, in the node's time.
type byPatient struct {
	first []int32 // patient p's records are recs[first[p]:first[p+1]]
	recs  []int32 // indexes into the workload's records, by patient, then commit order
}

// indexByPatient indexes written (indexes into records) by patient, for
// patients 0..patients-1.
func indexByPatient(records []record, written []int, patients int) byPatient {
	b := byPatient{first: make([]int32, patients+1), recs: make([]int32, len(written))}
	for _, i := range written {
		b.first[records[i].patient+1]++
	}
	for p := range patients {
		b.first[p+1] += b.first[p]
	}
	next := append([]int32(nil), b.first[:patients]...)
	for _, i := range written {
		p := records[i].patient
		b.recs[next[p]] = int32(i)
		next[p]++
	}
	return b
}

// of returns patient p's records, in commit order.
func (b byPatient) of(p int) []int32 { return b.recs[b.first[p]:b.first[p+1]] }

// patients lists the patients with at least one record, in order.
func (b byPatient) patients() []int {
	var ps []int
	for p := range len(b.first) - 1 {
		if b.first[p+1] > b.first[p] {
			ps = append(ps, p)
		}
	}
	return ps
}

// packedIDs returns the keys' IDs, their bytes in one string: one object
// for the collector, not one per patient.
func packedIDs(keys []ident.Private) []string {
	ids := make([]string, len(keys))
	var b strings.Builder
	for i, k := range keys {
		ids[i] = k.ID()
		b.WriteString(ids[i])
	}
	all := b.String()
	for i, id := range ids {
		ids[i], all = all[:len(id)], all[len(id):]
	}
	return ids
}

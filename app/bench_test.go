package app

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/tx"
)

// BenchmarkRecordBatch measures the state machine alone on record writes:
// CheckTx then FinalizeBlock and Commit of blocks of 8 batches of 256
// records by one author under a write consent, reported per record.
func BenchmarkRecordBatch(b *testing.B) {
	w := newWorld(b)
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	const batches, perBatch = 8, 256
	record := recordMaker(w.patient.ID())
	b.ResetTimer()
	for done := 0; done < b.N; done += batches * perBatch {
		b.StopTimer()
		txs := make([][]byte, batches)
		for i := range txs {
			var body tx.RecordBatch
			for range perBatch {
				body.Records = append(body.Records, record())
			}
			txs[i] = w.sign(w.memberA, tx.TypeRecordBatch, &body)
		}
		b.StartTimer()
		for _, raw := range txs {
			if code, log := w.checkTx(raw); code != CodeOK {
				b.Fatalf("CheckTx: %d %s", code, log)
			}
		}
		for i, c := range w.block(txs...) {
			if c != CodeOK {
				b.Fatalf("batch %d: code %d", i, c)
			}
		}
	}
}

// BenchmarkAuthorizeRead measures one consent decision on a committed
// record by a member the patient granted reading, as the API makes before
// serving it, with the record, the reader and the patient's consents in the
// caches.
func BenchmarkAuthorizeRead(b *testing.B) {
	w := newWorld(b)
	readerKey := newKey(b)
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(readerKey, "physician")))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory"}, Actions: []string{"write"}}))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: readerKey.Public().ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}}))
	rec := recordMaker(w.patient.ID())()
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordPut, &rec))
	id, reader := "r"+rec.Ciphertext[:32], readerKey.Public().ID()
	if consentID, _, err := w.app.AuthorizeRead(reader, id, "treatment"); err != nil || consentID == "" {
		b.Fatalf("AuthorizeRead: consent %q, %v; want one that allows it", consentID, err)
	}
	b.ResetTimer()
	for range b.N {
		if _, _, err := w.app.AuthorizeRead(reader, id, "treatment"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeRecordScale measures the consent evaluation alone
// (AuthorizeRecord, the record already read) with the caches holding as
// many patients as a ledger of 10, 100 and 1,000 times that many records,
// each with the bench's two consents and its own cached actor, decoded
// from JSON as the node decodes them, one consent to a reader: of its own
// ("readers=own"), or one of 32 physicians as in `medchain bench`
// ("readers=32"). Patients are visited in a scattered order, so the figure
// shows how the evaluation's memory touches grow with the number of
// patients, not only its instructions. "hot" visits only the first 1,000
// patients of the same caches: if the work per decision grew with the
// caches it would show there; a cost that grows only with the patients
// visited is the memory hierarchy's. "evicted" and "evicted-lookups" are
// described where they run.
func BenchmarkAuthorizeRecordScale(b *testing.B) {
	for _, patients := range []int{1_000, 10_000, 100_000} {
		for _, readers := range []int{patients, 32} {
			name := fmt.Sprintf("patients=%d/readers=%d", patients, readers)
			if readers == patients {
				name = fmt.Sprintf("patients=%d/readers=own", patients)
			}
			b.Run(name, func(b *testing.B) { authorizeScale(b, patients, readers) })
		}
	}
}

func authorizeScale(b *testing.B, patients, nreaders int) {
	store := memStore(b)
	a := New(testChain, store, slog.New(slog.DiscardHandler))
	recs := make([]Record, patients)
	readers := make([]string, patients)
	for p := range patients {
		// Actor IDs as the ledger makes them: "mc1" and 40 hex digits.
		patient, author, reader := fmt.Sprintf("mc1%040x", p), fmt.Sprintf("mc1%040x", 1<<40+p%16), fmt.Sprintf("mc1%040x", 1<<41+p%nreaders)
		if p >= nreaders {
			reader = readers[p%nreaders] // the same string: one of a few readers, as in the bench
		}
		if p < nreaders {
			act, err := decodeActor(fmt.Appendf(nil, `{"id":%q,"kind":"member","public":"x","role":"physician","org":"mc1%040x"}`, reader, 1<<42))
			if err != nil {
				b.Fatal(err)
			}
			a.cache.putActor(act) // as getActor decodes and caches it
		}
		var cs []consent.Consent
		for i, g := range [2]struct{ who, action string }{{author, "write"}, {reader, "read"}} {
			var c Consent
			mustDecode(b, fmt.Sprintf(`{"id":"c%d%062d","patient":%q,"grantee":%q,"categories":["clinical-note","imaging","laboratory","vital-signs"],"purposes":["treatment"],"actions":[%q],"start":1}`,
				i, p, patient, g.who, g.action), &c)
			cs = append(cs, c.Consent)
		}
		a.cache.putConsents(a.cache.generation(), patient, cs)
		// A node that has written the patient's records has its actor
		// cached too, beside the readers'.
		pa, err := decodeActor(fmt.Appendf(nil, `{"id":%q,"kind":"patient","public":"%01700d"}`, patient, 0))
		if err != nil {
			b.Fatal(err)
		}
		a.cache.putActor(pa)
		recs[p] = Record{ID: fmt.Sprintf("r%063d", p), Patient: patient, Author: author, Category: "laboratory"}
		readers[p] = reader
	}
	a.blockTime.Store(2)
	// As in the bench, a decision's inputs are in the CPU's caches (the
	// record just read, the reader's ID one of a few), and each decision
	// is timed on its own: p50-ns is the evaluation's own reads of the
	// node's caches, the bench's evaluate_p50_us; ns/op adds touching the
	// inputs and the clock.
	//
	// evicted is the bench at 1,000,000 records, where the record read
	// before each decision is a cold storage read that leaves little of
	// the decision's memory in the CPU's caches and TLB: before each
	// decision (untimed), 1,024 random cache lines of 64 MiB are touched.
	var evict []uint64
	decide := func(k int) error {
		id, err := a.AuthorizeRecord(readers[k], &recs[k], "treatment")
		if err != nil {
			return fmt.Errorf("AuthorizeRecord: %w", err)
		}
		if id == "" {
			return fmt.Errorf("AuthorizeRecord allowed the read by no consent; the bench's reader holds one")
		}
		return nil
	}
	visit := func(b *testing.B, n int, timed func(k int) error) {
		took := make([]time.Duration, 0, b.N)
		k, sink, x := 0, 0, uint64(1)
		for b.Loop() {
			for range len(evict) / 8192 {
				x = x*6364136223846793005 + 1442695040888963407 // a linear congruential step
				evict[x>>20%uint64(len(evict))]++
			}
			k = (k + 7919) % n // a prime step: scattered, each patient in turn
			r := &recs[k]
			sink += len(readers[k]) + int(r.Patient[9]) + int(r.Author[9]) + len(r.Category)
			t0 := time.Now()
			err := timed(k)
			took = append(took, time.Since(t0))
			if err != nil {
				b.Fatalf("patient %d: %v", k, err)
			}
		}
		if sink == 0 {
			b.Fatal("no inputs touched")
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
	}
	b.Run("all", func(b *testing.B) { visit(b, patients, decide) })
	b.Run("hot", func(b *testing.B) { visit(b, 1_000, decide) })
	evict = make([]uint64, 8<<20)
	b.Run("evicted", func(b *testing.B) { visit(b, patients, decide) })
	// evicted-lookups times the decision's two cache lookups alone (the
	// reader's actor and the patient's consents, under the cache's lock):
	// what evicted adds to it is the rest of the decision.
	b.Run("evicted-lookups", func(b *testing.B) {
		visit(b, patients, func(k int) error {
			if act, cs := a.cache.actorAndConsents(readers[k], recs[k].Patient); act == nil || cs == nil {
				return fmt.Errorf("not cached: actor %v, consents %v", act != nil, cs != nil)
			}
			return nil
		})
	})
}

func mustDecode(tb testing.TB, s string, v any) {
	tb.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCacheMarking measures what the node's caches cost the garbage
// collector on every cycle. A cache is filled as a node serving 100,000
// patients fills it: each patient's consents, key epoch numbers and actor,
// and 65,536 records, each decoded from JSON as the node decodes them, so
// that the decoder's garbage spreads what is kept over the heap as a
// running node's other work does. Then each iteration runs one collection
// cycle: ns/op is its wall time, mark-cpu-ms/op the CPU its marking took.
func BenchmarkCacheMarking(b *testing.B) {
	const patients = 100_000
	var c cache
	public := strings.Repeat("k", 1_700) // an encoded ident.Public's length
	for p := range patients {
		patient := fmt.Sprintf("mc1%040x", p)
		var cs []consent.Consent
		for i, grantee := range []string{fmt.Sprintf("mc1%040x", patients+p%16), fmt.Sprintf("mc1%040x", patients+16+p%16)} {
			var k Consent
			mustDecode(b, fmt.Sprintf(`{"id":"c%d%062x","patient":%q,"grantee":%q,"categories":["clinical-note","imaging","laboratory","vital-signs"],"purposes":["treatment"],"actions":["read"],"start":1}`,
				i, p, patient, grantee), &k)
			cs = append(cs, k.Consent)
		}
		c.putConsents(c.generation(), patient, cs)
		act, err := decodeActor(fmt.Appendf(nil, `{"id":%q,"kind":"patient","public":%q,"name":"a patient","height":7}`, patient, public))
		if err != nil {
			b.Fatal(err)
		}
		c.putActor(act)
		c.putEpoch(c.generation(), patient, "laboratory", 0)
		if p < maxCachedRecords {
			var r Record
			if err := decodeRecord(fmt.Appendf(nil, `{"id":"r%063x","patient":%q,"author":"mc1%040x","category":"laboratory","content_type":"application/fhir+json","size":2048,"epoch":0,"ciphertext":"%064x","commitment":"%064x","epoch_env":"%064x","self_env":"%064x","height":9,"time":1}`,
				p, patient, p%16, p, p+1, p+2, p+3), &r); err != nil {
				b.Fatal(err)
			}
			c.putRecord(r)
		}
	}
	mark := []metrics.Sample{{Name: "/cpu/classes/gc/mark/dedicated:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/idle:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/assist:cpu-seconds"}}
	cpu := func() float64 {
		metrics.Read(mark)
		return mark[0].Value.Float64() + mark[1].Value.Float64() + mark[2].Value.Float64()
	}
	runtime.GC()
	var spent float64
	for b.Loop() {
		before := cpu()
		runtime.GC()
		spent += cpu() - before
	}
	b.ReportMetric(spent*1000/float64(b.N), "mark-cpu-ms/op")
	runtime.KeepAlive(&c)
}

package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// manyWorld is a ledger for access.many: a node identity that signs access
// batches; memberA, who wrote the patient's records; memberB, a physician
// of the other organization granted laboratory reads; and a second patient
// with a record of its own.
type manyWorld struct {
	*node
	admin, orgA, orgB, memberA, memberB, patient, patient2, server ident.Private

	lab      []string // the patient's laboratory records, by memberA
	img      string   // the patient's imaging record, by memberA: memberB may not read it
	own2     string   // patient2's own record
	consentB string   // the patient's laboratory read consent for memberB
}

func newManyWorld(t *testing.T) *manyWorld {
	t.Helper()
	w := &manyWorld{admin: newKey(t), orgA: newKey(t), orgB: newKey(t), memberA: newKey(t), memberB: newKey(t),
		patient: newKey(t), patient2: newKey(t), server: newKey(t)}
	w.node = openNode(t, "")
	g, err := json.Marshal(Genesis{Admins: []string{w.admin.Public().String()}, Nodes: []string{w.server.Public().String()}, StateVersion: StateVersion})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: g, Time: genesisTime}); err != nil {
		t.Fatalf("InitChain: %v", err)
	}
	w.block()
	w.mustDeliver(w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.orgA, "Org A")))
	w.mustDeliver(w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.orgB, "Org B")))
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(w.memberA, "physician")))
	w.mustDeliver(w.sign(w.orgB, tx.TypeMemberAdd, memberAdd(w.memberB, "physician")))
	w.mustDeliver(w.sign(w.patient, tx.TypePatientAdd, patientAdd(w.patient)))
	w.mustDeliver(w.sign(w.patient2, tx.TypePatientAdd, patientAdd(w.patient2)))
	w.mustDeliver(w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberA.ID(), Categories: []string{"laboratory", "imaging"}, Actions: []string{"write"}}))

	seq := 0
	rec := func(patient, category string) tx.RecordPut {
		seq++
		h := sha256.Sum256(fmt.Appendf(nil, "accessmany/%d", seq))
		x := hex.EncodeToString(h[:])
		return tx.RecordPut{Patient: patient, Category: category, ContentType: "application/fhir+json",
			Size: 100, Ciphertext: x, Commitment: x, EpochEnv: x, SelfEnv: x}
	}
	var recs []tx.RecordPut
	for range 3 {
		r := rec(w.patient.ID(), "laboratory")
		recs = append(recs, r)
		w.lab = append(w.lab, recordID(&r))
	}
	img := rec(w.patient.ID(), "imaging")
	w.img = recordID(&img)
	w.mustDeliver(w.sign(w.memberA, tx.TypeRecordBatch, &tx.RecordBatch{Records: append(recs, img)}))
	own := rec(w.patient2.ID(), "laboratory")
	w.own2 = recordID(&own)
	w.mustDeliver(w.sign(w.patient2, tx.TypeRecordPut, &own))

	grant := w.sign(w.patient, tx.TypeConsentGrant, &tx.ConsentGrant{
		Grantee: w.memberB.ID(), Categories: []string{"laboratory"}, Actions: []string{"read"}})
	w.mustDeliver(grant)
	w.consentB = "c" + tx.Hash(grant)[:32]
	return w
}

// many signs an access.many by reader with its next nonce.
func (w *manyWorld) many(reader ident.Private, purpose string, ids ...string) []byte {
	w.t.Helper()
	return w.sign(reader, tx.TypeAccessMany, &tx.AccessMany{Records: ids, Purpose: purpose})
}

// batch is an access batch of reqs signed by the world's node.
func (w *manyWorld) batch(reqs ...[]byte) []byte {
	w.t.Helper()
	return w.sign(w.server, tx.TypeAccessBatch, &tx.AccessBatch{Requests: reqs})
}

// log reads the committed access log of patient.
func (w *manyWorld) log(patient ident.Private) []AccessEvent {
	w.t.Helper()
	evs, err := w.app.AccessLog(patient.ID())
	if err != nil {
		w.t.Fatalf("AccessLog: %v", err)
	}
	return evs
}

// wantEv is an access event as a test expects it.
type wantEv struct {
	record, accessor, purpose, consent string
	late                               bool // recorded with a note: no consent allows it at this block
}

// checkLog compares a patient's log, in any order, with want; every event
// must carry the block height and time.
func checkLog(t *testing.T, what string, got []AccessEvent, height int64, want []wantEv) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d access events, want %d: %+v", what, len(got), len(want), got)
		return
	}
	byRecord := map[string]AccessEvent{}
	for _, ev := range got {
		if _, dup := byRecord[ev.Record]; dup {
			t.Errorf("%s: two events for record %s", what, ev.Record)
		}
		byRecord[ev.Record] = ev
	}
	for _, w := range want {
		ev, ok := byRecord[w.record]
		switch {
		case !ok:
			t.Errorf("%s: no event for record %s", what, w.record)
		case ev.Accessor != w.accessor || ev.Purpose != w.purpose || ev.Consent != w.consent:
			t.Errorf("%s: event for %s is (accessor %s, purpose %q, consent %q), want (%s, %q, %q)",
				what, w.record, ev.Accessor, ev.Purpose, ev.Consent, w.accessor, w.purpose, w.consent)
		case ev.Height != height || ev.Time != blockAt(height).UnixNano():
			t.Errorf("%s: event for %s at height %d time %d, want %d %d", what, w.record, ev.Height, ev.Time, height, blockAt(height).UnixNano())
		case (ev.Note != "") != w.late:
			t.Errorf("%s: event for %s has note %q, want a note: %v", what, w.record, ev.Note, w.late)
		}
	}
}

// TestAccessManyInBatch: a node's access batch carrying access.many
// requests records one event per record read, none for the reader's own
// records, and skips a request it cannot record without failing the batch.
func TestAccessManyInBatch(t *testing.T) {
	tests := []struct {
		name string
		// reqs builds the batch's requests.
		reqs func(w *manyWorld) [][]byte
		// want are the events expected on the patient's log; patient2's
		// must stay empty.
		want func(w *manyWorld) []wantEv
	}{
		{
			name: "grantee reads three records under consent",
			reqs: func(w *manyWorld) [][]byte { return [][]byte{w.many(w.memberB, "treatment", w.lab...)} },
			want: func(w *manyWorld) []wantEv {
				var out []wantEv
				for _, id := range w.lab {
					out = append(out, wantEv{id, w.memberB.ID(), "treatment", w.consentB, false})
				}
				return out
			},
		},
		{
			name: "one record",
			reqs: func(w *manyWorld) [][]byte { return [][]byte{w.many(w.memberB, "treatment", w.lab[1])} },
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[1], w.memberB.ID(), "treatment", w.consentB, false}}
			},
		},
		{
			name: "author reads what it wrote",
			reqs: func(w *manyWorld) [][]byte {
				return [][]byte{w.many(w.memberA, "operations", w.img, w.lab[0])}
			},
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.img, w.memberA.ID(), "operations", "", false}, {w.lab[0], w.memberA.ID(), "operations", "", false}}
			},
		},
		{
			name: "patient reads its own records: no event",
			reqs: func(w *manyWorld) [][]byte { return [][]byte{w.many(w.patient, "personal", w.img, w.lab[0], w.lab[2])} },
		},
		{
			name: "own record beside another patient's: only the other's is recorded",
			reqs: func(w *manyWorld) [][]byte { return [][]byte{w.many(w.patient2, "treatment", w.own2, w.lab[0])} },
			want: func(w *manyWorld) []wantEv {
				// No consent allows patient2: the event carries a note.
				return []wantEv{{w.lab[0], w.patient2.ID(), "treatment", "", true}}
			},
		},
		{
			name: "served under a consent that no longer allows it",
			reqs: func(w *manyWorld) [][]byte { return [][]byte{w.many(w.memberB, "treatment", w.lab[0], w.img)} },
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[0], w.memberB.ID(), "treatment", w.consentB, false}, {w.img, w.memberB.ID(), "treatment", "", true}}
			},
		},
		{
			name: "unknown record beside a known one",
			reqs: func(w *manyWorld) [][]byte {
				return [][]byte{w.many(w.memberB, "treatment", "r"+hex.EncodeToString(make([]byte, 16)), w.lab[2])}
			},
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[2], w.memberB.ID(), "treatment", w.consentB, false}}
			},
		},
		{
			name: "duplicate records: skipped, the batch goes on",
			reqs: func(w *manyWorld) [][]byte {
				return [][]byte{
					w.many(w.memberB, "treatment", w.lab[0], w.lab[1], w.lab[0]),
					w.many(w.memberB, "treatment", w.lab[2]),
				}
			},
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[2], w.memberB.ID(), "treatment", w.consentB, false}}
			},
		},
		{
			name: "no records and too many records: skipped",
			reqs: func(w *manyWorld) [][]byte {
				over := slices.Clone(w.lab)
				for i := len(over); i <= tx.MaxAccessRecords; i++ {
					over = append(over, fmt.Sprintf("r%032x", i))
				}
				return [][]byte{w.many(w.memberB, "treatment"), w.many(w.memberB, "treatment", over...)}
			},
		},
		{
			name: "forged signature: skipped",
			reqs: func(w *manyWorld) [][]byte {
				forger := newKey(w.t)
				return [][]byte{signTx(w.t, forger, w.memberB.ID(), 7, tx.TypeAccessMany, &tx.AccessMany{Records: w.lab, Purpose: "treatment"})}
			},
		},
		{
			name: "from the future: skipped",
			reqs: func(w *manyWorld) [][]byte {
				future := uint64(blockAt(w.height+1).UnixNano() + AccessWindow + 60e9)
				return [][]byte{signTx(w.t, w.memberB, w.memberB.ID(), future, tx.TypeAccessMany, &tx.AccessMany{Records: w.lab, Purpose: "treatment"})}
			},
		},
		{
			name: "beside a single-record access",
			reqs: func(w *manyWorld) [][]byte {
				return [][]byte{
					w.sign(w.memberB, tx.TypeAccess, &tx.Access{Record: w.lab[0], Purpose: "treatment"}),
					w.many(w.memberB, "payment", w.img),
				}
			},
			want: func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[0], w.memberB.ID(), "treatment", w.consentB, false}, {w.img, w.memberB.ID(), "payment", "", true}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newManyWorld(t)
			if got := w.log(w.patient); len(got) != 0 {
				t.Fatalf("fresh world has %d access events", len(got))
			}
			b := w.batch(tc.reqs(w)...)
			if code, log := w.checkTx(b); code != CodeOK {
				t.Fatalf("CheckTx of the batch: %d %s", code, log)
			}
			w.mustDeliver(b)
			var want []wantEv
			if tc.want != nil {
				want = tc.want(w)
			}
			checkLog(t, "patient", w.log(w.patient), w.height, want)
			checkLog(t, "patient2", w.log(w.patient2), w.height, nil)
		})
	}
}

// TestAccessManyReplayed: a request is recorded once, whether it comes back
// in the same batch, in a later batch, or as a transaction of its own.
func TestAccessManyReplayed(t *testing.T) {
	w := newManyWorld(t)
	req := w.many(w.memberB, "treatment", w.lab...)
	w.mustDeliver(w.batch(req, req)) // twice in one batch
	h := w.height
	first := w.log(w.patient)
	if len(first) != len(w.lab) {
		t.Fatalf("after the first batch: %d events, want %d: %+v", len(first), len(w.lab), first)
	}
	w.mustDeliver(w.batch(req))
	w.mustDeliver(w.batch(w.many(w.memberB, "treatment", w.lab[0]), req))
	got := w.log(w.patient)
	if len(got) != len(w.lab)+1 {
		t.Fatalf("after the replays: %d events, want %d (the first %d and one new request): %+v", len(got), len(w.lab)+1, len(w.lab), got)
	}
	for _, ev := range got {
		if ev.Height != h && !(ev.Height == w.height && ev.Record == w.lab[0]) {
			t.Errorf("event %+v recorded by a replay", ev)
		}
	}
	// The request alone, its nonce still unused on the ledger: refused as
	// a replay, in CheckTx and in a block.
	if code, log := w.checkTx(req); code != CodeReplay {
		t.Errorf("CheckTx of a request an access batch recorded: %d %s, want %d", code, log, CodeReplay)
	}
	if code, log := w.deliver(req); code != CodeReplay {
		t.Errorf("a request an access batch recorded, as its own tx: %d %s, want %d", code, log, CodeReplay)
	}
	if n := len(w.log(w.patient)); n != len(got) {
		t.Errorf("the refused replay left %d new events", n-len(got))
	}

	// The other way round: committed alone first, then carried by a batch.
	alone := w.many(w.memberB, "treatment", w.lab[1], w.lab[2])
	w.mustDeliver(alone)
	before := len(w.log(w.patient))
	w.mustDeliver(w.batch(alone))
	if n := len(w.log(w.patient)); n != before {
		t.Errorf("a batch recorded a request already committed alone: %d new events", n-before)
	}
}

// TestAccessManyAlone: an access.many committed as a transaction of its own
// records every record or none.
func TestAccessManyAlone(t *testing.T) {
	type step struct {
		name string
		raw  func(w *manyWorld) []byte
		code []uint32 // acceptable codes
		want func(w *manyWorld) []wantEv
	}
	allowed := func(w *manyWorld) []byte { return w.many(w.memberB, "treatment", w.lab...) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"all allowed, then the same bytes again", func() []step {
			var raw []byte
			keep := func(w *manyWorld) []byte {
				if raw == nil {
					raw = allowed(w)
				}
				return raw
			}
			return []step{
				{"all allowed", keep, []uint32{CodeOK}, func(w *manyWorld) []wantEv {
					var out []wantEv
					for _, id := range w.lab {
						out = append(out, wantEv{id, w.memberB.ID(), "treatment", w.consentB, false})
					}
					return out
				}},
				{"replayed", keep, []uint32{CodeReplay}, nil},
			}
		}()},
		{"one record without consent, then all allowed", []step{
			{"one not allowed", func(w *manyWorld) []byte { return w.many(w.memberB, "treatment", w.lab[0], w.img, w.lab[1]) }, []uint32{CodeUnauthorized}, nil},
			{"not allowed last", func(w *manyWorld) []byte { return w.many(w.memberB, "treatment", w.lab[0], w.lab[1], w.img) }, []uint32{CodeUnauthorized}, nil},
			{"then allowed", func(w *manyWorld) []byte { return w.many(w.memberB, "treatment", w.lab[0], w.lab[2]) }, []uint32{CodeOK}, func(w *manyWorld) []wantEv {
				return []wantEv{{w.lab[0], w.memberB.ID(), "treatment", w.consentB, false}, {w.lab[2], w.memberB.ID(), "treatment", w.consentB, false}}
			}},
		}},
		{"purpose the consent lacks", []step{
			{"research", func(w *manyWorld) []byte { return w.many(w.memberB, "research", w.lab[0]) }, []uint32{CodeUnauthorized}, nil},
		}},
		{"another patient's reader", []step{
			{"patient2", func(w *manyWorld) []byte { return w.many(w.patient2, "treatment", w.own2, w.lab[0]) }, []uint32{CodeUnauthorized}, nil},
		}},
		{"unknown record", []step{
			{"unknown", func(w *manyWorld) []byte {
				return w.many(w.memberB, "treatment", w.lab[0], "r"+hex.EncodeToString(make([]byte, 16)))
			}, []uint32{CodeNotFound}, nil},
		}},
		{"malformed", []step{
			{"duplicate", func(w *manyWorld) []byte { return w.many(w.memberB, "treatment", w.lab[0], w.lab[0]) }, []uint32{CodeInvalid, CodeMalformed}, nil},
			{"empty", func(w *manyWorld) []byte { return w.many(w.memberB, "treatment") }, []uint32{CodeInvalid, CodeMalformed}, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newManyWorld(t)
			for _, s := range tc.steps {
				raw := s.raw(w)
				before := w.log(w.patient)
				if code, log := w.checkTx(raw); !slices.Contains(s.code, code) {
					t.Errorf("%s: CheckTx code %d (%s), want %v", s.name, code, log, s.code)
				}
				code, log := w.deliver(raw)
				if !slices.Contains(s.code, code) {
					t.Errorf("%s: code %d (%s), want %v", s.name, code, log, s.code)
				}
				got := w.log(w.patient)
				if s.want == nil {
					if len(got) != len(before) {
						t.Errorf("%s: a refused request left %d events", s.name, len(got)-len(before))
					}
					continue
				}
				checkLog(t, s.name, got[len(before):], w.height, s.want(w))
			}
			if evs := w.log(w.patient2); len(evs) != 0 {
				t.Errorf("patient2's log holds %d events", len(evs))
			}
		})
	}
}

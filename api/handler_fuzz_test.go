package api

// FuzzHandler drives the whole HTTP API with arbitrary requests: method,
// path with query, body and Authorization header. The backend is real where
// it decides anything (an app.App over an in-memory state.Store with an
// admin, an organization, a member, a patient, a record and a consent
// committed at height 1) and a stub where it only moves bytes (blobs in a
// map; Submit runs CheckTx and never commits).
//
// Invariants: no panic; every answer except a mux redirect is a JSON object
// with Content-Type application/json; no 500 (nothing in this backend fails,
// so a 500 means a handler mishandled its input); a 2xx to a signed endpoint
// only with a fresh signature.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/seal"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

const fuzzChain = "medchain-fuzz"

// fuzzKey is a fixed identity, so seeds stay meaningful between runs.
func fuzzKey(t testing.TB, name string) ident.Private {
	t.Helper()
	s := sha256.Sum256([]byte("api-fuzz/sign/" + name))
	b := sha256.Sum256([]byte("api-fuzz/box/" + name))
	k, err := ident.FromSeeds(s[:], b[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type fuzzBackend struct{ a *app.App }

func (b fuzzBackend) Status() Status {
	h := b.a.Store().Height()
	return Status{ChainID: fuzzChain, Height: h, Validators: 1, AppHash: fmt.Sprintf("%X", b.a.Store().Root())}
}
func (b fuzzBackend) App() *app.App { return b.a }
func (b fuzzBackend) Submit(ctx context.Context, raw []byte) (app.Result, error) {
	res, err := b.a.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_New})
	if err != nil {
		return app.Result{}, err
	}
	r := app.Result{Hash: tx.Hash(raw), Code: res.Code, Log: res.Log}
	if res.Code == app.CodeOK {
		r.Height = b.a.Store().Height() + 1 // as if committed; state is left alone
	}
	return r, nil
}

// RecordAccess must only ever be handed a decoded, signed access
// transaction; anything else is a handler bug, reported as a panic.
func (b fuzzBackend) RecordAccess(raw []byte) error {
	t, body, err := tx.Decode(raw)
	if err != nil {
		panic(fmt.Sprintf("RecordAccess got an undecodable transaction: %v", err))
	}
	switch body.(type) {
	case *tx.Access, *tx.AccessMany:
	default:
		panic(fmt.Sprintf("RecordAccess got a %s transaction", t.Type))
	}
	return nil
}

type fuzzBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *fuzzBlobs) StoreBlobs(_ context.Context, bs *blob.Batch) (int, error) {
	return 1, s.KeepBlobs(bs)
}
func (s *fuzzBlobs) KeepBlobs(bs *blob.Batch) error {
	for i, name := range bs.Names() {
		if err := s.keep(name, bs.Blob(i)); err != nil {
			return err
		}
	}
	return nil
}
func (s *fuzzBlobs) Blob(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[name]; ok {
		return b, nil
	}
	return nil, errors.New("no such blob")
}
func (s *fuzzBlobs) HasBlob(name string) bool {
	_, err := s.Blob(context.Background(), name)
	return err == nil
}
func (s *fuzzBlobs) PeerRequest(*http.Request, []byte) error {
	return errors.New("no peers")
}
func (s *fuzzBlobs) PeerKnown(*http.Request) error { return errors.New("no peers") }
func (s *fuzzBlobs) keep(name string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) < 1000 { // bound memory over a long fuzz run
		s.m[name] = append([]byte(nil), b...)
	}
	return nil
}

// fuzzWorld is the backend and the actors the fuzz target signs as.
type fuzzWorld struct {
	app    *app.App
	blobs  *fuzzBlobs
	h      http.Handler
	actors []ident.Private // admin, alice (patient), doc (member), hospital (org)
	record string
	cons   string
	// records are every record's ID, record first; the others (the
	// sizes given to newFuzzWorld beyond the first) are further laboratory
	// records of alice's.
	records []string
}

// newFuzzWorld builds the world; sizes, if given, are the declared sizes of
// alice's laboratory records (default one of 4 bytes).
func newFuzzWorld(t testing.TB, sizes ...int64) *fuzzWorld {
	t.Helper()
	st, err := state.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := app.New(fuzzChain, st, slog.New(slog.DiscardHandler))
	admin, alice, doc, hosp := fuzzKey(t, "admin"), fuzzKey(t, "alice"), fuzzKey(t, "doc"), fuzzKey(t, "hospital")
	g, _ := json.Marshal(app.Genesis{Admins: []string{admin.Public().String()}})
	ctx := context.Background()
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: fuzzChain, AppStateBytes: g, Time: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	blobs := &fuzzBlobs{m: map[string][]byte{}}
	put := func(b []byte) string { n := blob.Hash(b); _ = blobs.keep(n, b); return n }
	var eps []tx.EpochPub
	for _, c := range consent.Categories {
		k, err := seal.EpochKey(alice, c, 0)
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, tx.EpochPub{Category: c, Epoch: 0, Key: k.PublicKey().Bytes()})
	}
	ct, ee, se, ke := put([]byte("ciphertext")), put([]byte("epoch envelope")), put([]byte("self envelope")), put([]byte("key envelope"))
	var txs [][]byte
	n := uint64(1)
	mk := func(k ident.Private, typ tx.Type, body any) []byte {
		x, err := tx.New(typ, k.ID(), n, body)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if err := x.Sign(fuzzChain, k.Sign); err != nil {
			t.Fatal(err)
		}
		raw, _ := x.Encode()
		txs = append(txs, raw)
		return raw
	}
	mk(admin, tx.TypeOrgAdd, tx.OrgAdd{Public: hosp.Public().String(), Name: "Hospital"})
	mk(hosp, tx.TypeMemberAdd, tx.MemberAdd{Public: doc.Public().String(), Role: "physician"})
	mk(alice, tx.TypePatientAdd, tx.PatientAdd{Public: alice.Public().String(), Epochs: eps})
	if len(sizes) == 0 {
		sizes = []int64{4}
	}
	var records []string
	for i, size := range sizes {
		c := ct
		if i > 0 {
			c = put(fmt.Appendf(nil, "ciphertext %d", i))
		}
		mk(alice, tx.TypeRecordPut, tx.RecordPut{Patient: alice.ID(), Category: "laboratory", ContentType: "text/plain", Size: size,
			Ciphertext: c, Commitment: strings.Repeat("ab", 32), EpochEnv: ee, SelfEnv: se})
		records = append(records, "r"+c[:32])
	}
	grant := mk(alice, tx.TypeConsentGrant, tx.ConsentGrant{Grantee: doc.ID(), Categories: []string{"laboratory"},
		Purposes: []string{"treatment"}, Actions: []string{"read"}, Condition: `requester.role == "physician"`,
		Keys: []tx.KeyEnvelope{{Category: "laboratory", Epoch: 0, Holder: doc.ID(), Blob: ke}}})
	fin, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Txs: txs, Height: 1, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range fin.TxResults {
		if r.Code != 0 {
			t.Fatalf("setup tx %d: code %d %s", i, r.Code, r.Log)
		}
	}
	if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	return &fuzzWorld{
		app:     a,
		blobs:   blobs,
		h:       NewHandler(fuzzBackend{a}, blobs, 1<<20, slog.New(slog.DiscardHandler)),
		actors:  []ident.Private{admin, alice, doc, hosp},
		record:  records[0],
		cons:    "c" + tx.Hash(grant)[:32],
		records: records,
	}
}

// signedEndpoint reports whether path is one the API only serves to a
// signed request.
func signedEndpoint(method, path string) bool {
	return method == http.MethodGet && (path == "/v1/records" || path == "/v1/consents" || path == "/v1/access")
}

func FuzzHandler(f *testing.F) {
	w := newFuzzWorld(f)
	alice, doc := w.actors[1], w.actors[2]
	access := func(k ident.Private, nonce uint64, rec, purpose string) []byte {
		x, _ := tx.New(tx.TypeAccess, k.ID(), nonce, tx.Access{Record: rec, Purpose: purpose})
		_ = x.Sign(fuzzChain, k.Sign)
		b, _ := x.Encode()
		return b
	}
	accessMany := func(k ident.Private, nonce uint64, recs ...string) []byte {
		x, _ := tx.New(tx.TypeAccessMany, k.ID(), nonce, tx.AccessMany{Records: recs, Purpose: "treatment"})
		_ = x.Sign(fuzzChain, k.Sign)
		b, _ := x.Encode()
		return b
	}
	staleAuth := tx.SignRequest(fuzzChain, alice.ID(), alice.Sign, "GET", "/v1/consents", 1, nil)
	// signAs: 0 sends auth as given; k in 1..4 replaces it with a fresh
	// signature by actor k-1 over exactly this method, URI and body.
	f.Add("GET", "/v1/status", []byte{}, "", uint8(0))                                                                                // public endpoint
	f.Add("GET", "/v1/actors/"+alice.ID(), []byte{}, "", uint8(0))                                                                    // a registered actor
	f.Add("GET", "/v1/actors/mc1XYZ", []byte{}, "", uint8(0))                                                                         // malformed ID
	f.Add("GET", "/v1/orgs/"+w.actors[3].ID()+"/members", []byte{}, "", uint8(0))                                                     // members
	f.Add("GET", "/v1/patients/"+alice.ID()+"/epochs", []byte{}, "", uint8(0))                                                        // epochs
	f.Add("GET", "/v1/patients/%00/epochs", []byte{}, "", uint8(0))                                                                   // NUL in a path value
	f.Add("GET", "/v1/records?patient="+alice.ID(), []byte{}, "", uint8(2))                                                           // patient lists, freshly signed
	f.Add("GET", "/v1/records?patient="+alice.ID(), []byte{}, "", uint8(3))                                                           // grantee lists (condition evaluated)
	f.Add("GET", "/v1/records?patient=nobody", []byte{}, "", uint8(3))                                                                // bad patient param
	f.Add("GET", "/v1/consents?patient="+alice.ID(), []byte{}, "", uint8(3))                                                          // grantee asks for patient's list: 403
	f.Add("GET", "/v1/access", []byte{}, "", uint8(2))                                                                                // own access log
	f.Add("GET", "/v1/records?patient="+alice.ID()+"&limit=1&after=r0", []byte{}, "", uint8(2))                                       // a page
	f.Add("GET", "/v1/access?limit=1001&after=%00", []byte{}, "", uint8(2))                                                           // bad page
	f.Add("GET", "/v1/access?patient="+alice.ID()+"&patient=x", []byte{}, "", uint8(3))                                               // repeated param
	f.Add("GET", "/v1/consents", []byte{}, staleAuth, uint8(0))                                                                       // stale signature
	f.Add("GET", "/v1/consents", []byte{}, "Medchain a:b:c", uint8(0))                                                                // malformed header
	f.Add("GET", "/v1/consents", []byte{}, "Medchain "+alice.ID()+":9223372036854775807:"+strings.Repeat("A", 86), uint8(0))          // max int64 time
	f.Add("GET", "/v1/consents", []byte{}, "Medchain "+alice.ID()+":-9223372036854775808:"+strings.Repeat("A", 86), uint8(0))         // min int64 time: Sub overflows
	f.Add("GET", "/v1/consents", []byte{}, "Bearer xyz", uint8(0))                                                                    // another scheme
	f.Add("POST", "/v1/txs", []byte("{}"), "", uint8(0))                                                                              // empty object
	f.Add("POST", "/v1/txs", access(doc, 2, w.record, "treatment"), "", uint8(0))                                                     // a valid access tx
	f.Add("POST", "/v1/records/"+w.record+"/read", access(doc, uint64(time.Now().UnixNano()), w.record, "treatment"), "", uint8(0))   // grantee read, served
	f.Add("POST", "/v1/records/"+w.record+"/read", access(alice, uint64(time.Now().UnixNano()), w.record, "treatment"), "", uint8(0)) // patient read (stale later)
	f.Add("POST", "/v1/records/"+w.record+"/read", access(doc, 4, w.record, "research"), "", uint8(0))                                // purpose not granted
	f.Add("POST", "/v1/records/rnope/read", access(doc, 5, "rnope", "treatment"), "", uint8(0))                                       // no such record
	f.Add("POST", "/v1/records/"+w.record+"/read", access(doc, 6, "r0", "treatment"), "", uint8(0))                                   // id mismatch
	f.Add("POST", "/v1/records/read", accessMany(doc, uint64(time.Now().UnixNano()), w.record), "", uint8(0))                         // grantee reads many, served
	f.Add("POST", "/v1/records/read", accessMany(doc, uint64(time.Now().UnixNano()), w.record, w.record), "", uint8(0))               // a record named twice
	f.Add("POST", "/v1/records/read", accessMany(doc, uint64(time.Now().UnixNano())), "", uint8(0))                                   // no records
	f.Add("POST", "/v1/records/read", accessMany(doc, uint64(time.Now().UnixNano()), w.record, "rnope"), "", uint8(0))                // one record missing
	f.Add("POST", "/v1/records/read", access(doc, uint64(time.Now().UnixNano()), w.record, "treatment"), "", uint8(0))                // a one-record access
	f.Add("PUT", "/v1/blobs/"+blob.Hash([]byte("x")), []byte("x"), "", uint8(2))                                                      // signed upload
	f.Add("PUT", "/v1/blobs/"+blob.Hash([]byte("x")), []byte("y"), "", uint8(2))                                                      // wrong bytes
	f.Add("PUT", "/v1/blobs/ZZ", []byte("x"), "", uint8(0))                                                                           // bad name
	f.Add("POST", "/v1/blobs", blob.EncodeBatch([][]byte{[]byte("a"), {}, []byte("bc")}), "", uint8(4))                               // signed batch
	f.Add("POST", "/v1/blobs", blob.EncodeBatch([][]byte{[]byte("a")}), "", uint8(0))                                                 // unsigned batch, not a peer
	f.Add("POST", "/v1/blobs", blob.EncodeBatch([][]byte{[]byte("a")})[:3], "", uint8(4))                                             // truncated batch
	f.Add("POST", "/v1/blobs", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "", uint8(4))                                  // absurd length prefix
	f.Add("GET", "/v1/blobs/"+blob.Hash([]byte("x")), []byte{}, "", uint8(0))                                                         // not a peer
	f.Add("DELETE", "/v1/status", []byte{}, "", uint8(0))                                                                             // unknown method
	f.Add("GET", "/v1/../v1/status", []byte{}, "", uint8(0))                                                                          // cleaned path: redirect
	f.Add("GET", "/v1/consents", []byte{}, "", uint8(0))                                                                              // unsigned
	f.Fuzz(func(t *testing.T, method, target string, body []byte, auth string, signAs uint8) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://node"+target, strings.NewReader(string(body)))
		if err != nil {
			return // not a request a client could send
		}
		fresh := false
		if k := int(signAs); k >= 1 && k <= len(w.actors) {
			key := w.actors[k-1]
			auth = tx.SignRequest(fuzzChain, key.ID(), key.Sign, req.Method, req.URL.RequestURI(), time.Now().UnixNano(), body)
			fresh = true
		}
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		rec := httptest.NewRecorder()
		w.h.ServeHTTP(rec, req)
		res := rec.Result()
		t.Logf("%s %s (signAs %d): HTTP %d %.120s", method, target, signAs, res.StatusCode, rec.Body)
		switch res.StatusCode {
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			return // the mux cleaning the path
		case http.StatusInternalServerError:
			t.Fatalf("%s %s: 500 %s", method, target, rec.Body)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: HTTP %d with Content-Type %q", method, target, res.StatusCode, ct)
		}
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m == nil {
			t.Fatalf("%s %s: HTTP %d, body is not a JSON object: %q", method, target, res.StatusCode, rec.Body)
		}
		if res.StatusCode >= 400 {
			if _, hasErr := m["error"]; !hasErr {
				if _, hasCode := m["code"]; !hasCode {
					t.Fatalf("%s %s: HTTP %d with neither error nor code: %s", method, target, res.StatusCode, rec.Body)
				}
			}
		}
		if res.StatusCode/100 == 2 && signedEndpoint(req.Method, req.URL.Path) && !fresh {
			// Only a replay of a fresh seed header could get here, and the
			// replay cache must stop it: the fuzzer cannot forge Ed25519.
			t.Fatalf("%s %s: 2xx for a signed endpoint without a fresh signature (auth %q)", method, target, auth)
		}
	})
}

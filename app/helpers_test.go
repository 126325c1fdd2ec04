package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/state"
	"github.com/medchain/medchain/tx"
)

const testChain = "medchain-test"

// genesisTime is the time of block 1; block h is h-1 seconds later.
var genesisTime = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// memStore opens an in-memory state store, closed when the test ends.
func memStore(t testing.TB) *state.Store {
	t.Helper()
	s, err := state.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newKey generates a fresh identity.
func newKey(t testing.TB) ident.Private {
	t.Helper()
	k, err := ident.Generate()
	if err != nil {
		t.Fatalf("ident.Generate: %v", err)
	}
	return k
}

// node is an App driven directly through its ABCI methods, as CometBFT
// would drive it, with the bookkeeping a test needs.
type node struct {
	t      testing.TB
	app    *App
	store  *state.Store
	height int64 // last committed
	nonces map[string]uint64
	closed bool
}

// newNode opens a store in dir ("" for memory), runs InitChain with admin
// as the only network admin, and returns the node at height 0.
func newNode(t testing.TB, dir string, admin ident.Private) *node {
	t.Helper()
	n := openNode(t, dir)
	n.initChain(admin)
	return n
}

// openNode opens a store in dir and an App over it, without InitChain, as a
// restarted node does.
func openNode(t testing.TB, dir string) *node {
	t.Helper()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatalf("state.Open(%q): %v", dir, err)
	}
	a := New(testChain, s, slog.New(slog.DiscardHandler))
	n := &node{t: t, app: a, store: s, height: s.Height(), nonces: map[string]uint64{}}
	t.Cleanup(n.close)
	return n
}

// close closes the store once; the App must not be used afterwards. (A
// second state.Store.Close panics inside Pebble.)
func (n *node) close() {
	if !n.closed {
		n.closed = true
		n.store.Close()
	}
}

// initChain runs InitChain for a chain of the current state version.
func (n *node) initChain(admins ...ident.Private) []byte {
	n.t.Helper()
	return n.initChainVersion(StateVersion, admins...)
}

// initChainVersion runs InitChain for a chain whose genesis names version.
func (n *node) initChainVersion(version int, admins ...ident.Private) []byte {
	n.t.Helper()
	g := Genesis{StateVersion: version}
	for _, a := range admins {
		g.Admins = append(g.Admins, a.Public().String())
	}
	b, err := json.Marshal(g)
	if err != nil {
		n.t.Fatal(err)
	}
	res, err := n.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: b, Time: genesisTime})
	if err != nil {
		n.t.Fatalf("InitChain: %v", err)
	}
	return res.AppHash
}

// blockAt is the time the helpers give block h.
func blockAt(h int64) time.Time { return genesisTime.Add(time.Duration(h-1) * time.Second) }

// finalize runs FinalizeBlock for the next height without committing.
func (n *node) finalize(txs ...[]byte) *abci.ResponseFinalizeBlock {
	n.t.Helper()
	h := n.height + 1
	res, err := n.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Txs:    txs,
		Height: h,
		Time:   blockAt(h),
	})
	if err != nil {
		n.t.Fatalf("FinalizeBlock(%d): %v", h, err)
	}
	if len(res.TxResults) != len(txs) {
		n.t.Fatalf("FinalizeBlock(%d): %d results for %d txs", h, len(res.TxResults), len(txs))
	}
	return res
}

// commit runs Commit after finalize and checks that the committed state has
// the app hash that FinalizeBlock announced.
func (n *node) commit(announced []byte) {
	n.t.Helper()
	if _, err := n.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		n.t.Fatalf("Commit(%d): %v", n.height+1, err)
	}
	n.height++
	if got := n.store.Root(); !bytes.Equal(got, announced) {
		n.t.Fatalf("height %d: committed root %X, FinalizeBlock announced %X", n.height, got, announced)
	}
}

// block finalizes and commits one block and returns each tx's code.
func (n *node) block(txs ...[]byte) []uint32 {
	n.t.Helper()
	res := n.finalize(txs...)
	n.commit(res.AppHash)
	codes := make([]uint32, len(res.TxResults))
	for i, r := range res.TxResults {
		codes[i] = r.Code
	}
	return codes
}

// deliver commits raw alone in a block and returns its code and log.
func (n *node) deliver(raw []byte) (uint32, string) {
	n.t.Helper()
	res := n.finalize(raw)
	n.commit(res.AppHash)
	return res.TxResults[0].Code, res.TxResults[0].Log
}

// mustDeliver commits raw and fails unless it succeeds.
func (n *node) mustDeliver(raw []byte) {
	n.t.Helper()
	if code, log := n.deliver(raw); code != CodeOK {
		n.t.Fatalf("tx failed at height %d: code %d: %s", n.height, code, log)
	}
}

// checkTx runs CheckTx and returns the code and log.
func (n *node) checkTx(raw []byte) (uint32, string) {
	n.t.Helper()
	res, err := n.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_New})
	if err != nil {
		n.t.Fatalf("CheckTx: %v", err)
	}
	return res.Code, res.Log
}

// info runs Info.
func (n *node) info() *abci.ResponseInfo {
	n.t.Helper()
	res, err := n.app.Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		n.t.Fatalf("Info: %v", err)
	}
	return res
}

// nextNonce returns a fresh nonce for key.
func (n *node) nextNonce(key ident.Private) uint64 {
	n.nonces[key.ID()]++
	return n.nonces[key.ID()]
}

// sign builds and signs a transaction from key with its own ID as signer
// and the next nonce.
func (n *node) sign(key ident.Private, typ tx.Type, body any) []byte {
	n.t.Helper()
	return signTx(n.t, key, key.ID(), n.nextNonce(key), typ, body)
}

// signTx builds a transaction with any signer field and nonce, signed by key
// for the test chain.
func signTx(t testing.TB, key ident.Private, signer string, nonce uint64, typ tx.Type, body any) []byte {
	t.Helper()
	return signTxFor(t, testChain, key, signer, nonce, typ, body)
}

func signTxFor(t testing.TB, chainID string, key ident.Private, signer string, nonce uint64, typ tx.Type, body any) []byte {
	t.Helper()
	x, err := tx.New(typ, signer, nonce, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Sign(chainID, key.Sign); err != nil {
		t.Fatal(err)
	}
	raw, err := x.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func orgAdd(k ident.Private, name string) *tx.OrgAdd {
	return &tx.OrgAdd{Public: k.Public().String(), Name: name}
}

func memberAdd(k ident.Private, role string) *tx.MemberAdd {
	return &tx.MemberAdd{Public: k.Public().String(), Role: role}
}

// patientAdd registers k with a first epoch key for every category. Any
// valid HPKE key will do for the ledger, so the patient's own is used.
func patientAdd(k ident.Private) *tx.PatientAdd {
	b := &tx.PatientAdd{Public: k.Public().String()}
	for _, c := range consent.Categories {
		b.Epochs = append(b.Epochs, tx.EpochPub{Category: c, Epoch: 0, Key: k.Public().Box})
	}
	return b
}

// world is a ledger with one of each kind of actor, each registered in its
// own committed block.
type world struct {
	*node
	admin, orgA, orgB, memberA, patient ident.Private
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{admin: newKey(t), orgA: newKey(t), orgB: newKey(t), memberA: newKey(t), patient: newKey(t)}
	w.node = newNode(t, "", w.admin)
	w.block() // genesis admins are committed with block 1
	w.mustDeliver(w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.orgA, "Org A")))
	w.mustDeliver(w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.orgB, "Org B")))
	w.mustDeliver(w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(w.memberA, "physician")))
	w.mustDeliver(w.sign(w.patient, tx.TypePatientAdd, patientAdd(w.patient)))
	return w
}

// actor reads a committed actor, failing if it is missing.
func (n *node) actor(id string) *Actor {
	n.t.Helper()
	a, err := n.app.GetActor(id)
	if err != nil {
		n.t.Fatalf("GetActor(%s): %v", id, err)
	}
	return a
}

// recordMaker returns a source of distinct laboratory records of patient,
// each naming hashes no other record names.
func recordMaker(patient string) func() tx.RecordPut {
	seq := 0
	return func() tx.RecordPut {
		seq++
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(seq)))
		x := hex.EncodeToString(h[:])
		return tx.RecordPut{Patient: patient, Category: "laboratory", ContentType: "application/fhir+json",
			Size: 2048, Ciphertext: x, Commitment: x, EpochEnv: x, SelfEnv: x}
	}
}

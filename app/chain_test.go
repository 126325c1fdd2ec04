package app

import (
	"bytes"
	"context"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/tx"
)

// scriptBlocks returns a few blocks of identity transactions, some of which
// fail, signed once so that every node is fed the same bytes.
func scriptBlocks(w *world) [][][]byte {
	org, m1, m2, p := newKey(w.t), newKey(w.t), newKey(w.t), newKey(w.t)
	return [][][]byte{
		{w.sign(w.admin, tx.TypeOrgAdd, orgAdd(org, "Mercy"))},
		{
			w.sign(org, tx.TypeMemberAdd, memberAdd(m1, "physician")),
			w.sign(org, tx.TypeMemberAdd, memberAdd(m2, "surgeon")), // invalid role
			w.sign(p, tx.TypePatientAdd, patientAdd(p)),
			[]byte("garbage"),
		},
		{},
		{
			w.sign(m1, tx.TypeOrgAdd, orgAdd(newKey(w.t), "Rogue")), // unauthorized
			w.sign(org, tx.TypeMemberAdd, memberAdd(m2, "nurse")),
		},
	}
}

// TestDeterminism feeds two independent apps the same genesis and blocks:
// every app hash and every result code must agree.
func TestDeterminism(t *testing.T) {
	w := newWorld(t) // only for keys and signing
	blocks := scriptBlocks(w)
	a, b := newNode(t, "", w.admin), newNode(t, "", w.admin)
	for _, n := range []*node{a, b} {
		n.block()
	}
	for i, txs := range blocks {
		ra, rb := a.finalize(txs...), b.finalize(txs...)
		if !bytes.Equal(ra.AppHash, rb.AppHash) {
			t.Fatalf("block %d: app hashes %X and %X differ", i, ra.AppHash, rb.AppHash)
		}
		for j := range txs {
			if ra.TxResults[j].Code != rb.TxResults[j].Code || ra.TxResults[j].Log != rb.TxResults[j].Log {
				t.Errorf("block %d tx %d: results %v and %v differ", i, j, ra.TxResults[j], rb.TxResults[j])
			}
		}
		a.commit(ra.AppHash)
		b.commit(rb.AppHash)
	}
	if a.info().LastBlockHeight != int64(len(blocks)+1) {
		t.Errorf("height %d, want %d", a.info().LastBlockHeight, len(blocks)+1)
	}
	if n, err := a.store.Check(); err != nil || n == 0 {
		t.Errorf("Check = %d, %v", n, err)
	}
}

// TestBlockTimeChangesHash checks that the app hash depends on the block's
// time (it is stored) but on no local clock: the same block at the same time
// gives the same hash.
func TestBlockTimeChangesHash(t *testing.T) {
	w := newWorld(t)
	a, b := newNode(t, "", w.admin), newNode(t, "", w.admin)
	ra := a.finalize()
	rb := b.finalize()
	if !bytes.Equal(ra.AppHash, rb.AppHash) {
		t.Fatal("same empty block gives different hashes")
	}
	rc, err := b.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: 1, Time: genesisTime.Add(1)})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ra.AppHash, rc.AppHash) {
		t.Error("block time is not part of the state")
	}
}

func TestInfo(t *testing.T) {
	admin := newKey(t)
	n := newNode(t, "", admin)
	if got := n.info(); got.LastBlockHeight != 0 || len(got.LastBlockAppHash) != 0 {
		t.Errorf("Info before block 1 = %d/%X, want 0 and no hash", got.LastBlockHeight, got.LastBlockAppHash)
	}
	for h := int64(1); h <= 3; h++ {
		res := n.finalize(n.sign(admin, tx.TypeOrgAdd, orgAdd(newKey(t), "Org")))
		if got := n.info(); got.LastBlockHeight != h-1 {
			t.Errorf("Info between FinalizeBlock and Commit = height %d, want %d", got.LastBlockHeight, h-1)
		}
		n.commit(res.AppHash)
		got := n.info()
		if got.LastBlockHeight != h || !bytes.Equal(got.LastBlockAppHash, res.AppHash) {
			t.Errorf("Info after Commit %d = %d/%X, want %d/%X", h, got.LastBlockHeight, got.LastBlockAppHash, h, res.AppHash)
		}
		if got.Version != Version {
			t.Errorf("Info version %q, want %q", got.Version, Version)
		}
	}
}

// TestInitChain checks that InitChain refuses another chain or a malformed
// admin key, and that the genesis admin is on the ledger after block 1.
func TestInitChain(t *testing.T) {
	admin := newKey(t)
	n := openNode(t, "")
	if _, err := n.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: "other-chain"}); err == nil {
		t.Error("InitChain accepted another chain ID")
	}
	if _, err := n.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: []byte(`{"admins":["mcpub1nope"]}`)}); err == nil {
		t.Error("InitChain accepted a malformed admin key")
	}
	n2 := newNode(t, "", admin)
	n2.block()
	if a := n2.actor(admin.ID()); a.Kind != KindAdmin {
		t.Errorf("genesis admin = %+v", a)
	}
}

// TestCrashBeforeCommit discards the App between FinalizeBlock and Commit,
// as a crash would, and restarts on the same disk: Info must report the
// previous block, and replaying the lost block must give the same hash.
func TestCrashBeforeCommit(t *testing.T) {
	tests := []struct {
		name      string
		committed int // blocks committed before the crash
	}{
		{"in block 1, before any commit", 0},
		{"in block 3", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			admin := newKey(t)
			first := openNode(t, dir)
			first.initChain(admin)
			org := newKey(t)
			blocks := [][][]byte{
				{first.sign(admin, tx.TypeOrgAdd, orgAdd(org, "Org"))},
				{first.sign(org, tx.TypeMemberAdd, memberAdd(newKey(t), "nurse"))},
				{first.sign(admin, tx.TypeOrgAdd, orgAdd(newKey(t), "Org 2")), first.sign(org, tx.TypeMemberAdd, memberAdd(newKey(t), "staff"))},
			}
			for _, b := range blocks[:tc.committed] {
				first.block(b...)
			}
			var wantHeight int64 = int64(tc.committed)
			wantHash := first.info().LastBlockAppHash
			lost := first.finalize(blocks[tc.committed]...)
			first.close() // the process dies; nothing after FinalizeBlock ran

			second := openNode(t, dir)
			got := second.info()
			if got.LastBlockHeight != wantHeight || !bytes.Equal(got.LastBlockAppHash, wantHash) {
				t.Fatalf("Info after restart = %d/%X, want %d/%X", got.LastBlockHeight, got.LastBlockAppHash, wantHeight, wantHash)
			}
			if wantHeight == 0 {
				second.initChain(admin) // CometBFT calls InitChain again for an app at height 0
			}
			replayed := second.finalize(blocks[tc.committed]...)
			if !bytes.Equal(replayed.AppHash, lost.AppHash) {
				t.Fatalf("replayed block %d gives %X, before the crash %X", wantHeight+1, replayed.AppHash, lost.AppHash)
			}
			for i, r := range replayed.TxResults {
				if r.Code != lost.TxResults[i].Code {
					t.Errorf("tx %d: code %d after replay, %d before", i, r.Code, lost.TxResults[i].Code)
				}
			}
			second.commit(replayed.AppHash)
			if got := second.info(); got.LastBlockHeight != wantHeight+1 {
				t.Errorf("height after replay %d, want %d", got.LastBlockHeight, wantHeight+1)
			}
		})
	}
}

// TestRestartAfterCommit reopens a cleanly committed store and continues.
func TestRestartAfterCommit(t *testing.T) {
	dir := t.TempDir()
	admin := newKey(t)
	first := newNode(t, dir, admin)
	first.block()
	first.mustDeliver(first.sign(admin, tx.TypeOrgAdd, orgAdd(newKey(t), "Org")))
	info := first.info()
	first.close()

	second := openNode(t, dir)
	if got := second.info(); got.LastBlockHeight != info.LastBlockHeight || !bytes.Equal(got.LastBlockAppHash, info.LastBlockAppHash) {
		t.Fatalf("Info after restart = %d/%X, want %d/%X", got.LastBlockHeight, got.LastBlockAppHash, info.LastBlockHeight, info.LastBlockAppHash)
	}
	second.nonces = first.nonces
	second.mustDeliver(second.sign(admin, tx.TypeOrgAdd, orgAdd(newKey(t), "Org 2")))
	// The nonce survived the restart, so the old tx cannot be replayed.
	if code, _ := second.deliver(signTx(t, admin, admin.ID(), 1, tx.TypeOrgAdd, orgAdd(newKey(t), "Old"))); code != CodeReplay {
		t.Errorf("nonce 1 after restart = %d, want CodeReplay", code)
	}
}

// TestCheckTxPendingNonce checks that the mempool does not admit two txs
// from one signer with the same nonce before a commit, and forgets its
// pending nonces at Commit.
func TestCheckTxPendingNonce(t *testing.T) {
	w := newWorld(t)
	n := w.nonces[w.admin.ID()] + 1
	first := signTx(t, w.admin, w.admin.ID(), n, tx.TypeOrgAdd, orgAdd(newKey(t), "First"))
	second := signTx(t, w.admin, w.admin.ID(), n, tx.TypeOrgAdd, orgAdd(newKey(t), "Second"))
	lower := signTx(t, w.admin, w.admin.ID(), n-1, tx.TypeOrgAdd, orgAdd(newKey(t), "Lower"))
	next := signTx(t, w.admin, w.admin.ID(), n+1, tx.TypeOrgAdd, orgAdd(newKey(t), "Next"))
	other := w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(newKey(t), "staff"))

	steps := []struct {
		name string
		raw  []byte
		want uint32
	}{
		{"first", first, CodeOK},
		{"same nonce again", second, CodeReplay},
		{"same bytes again", first, CodeReplay},
		{"lower nonce", lower, CodeReplay},
		{"next nonce", next, CodeOK},
		{"other signer", other, CodeOK},
	}
	for _, s := range steps {
		if code, log := w.checkTx(s.raw); code != s.want {
			t.Errorf("%s: CheckTx = %d (%s), want %d", s.name, code, log, s.want)
		}
	}
	// Only "second" is committed; after Commit the mempool rechecks against
	// committed state: first is now stale, next is still fine.
	if codes := w.block(second); codes[0] != CodeOK {
		t.Fatalf("second in a block = %d", codes[0])
	}
	recheck := func(raw []byte) uint32 {
		res, err := w.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_Recheck})
		if err != nil {
			t.Fatal(err)
		}
		return res.Code
	}
	if code := recheck(first); code != CodeReplay {
		t.Errorf("recheck first = %d, want CodeReplay", code)
	}
	if code := recheck(next); code != CodeOK {
		t.Errorf("recheck next = %d, want CodeOK", code)
	}
}

// TestRejectedTxChangesNothing checks that a transaction that fails leaves
// the state exactly as if it had not been in the block: two nodes with the
// same history, one given the failing tx and one an empty block, must reach
// the same app hash. The interesting cases fail late, after the handler has
// already written part of its effect.
func TestRejectedTxChangesNothing(t *testing.T) {
	admin, org, member, patient := newKey(t), newKey(t), newKey(t), newKey(t)
	setup := openNode(t, "") // only to sign the shared history
	history := [][]byte{
		setup.sign(admin, tx.TypeOrgAdd, orgAdd(org, "Org")),
		setup.sign(org, tx.TypeMemberAdd, memberAdd(member, "physician")),
		setup.sign(patient, tx.TypePatientAdd, patientAdd(patient)),
	}
	blob := strings.Repeat("ab", 32)
	grant := func(keys ...tx.KeyEnvelope) []byte {
		return setup.sign(patient, tx.TypeConsentGrant, &tx.ConsentGrant{
			Grantee: member.ID(), Categories: []string{"laboratory"}, Purposes: []string{"treatment"},
			Actions: []string{"read"}, Keys: keys,
		})
	}
	tests := []struct {
		name  string
		build func() []byte
		want  uint32
	}{
		{"unauthorized member add", func() []byte { return setup.sign(admin, tx.TypeMemberAdd, memberAdd(newKey(t), "nurse")) }, CodeUnauthorized},
		{"invalid org name", func() []byte { return setup.sign(admin, tx.TypeOrgAdd, orgAdd(newKey(t), " X")) }, CodeInvalid},
		{"patient epochs missing a category", func() []byte {
			k := newKey(t)
			b := patientAdd(k)
			b.Epochs = b.Epochs[:len(consent.Categories)-1]
			return setup.sign(k, tx.TypePatientAdd, b)
		}, CodeInvalid},
		{"patient epochs wrong at the end", func() []byte {
			k := newKey(t)
			b := patientAdd(k)
			b.Epochs[len(b.Epochs)-1].Epoch = 1 // "first epochs are 0"
			return setup.sign(k, tx.TypePatientAdd, b)
		}, CodeInvalid},
		{"consent grant with a bad second key envelope", func() []byte {
			return grant(
				tx.KeyEnvelope{Category: "laboratory", Epoch: 0, Holder: member.ID(), Blob: blob},
				tx.KeyEnvelope{Category: "laboratory", Epoch: 0, Holder: member.ID(), Blob: "not-a-hash"},
			)
		}, CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			with, without := newNode(t, "", admin), newNode(t, "", admin)
			for _, n := range []*node{with, without} {
				n.block()
				if codes := n.block(history...); codes[0]|codes[1]|codes[2] != CodeOK {
					t.Fatalf("history failed: %v", codes)
				}
			}
			raw := tc.build()
			res := with.finalize(raw)
			if res.TxResults[0].Code != tc.want {
				t.Fatalf("code %d (%s), want %d", res.TxResults[0].Code, res.TxResults[0].Log, tc.want)
			}
			empty := without.finalize()
			if bytes.Equal(res.AppHash, empty.AppHash) {
				return
			}
			with.commit(res.AppHash)
			var leaked []string
			_ = with.store.Scan(nil, func(k, v []byte) bool {
				if _, err := without.store.Get(k); err != nil && !bytes.HasPrefix(k, []byte("chain/")) {
					leaked = append(leaked, string(k))
				}
				return true
			})
			t.Fatalf("a rejected tx changed the app hash; keys it left behind: %q", leaked)
		})
	}
}

// TestBlockTimeFollowsCommits checks the block time the application judges
// CheckTx and reads by: none before the first block, each committed
// block's time after it (not FinalizeBlock's: the block is not committed
// yet), and the last one again after a restart.
func TestBlockTimeFollowsCommits(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, dir, newKey(t))
	if got := n.app.BlockTime(); got != 0 {
		t.Fatalf("block time before the first block = %d, want 0", got)
	}
	for h := int64(1); h <= 3; h++ {
		res := n.finalize()
		if got, want := n.app.BlockTime(), blockTime(h-1); got != want {
			t.Fatalf("block time during FinalizeBlock(%d) = %d, want %d (the last committed)", h, got, want)
		}
		n.commit(res.AppHash)
		if got, want := n.app.BlockTime(), blockTime(h); got != want {
			t.Fatalf("block time after block %d = %d, want %d", h, got, want)
		}
	}
	n.close()
	if got, want := openNode(t, dir).app.BlockTime(), blockTime(3); got != want {
		t.Fatalf("block time after a restart = %d, want %d", got, want)
	}
}

// blockTime is BlockTime once block h is committed (0 before block 1).
func blockTime(h int64) int64 {
	if h == 0 {
		return 0
	}
	return blockAt(h).UnixNano()
}

package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// TestIdentityAuthorization is SPEC's Identities table: who may admit whom.
// Every case runs through CheckTx and then FinalizeBlock on a fresh world,
// and both must give the same code.
func TestIdentityAuthorization(t *testing.T) {
	var fresh ident.Private // set per case, the key being admitted
	tests := []struct {
		name  string
		build func(w *world) []byte
		want  uint32
		check func(t *testing.T, w *world) // after a successful tx
	}{
		{
			name:  "admin admits an org",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(fresh, "Mercy & Co")) },
			want:  CodeOK,
			check: func(t *testing.T, w *world) {
				a := w.actor(fresh.ID())
				if a.Kind != KindOrg || a.Name != "Mercy & Co" || a.Public != fresh.Public().String() || a.Height != w.height {
					t.Errorf("org = %+v", a)
				}
			},
		},
		{
			name:  "org cannot admit an org",
			build: func(w *world) []byte { return w.sign(w.orgA, tx.TypeOrgAdd, orgAdd(fresh, "X")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "member cannot admit an org",
			build: func(w *world) []byte { return w.sign(w.memberA, tx.TypeOrgAdd, orgAdd(fresh, "X")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "patient cannot admit an org",
			build: func(w *world) []byte { return w.sign(w.patient, tx.TypeOrgAdd, orgAdd(fresh, "X")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "org admits its member",
			build: func(w *world) []byte { return w.sign(w.orgB, tx.TypeMemberAdd, memberAdd(fresh, "nurse")) },
			want:  CodeOK,
			check: func(t *testing.T, w *world) {
				a := w.actor(fresh.ID())
				if a.Kind != KindMember || a.Role != "nurse" || a.Org != w.orgB.ID() {
					t.Errorf("member = %+v", a)
				}
				if ms, err := w.app.Members(w.orgB.ID()); err != nil || len(ms) != 1 || ms[0] != fresh.ID() {
					t.Errorf("Members(orgB) = %v, %v", ms, err)
				}
			},
		},
		{
			name:  "admin cannot admit a member",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeMemberAdd, memberAdd(fresh, "nurse")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "another org's member cannot admit a member",
			build: func(w *world) []byte { return w.sign(w.memberA, tx.TypeMemberAdd, memberAdd(fresh, "nurse")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "patient cannot admit a member",
			build: func(w *world) []byte { return w.sign(w.patient, tx.TypeMemberAdd, memberAdd(fresh, "nurse")) },
			want:  CodeUnauthorized,
		},
		{
			name:  "patient registers itself",
			build: func(w *world) []byte { return w.sign(fresh, tx.TypePatientAdd, patientAdd(fresh)) },
			want:  CodeOK,
			check: func(t *testing.T, w *world) {
				if a := w.actor(fresh.ID()); a.Kind != KindPatient {
					t.Errorf("patient = %+v", a)
				}
			},
		},
		{
			// The body carries the key; only that key may sign for it.
			name: "patient add signed by another patient",
			build: func(w *world) []byte {
				return w.sign(w.patient, tx.TypePatientAdd, patientAdd(fresh))
			},
			want: CodeBadSignature,
		},
		{
			name: "patient add signed by an org",
			build: func(w *world) []byte {
				return w.sign(w.orgA, tx.TypePatientAdd, patientAdd(fresh))
			},
			want: CodeBadSignature,
		},
		{
			name: "patient add naming the patient but signed by another key",
			build: func(w *world) []byte {
				return signTx(w.t, w.orgA, fresh.ID(), 1, tx.TypePatientAdd, patientAdd(fresh))
			},
			want: CodeBadSignature,
		},
		{
			name:  "patient key with a malformed public",
			build: func(w *world) []byte { return w.sign(fresh, tx.TypePatientAdd, &tx.PatientAdd{Public: "mcpub1AAAA"}) },
			want:  CodeMalformed,
		},
		{
			name:  "patient re-registers",
			build: func(w *world) []byte { return w.sign(w.patient, tx.TypePatientAdd, patientAdd(w.patient)) },
			want:  CodeExists,
		},
		{
			name:  "org admitted with a patient's key",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.patient, "X")) },
			want:  CodeExists,
		},
		{
			name:  "org admitted twice",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.orgA, "Again")) },
			want:  CodeExists,
		},
		{
			name:  "member admitted with an org's key",
			build: func(w *world) []byte { return w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(w.orgB, "nurse")) },
			want:  CodeExists,
		},
		{
			name:  "member moved to another org",
			build: func(w *world) []byte { return w.sign(w.orgB, tx.TypeMemberAdd, memberAdd(w.memberA, "nurse")) },
			want:  CodeExists,
		},
		{
			name:  "admin's own key as an org",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(w.admin, "X")) },
			want:  CodeExists,
		},
		{
			name:  "unknown signer",
			build: func(w *world) []byte { return w.sign(fresh, tx.TypeOrgAdd, orgAdd(newKey(w.t), "X")) },
			want:  CodeUnknownSigner,
		},
		{
			name:  "unknown signer admits a member",
			build: func(w *world) []byte { return w.sign(fresh, tx.TypeMemberAdd, memberAdd(newKey(w.t), "nurse")) },
			want:  CodeUnknownSigner,
		},
		{
			name:  "malformed bytes",
			build: func(w *world) []byte { return []byte(`{"type":"org.add"`) },
			want:  CodeMalformed,
		},
		{
			name:  "empty tx",
			build: func(w *world) []byte { return nil },
			want:  CodeMalformed,
		},
		{
			name: "oversized",
			build: func(w *world) []byte {
				return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(fresh, strings.Repeat("a", tx.MaxSize)))
			},
			want: CodeTooLarge,
		},
		{
			name: "patient with a malformed epoch key",
			build: func(w *world) []byte {
				b := patientAdd(fresh)
				b.Epochs[3].Key = b.Epochs[3].Key[:100]
				return w.sign(fresh, tx.TypePatientAdd, b)
			},
			want: CodeInvalid,
		},
		{
			name: "patient with an epoch key that is not ML-KEM",
			build: func(w *world) []byte {
				b := patientAdd(fresh)
				// Right length, but coefficients of 0xfff exceed the modulus.
				b.Epochs[5].Key = bytes.Repeat([]byte{0xff}, len(b.Epochs[5].Key))
				return w.sign(fresh, tx.TypePatientAdd, b)
			},
			want: CodeInvalid,
		},
		{
			name: "patient missing a category's epoch key",
			build: func(w *world) []byte {
				b := patientAdd(fresh)
				b.Epochs = b.Epochs[1:]
				return w.sign(fresh, tx.TypePatientAdd, b)
			},
			want: CodeInvalid,
		},
		{
			name:  "role not in the list",
			build: func(w *world) []byte { return w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(fresh, "surgeon")) },
			want:  CodeInvalid,
		},
		{
			name:  "role in another case",
			build: func(w *world) []byte { return w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(fresh, "Physician")) },
			want:  CodeInvalid,
		},
		{
			name:  "empty role",
			build: func(w *world) []byte { return w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(fresh, "")) },
			want:  CodeInvalid,
		},
		{
			name:  "empty org name",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(fresh, "")) },
			want:  CodeInvalid,
		},
		{
			name:  "org name with surrounding space",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(fresh, " Mercy")) },
			want:  CodeInvalid,
		},
		{
			name:  "org name too long",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(fresh, strings.Repeat("a", 129))) },
			want:  CodeInvalid,
		},
		{
			// The key's bytes are right, its spelling is not the one it
			// prints as: one key, one string on the ledger.
			name: "org with a public key broken over two lines",
			build: func(w *world) []byte {
				s := fresh.Public().String()
				return w.sign(w.admin, tx.TypeOrgAdd, &tx.OrgAdd{Public: s[:80] + "\n" + s[80:], Name: "X"})
			},
			want: CodeInvalid,
		},
		{
			name:  "org with a malformed public key",
			build: func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, &tx.OrgAdd{Public: "nope", Name: "X"}) },
			want:  CodeInvalid,
		},
		{
			name: "signed for another chain",
			build: func(w *world) []byte {
				return signTxFor(w.t, "medchain-other", w.admin, w.admin.ID(), w.nextNonce(w.admin), tx.TypeOrgAdd, orgAdd(fresh, "X"))
			},
			want: CodeBadSignature,
		},
		{
			name: "re-signed by another key with the original signer",
			build: func(w *world) []byte {
				return signTx(w.t, w.orgA, w.admin.ID(), w.nextNonce(w.admin), tx.TypeOrgAdd, orgAdd(fresh, "X"))
			},
			want: CodeBadSignature,
		},
		{
			name: "lower nonce",
			build: func(w *world) []byte {
				w.mustDeliver(signTx(w.t, w.admin, w.admin.ID(), 10, tx.TypeOrgAdd, orgAdd(newKey(w.t), "Ten")))
				return signTx(w.t, w.admin, w.admin.ID(), 9, tx.TypeOrgAdd, orgAdd(fresh, "Nine"))
			},
			want: CodeReplay,
		},
		{
			name: "same nonce, different tx",
			build: func(w *world) []byte {
				return signTx(w.t, w.admin, w.admin.ID(), w.nonces[w.admin.ID()], tx.TypeOrgAdd, orgAdd(fresh, "X"))
			},
			want: CodeReplay,
		},
		{
			name:  "nonce zero",
			build: func(w *world) []byte { return signTx(w.t, fresh, fresh.ID(), 0, tx.TypePatientAdd, patientAdd(fresh)) },
			want:  CodeReplay,
		},
		{
			name: "nonce skips ahead",
			build: func(w *world) []byte {
				return signTx(w.t, fresh, fresh.ID(), 1<<40, tx.TypePatientAdd, patientAdd(fresh))
			},
			want: CodeOK,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			fresh = newKey(t)
			raw := tc.build(w)
			root := w.store.Root()
			if code, log := w.checkTx(raw); code != tc.want {
				t.Errorf("CheckTx = %d (%s), want %d", code, log, tc.want)
			}
			if string(w.store.Root()) != string(root) {
				t.Error("CheckTx changed committed state")
			}
			code, log := w.deliver(raw)
			if code != tc.want {
				t.Fatalf("FinalizeBlock = %d (%s), want %d", code, log, tc.want)
			}
			if code != CodeOK && log == "" {
				t.Error("rejected tx has no log")
			}
			if tc.check != nil {
				tc.check(t, w)
			}
			if code != CodeOK {
				if _, err := w.app.GetActor(fresh.ID()); err == nil {
					t.Error("rejected tx registered the key")
				}
			}
		})
	}
}

// TestReplay submits the same bytes again in a later block.
func TestReplay(t *testing.T) {
	tests := []struct {
		name  string
		build func(w *world) []byte
	}{
		{"org add", func(w *world) []byte { return w.sign(w.admin, tx.TypeOrgAdd, orgAdd(newKey(w.t), "Again")) }},
		{"member add", func(w *world) []byte { return w.sign(w.orgA, tx.TypeMemberAdd, memberAdd(newKey(w.t), "staff")) }},
		{"patient add", func(w *world) []byte { k := newKey(w.t); return w.sign(k, tx.TypePatientAdd, patientAdd(k)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			raw := tc.build(w)
			w.mustDeliver(raw)
			w.block() // an unrelated block in between
			if code, log := w.checkTx(raw); code != CodeReplay {
				t.Errorf("CheckTx of a committed tx = %d (%s), want CodeReplay", code, log)
			}
			if code, log := w.deliver(raw); code != CodeReplay {
				t.Errorf("replay in a later block = %d (%s), want CodeReplay", code, log)
			}
		})
	}
}

// TestReplayWithinBlock puts the same tx twice in one block: the second
// must fail, since the first already used the nonce.
func TestReplayWithinBlock(t *testing.T) {
	w := newWorld(t)
	raw := w.sign(w.admin, tx.TypeOrgAdd, orgAdd(newKey(t), "Twice"))
	codes := w.block(raw, raw)
	if codes[0] != CodeOK || codes[1] != CodeReplay {
		t.Fatalf("codes = %v, want [OK Replay]", codes)
	}
}

// TestNonceAdvancesOnlyOnSuccess pins down that a rejected tx does not use
// its nonce, and that the committed nonce is the accepted one.
func TestNonceAdvancesOnlyOnSuccess(t *testing.T) {
	w := newWorld(t)
	before, _ := w.app.Nonce(w.admin.ID())
	bad := signTx(t, w.admin, w.admin.ID(), before+1, tx.TypeOrgAdd, orgAdd(w.patient, "Taken"))
	if code, _ := w.deliver(bad); code != CodeExists {
		t.Fatalf("code %d, want CodeExists", code)
	}
	if n, _ := w.app.Nonce(w.admin.ID()); n != before {
		t.Errorf("nonce after rejected tx = %d, want %d", n, before)
	}
	good := signTx(t, w.admin, w.admin.ID(), before+1, tx.TypeOrgAdd, orgAdd(newKey(t), "Fresh"))
	w.mustDeliver(good)
	if n, _ := w.app.Nonce(w.admin.ID()); n != before+1 {
		t.Errorf("nonce after accepted tx = %d, want %d", n, before+1)
	}
}

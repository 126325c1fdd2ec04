package app

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/medchain/medchain/tx"
)

// TestStateVersions runs the same chain under each state version. The
// ledger must answer alike (results, a patient's records, the access log,
// a replay refused), while only version 2 leaves the derived indexes out
// of the app hash, and a restarted node keeps its chain's version.
func TestStateVersions(t *testing.T) {
	admin, org, member, patient := newKey(t), newKey(t), newKey(t), newKey(t)
	type outcome struct {
		codes   []uint32
		records []string
		events  int
		hash    []byte
	}
	run := func(version int) outcome {
		dir := t.TempDir()
		n := openNode(t, dir)
		n.initChainVersion(version, admin)
		var out outcome
		deliver := func(raw []byte) { c, _ := n.deliver(raw); out.codes = append(out.codes, c) }
		n.block()
		deliver(n.sign(admin, tx.TypeOrgAdd, orgAdd(org, "Org")))
		deliver(n.sign(org, tx.TypeMemberAdd, memberAdd(member, "physician")))
		deliver(n.sign(patient, tx.TypePatientAdd, patientAdd(patient)))
		deliver(n.sign(patient, tx.TypeConsentGrant, &tx.ConsentGrant{
			Grantee: member.ID(), Categories: []string{"laboratory"}, Actions: []string{"read", "write"}}))
		next := recordMaker(patient.ID())
		deliver(n.sign(member, tx.TypeRecordBatch, &tx.RecordBatch{Records: []tx.RecordPut{next(), next(), next()}}))
		recs, err := n.app.Records(patient.ID(), patient.ID())
		if err != nil || len(recs) != 3 {
			t.Fatalf("version %d: Records = %d records, %v; want 3", version, len(recs), err)
		}
		for _, r := range recs {
			out.records = append(out.records, r.ID)
		}
		read := n.sign(member, tx.TypeAccess, &tx.Access{Record: recs[0].ID, Purpose: "treatment"})
		deliver(read)
		deliver(read) // the same request again: refused as a replay
		log, err := n.app.AccessLog(patient.ID())
		if err != nil {
			t.Fatal(err)
		}
		out.events = len(log)
		out.hash = n.info().LastBlockAppHash
		wantDerived := map[int]string{1: "", 2: "accessreq/,precord/"}[version]
		if got := strings.Join(n.store.Derived(), ","); got != wantDerived {
			t.Errorf("version %d: derived prefixes %q, want %q", version, got, wantDerived)
		}
		n.close()
		re := openNode(t, dir)
		if got := strings.Join(re.store.Derived(), ","); got != wantDerived {
			t.Errorf("version %d, restarted: derived prefixes %q, want %q", version, got, wantDerived)
		}
		if h := re.info().LastBlockAppHash; !bytes.Equal(h, out.hash) {
			t.Errorf("version %d, restarted: app hash %X, before %X", version, h, out.hash)
		}
		return out
	}
	v1, v2 := run(1), run(2)
	want := []uint32{CodeOK, CodeOK, CodeOK, CodeOK, CodeOK, CodeOK, CodeReplay}
	for _, o := range []outcome{v1, v2} {
		if !slices.Equal(o.codes, want) {
			t.Errorf("result codes %v, want %v", o.codes, want)
		}
		if o.events != 1 {
			t.Errorf("access log holds %d events, want 1", o.events)
		}
	}
	if !slices.Equal(v1.records, v2.records) {
		t.Errorf("records listed: version 1 %v, version 2 %v", v1.records, v2.records)
	}
	if bytes.Equal(v1.hash, v2.hash) {
		t.Error("versions 1 and 2 give the same app hash: version 2 must leave the derived indexes out of it")
	}
	if v0 := run(0); !bytes.Equal(v0.hash, v1.hash) {
		t.Errorf("a genesis without state_version gives app hash %X, version 1 %X: old chains must keep theirs", v0.hash, v1.hash)
	}
}

// TestStateVersionUnknown refuses a genesis naming a version this build
// does not know, saying what to do.
func TestStateVersionUnknown(t *testing.T) {
	n := openNode(t, "")
	g, err := json.Marshal(Genesis{Admins: []string{newKey(t).Public().String()}, StateVersion: StateVersion + 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: testChain, AppStateBytes: g, Time: genesisTime})
	if err == nil || !strings.Contains(err.Error(), "state_version") || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("InitChain with state_version %d = %v, want an error naming state_version and a newer build", StateVersion+1, err)
	}
}

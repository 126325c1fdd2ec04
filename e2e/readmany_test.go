package e2e

// TestReadMany: several records read under one signed access.many request
// (POST /v1/records/read, client.GetRecords) against one running node: all
// of them or none, one access event per record read, and the request's
// signature good for one read only.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

func TestReadMany(t *testing.T) {
	start := time.Now()
	e, n := oneNode(t)
	a := newAdv(t, e, n.status().ChainID)
	ctx := context.Background()

	// Cast: a hospital with a physician, a nurse without consent, and a
	// patient with two laboratory records and an imaging one.
	admin, _ := e.loadKey("admin")
	K := a.keys
	for _, name := range []string{"hospital", "dr", "nurse", "alice"} {
		var err error
		if K[name], err = ident.Generate(); err != nil {
			t.Fatal(err)
		}
	}
	send := func(key ident.Private, typ tx.Type, body any) {
		t.Helper()
		if _, err := a.c.Send(ctx, key, typ, body); err != nil {
			t.Fatalf("setup %s: %v", typ, err)
		}
	}
	send(admin, tx.TypeOrgAdd, tx.OrgAdd{Public: K["hospital"].Public().String(), Name: "General Hospital"})
	send(K["hospital"], tx.TypeMemberAdd, tx.MemberAdd{Public: K["dr"].Public().String(), Role: "physician"})
	send(K["hospital"], tx.TypeMemberAdd, tx.MemberAdd{Public: K["nurse"].Public().String(), Role: "nurse"})
	if _, err := a.c.RegisterPatient(ctx, K["alice"]); err != nil {
		t.Fatalf("register the patient: %v", err)
	}
	// Synthetic contents, distinct per record; never logged.
	content := map[string][]byte{}
	put := func(category, what string) string {
		t.Helper()
		pt := []byte(fmt.Sprintf("synthetic %s record for the access.many test %d", what, time.Now().UnixNano()))
		id, _, err := a.c.PutRecord(ctx, K["alice"], K["alice"].ID(), category, "text/plain", pt)
		if err != nil {
			t.Fatalf("put %s record: %v", what, err)
		}
		content[id] = pt
		return id
	}
	lab1, lab2, img := put("laboratory", "first lab"), put("laboratory", "second lab"), put("imaging", "imaging")
	cDr, _, err := a.c.Grant(ctx, K["alice"], client.GrantOptions{Grantee: K["dr"].ID(), Categories: []string{"laboratory"}})
	if err != nil {
		t.Fatalf("grant: %v", err)
	}

	// wantEvents counts the events each record should have by the end,
	// all the physician's under cDr.
	wantEvents := map[string]int{}
	events := func() []client.AccessEvent {
		t.Helper()
		evs, err := a.c.AccessLog(ctx, K["alice"], K["alice"].ID())
		if err != nil {
			t.Fatalf("access log: %v", err)
		}
		return evs
	}
	total := func() int {
		n := 0
		for _, c := range wantEvents {
			n += c
		}
		return n
	}
	// settle waits for the log to hold every event expected so far, then a
	// little longer, so that late or extra events would show, and checks
	// it holds exactly those.
	settle := func(t *testing.T, what string) {
		t.Helper()
		want := total()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d access events", want), func() (bool, string) {
			n := len(events())
			return n >= want, fmt.Sprintf("%d events", n)
		})
		time.Sleep(1500 * time.Millisecond)
		got := map[string]int{}
		for _, ev := range events() {
			got[ev.Record]++
			if ev.Accessor != K["dr"].ID() || ev.Consent != cDr || ev.Purpose != "treatment" || ev.Height < 1 {
				t.Errorf("%s: event for %s is (accessor %s, consent %s, purpose %q, height %d), want the physician's under %s for treatment",
					what, ev.Record, ev.Accessor, ev.Consent, ev.Purpose, ev.Height, cDr)
			}
		}
		for _, id := range []string{lab1, lab2, img} {
			if got[id] != wantEvents[id] {
				t.Errorf("%s: %d access events for record %s, want %d", what, got[id], id, wantEvents[id])
			}
		}
	}
	manyTx := func(reader ident.Private, nonce uint64, ids ...string) []byte {
		return a.signTx(tx.TypeAccessMany, reader.ID(), reader, nonce, tx.AccessMany{Records: ids, Purpose: "treatment"})
	}

	t.Run("grantee reads several records", func(t *testing.T) {
		for _, ids := range [][]string{{lab1, lab2}, {lab2, lab1}, {lab2}} {
			opened, err := a.c.GetRecords(ctx, K["dr"], ids, "treatment")
			if err != nil {
				t.Fatalf("GetRecords of %d records: %v", len(ids), err)
			}
			if len(opened) != len(ids) {
				t.Fatalf("GetRecords of %d records returned %d", len(ids), len(opened))
			}
			for i, o := range opened {
				if o.Record.ID != ids[i] || !bytes.Equal(o.Plaintext, content[ids[i]]) {
					t.Errorf("GetRecords result %d is record %s (%d bytes), want record %s and its %d bytes",
						i, o.Record.ID, len(o.Plaintext), ids[i], len(content[ids[i]]))
				}
				wantEvents[ids[i]]++
			}
		}
		settle(t, "after the grantee's reads")
	})

	t.Run("one record not allowed: nothing served, nothing logged", func(t *testing.T) {
		for _, ids := range [][]string{{lab1, img}, {img, lab2}, {lab1, lab2, img}} {
			opened, err := a.c.GetRecords(ctx, K["dr"], ids, "treatment")
			if !client.Denied(err) || opened != nil {
				t.Errorf("GetRecords of %d records, one not covered: got %d records, err %v; want denied", len(ids), len(opened), err)
			}
		}
		if _, err := a.c.GetRecords(ctx, K["nurse"], []string{lab1}, "treatment"); !client.Denied(err) {
			t.Errorf("GetRecords by a member without consent: %v, want denied", err)
		}
		if _, err := a.c.GetRecords(ctx, K["dr"], []string{lab1, lab2}, "research"); !client.Denied(err) {
			t.Errorf("GetRecords for a purpose the consent lacks: %v, want denied", err)
		}
		r := a.post("/v1/records/read", manyTx(K["dr"], nonce(), lab1, img))
		a.want(t, "POST /v1/records/read: lab and imaging, imaging not covered", r, http.StatusForbidden)
		if r.body["reads"] != nil {
			t.Errorf("a refused request came with reads")
		}
		// A read the physician may do, after the refused ones: once its
		// events are in, the refused ones would be too.
		if _, err := a.c.GetRecords(ctx, K["dr"], []string{lab1}, "treatment"); err != nil {
			t.Fatalf("GetRecords after the refused ones: %v", err)
		}
		wantEvents[lab1]++
		settle(t, "after the refused reads")
	})

	t.Run("patient reads its own records: no event", func(t *testing.T) {
		ids := []string{img, lab1, lab2}
		opened, err := a.c.GetRecords(ctx, K["alice"], ids, "personal")
		if err != nil {
			t.Fatalf("the patient's GetRecords: %v", err)
		}
		for i, o := range opened {
			if o.Record.ID != ids[i] || !bytes.Equal(o.Plaintext, content[ids[i]]) {
				t.Errorf("the patient's GetRecords result %d is record %s, want %s with its bytes", i, o.Record.ID, ids[i])
			}
		}
		settle(t, "after the patient's own reads")
	})

	t.Run("malformed requests", func(t *testing.T) {
		over := []string{lab1}
		for i := len(over); i <= tx.MaxAccessRecords; i++ {
			over = append(over, fmt.Sprintf("r%032x", i))
		}
		cases := []struct {
			name   string
			body   []byte
			status int
			msg    string // a substring of the error, if set
		}{
			{"duplicate records", manyTx(K["dr"], nonce(), lab1, lab2, lab1), http.StatusBadRequest, "twice"},
			{"the same record twice", manyTx(K["dr"], nonce(), lab1, lab1), http.StatusBadRequest, "twice"},
			{"no records", manyTx(K["dr"], nonce()), http.StatusBadRequest, ""},
			{fmt.Sprintf("%d records", len(over)), manyTx(K["dr"], nonce(), over...), http.StatusBadRequest, ""},
			{"a single-record access", a.signTx(tx.TypeAccess, K["dr"].ID(), K["dr"], nonce(), tx.Access{Record: lab1, Purpose: "treatment"}),
				http.StatusBadRequest, "access.many"},
			{"an access.batch", a.signTx(tx.TypeAccessBatch, K["dr"].ID(), K["dr"], nonce(), tx.AccessBatch{Requests: [][]byte{manyTx(K["dr"], nonce(), lab1)}}),
				http.StatusBadRequest, "access.many"},
			{"not JSON", []byte("read lab1 please"), http.StatusBadRequest, ""},
			{"signer=dr, signed by the nurse", a.signTx(tx.TypeAccessMany, K["dr"].ID(), K["nurse"], nonce(), tx.AccessMany{Records: []string{lab1}, Purpose: "treatment"}),
				http.StatusUnauthorized, ""},
			{"an unknown record", manyTx(K["dr"], nonce(), lab1, "r"+strings.Repeat("0", 32)), http.StatusNotFound, ""},
			{"signed three minutes ago", manyTx(K["dr"], uint64(time.Now().Add(-3*time.Minute).UnixNano()), lab1, lab2), http.StatusUnauthorized, ""},
			{"signed three minutes ahead", manyTx(K["dr"], uint64(time.Now().Add(3*time.Minute).UnixNano()), lab1, lab2), http.StatusUnauthorized, ""},
		}
		for _, c := range cases {
			r := a.post("/v1/records/read", c.body)
			a.want(t, "POST /v1/records/read: "+c.name, r, c.status)
			if c.msg != "" && !strings.Contains(r.msg(), c.msg) {
				t.Errorf("%s: message %q does not say %q", c.name, r.msg(), c.msg)
			}
		}
		// Nothing above was served: one good read, and only its events.
		if _, err := a.c.GetRecords(ctx, K["dr"], []string{lab2}, "treatment"); err != nil {
			t.Fatalf("GetRecords after the malformed requests: %v", err)
		}
		wantEvents[lab2]++
		settle(t, "after the malformed requests")
	})

	t.Run("replayed request", func(t *testing.T) {
		raw := manyTx(K["dr"], nonce(), lab2, lab1)
		r := a.post("/v1/records/read", raw)
		if r.status != http.StatusOK {
			t.Fatalf("first read: %s", r)
		}
		reads, _ := r.body["reads"].([]any)
		if len(reads) != 2 {
			t.Fatalf("first read: %d reads in the answer, want 2", len(reads))
		}
		for i, id := range []string{lab2, lab1} {
			m, _ := reads[i].(map[string]any)
			rec, _ := m["record"].(map[string]any)
			if rec["id"] != id || m["consent"] != cDr || m["key_kind"] != "grantee" {
				t.Errorf("read %d: record %v, consent %v, key kind %v; want %s under %s as grantee", i, rec["id"], m["consent"], m["key_kind"], id, cDr)
			}
		}
		wantEvents[lab1]++
		wantEvents[lab2]++
		a.want(t, "POST /v1/records/read: the same signed access.many again", a.post("/v1/records/read", raw), http.StatusUnauthorized)
		settle(t, "after the replay")
		// Once the ledger holds it, the request is refused there too.
		a.want(t, "POST /v1/txs: a served access.many request, as a transaction", a.post("/v1/txs", raw), http.StatusConflict)
		settle(t, "after the replay as a transaction")
	})

	if !n.Running() {
		t.Fatalf("node exited: %v", n.Err())
	}
	t.Logf("%s took %s", t.Name(), time.Since(start).Round(100*time.Millisecond))
}

package e2e

// TestAdversarial (issue 5, part 3): hostile input against one running node.
// Every case sends something an attacker could send and checks three
// things: the answer (HTTP status or CLI exit code, with a message that says
// what is wrong), and that the state the attack aimed at did not change. The
// app hash is no witness for "nothing changed" (block time is part of state,
// so it moves every block); each case checks its target instead: an actor
// not registered, a consent not revoked, no access event, no record.
//
// Setup goes through the Go client (fast, no Argon2 per step); attacks are
// built by hand with tx and ident so that they can lie about their signer.
// At the end the test logs a table of every hostile input and what it got,
// for docs/reliability.md.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// advRow is one line of the hostile-input table.
type advRow struct{ input, got string }

// adv is the state the adversarial cases share.
type adv struct {
	t     *testing.T
	e     *env
	api   string
	chain string
	c     *client.Client
	keys  map[string]ident.Private

	mu   sync.Mutex
	rows []advRow
}

// newAdv is a hostile client of e's node on chain.
func newAdv(t *testing.T, e *env, chain string) *adv {
	return &adv{t: t, e: e, api: e.node, chain: chain, c: client.New(e.node), keys: map[string]ident.Private{}}
}

func (a *adv) record(input, got string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rows = append(a.rows, advRow{input, got})
}

var advHTTP = &http.Client{Timeout: 60 * time.Second}

// httpResp is an answer: status and the decoded JSON body (nil if none).
type httpResp struct {
	status int
	body   map[string]any
	raw    string
}

func (r httpResp) msg() string {
	if r.body != nil {
		if s, ok := r.body["error"].(string); ok && s != "" {
			return s
		}
		if s, ok := r.body["log"].(string); ok && s != "" {
			return fmt.Sprintf("code %v: %s", r.body["code"], s)
		}
	}
	return strings.TrimSpace(r.raw)
}

func (r httpResp) String() string {
	m := r.msg()
	if len(m) > 160 {
		m = m[:160] + "…"
	}
	return fmt.Sprintf("HTTP %d %q", r.status, m)
}

func doHTTP(t *testing.T, req *http.Request) httpResp {
	t.Helper()
	resp, err := advHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := httpResp{status: resp.StatusCode, raw: string(b)}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		r.body = m
	}
	return r
}

func (a *adv) post(path string, body []byte) httpResp {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.api+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	return doHTTP(a.t, req)
}

// signTx builds a transaction that claims signer and is signed by key.
func (a *adv) signTx(typ tx.Type, signer string, key ident.Private, nonce uint64, body any) []byte {
	a.t.Helper()
	x, err := tx.New(typ, signer, nonce, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := x.Sign(a.chain, key.Sign); err != nil {
		a.t.Fatal(err)
	}
	raw, err := x.Encode()
	if err != nil {
		a.t.Fatal(err)
	}
	return raw
}

var nonceSeq atomic.Uint64

// nonce is above the clock and every nonce this test handed out before.
func nonce() uint64 {
	for {
		old := nonceSeq.Load()
		n := max(uint64(time.Now().UnixNano()), old+1)
		if nonceSeq.CompareAndSwap(old, n) {
			return n
		}
	}
}

// signedGet sends GET uri with an Authorization header made by key at ts.
// signURI, if set, is what the signature covers instead of uri.
func (a *adv) signedGet(uri string, key *ident.Private, ts time.Time, signURI string, hdr string) (httpResp, string) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.api+uri, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	if hdr == "" && key != nil {
		if signURI == "" {
			signURI = uri
		}
		hdr = tx.SignRequest(a.chain, key.ID(), key.Sign, http.MethodGet, signURI, ts.UnixNano(), nil)
	}
	if hdr != "" {
		req.Header.Set("Authorization", hdr)
	}
	return doHTTP(a.t, req), hdr
}

// want checks status and that a message came with it.
func (a *adv) want(t *testing.T, what string, r httpResp, status ...int) {
	t.Helper()
	a.record(what, r.String())
	if !slices.Contains(status, r.status) {
		t.Errorf("%s: got %s, want HTTP %v", what, r, status)
	}
	if r.msg() == "" {
		t.Errorf("%s: HTTP %d with no message", what, r.status)
	}
}

// registered reports whether id is on the ledger.
func (a *adv) registered(id string) bool {
	a.t.Helper()
	_, ok := actor(a.t, a.api, id)
	return ok
}

func (a *adv) nonceOf(id string) uint64 {
	a.t.Helper()
	// Not via actor(): a float64 cannot hold a nanosecond nonce exactly.
	act, err := a.c.Actor(context.Background(), id)
	if err != nil {
		a.t.Fatalf("actor %s: %v", id, err)
	}
	return act.Nonce
}

func (a *adv) accessEvents() []client.AccessEvent {
	a.t.Helper()
	evs, err := a.c.AccessLog(context.Background(), a.keys["alice"], a.keys["alice"].ID())
	if err != nil {
		a.t.Fatalf("access log: %v", err)
	}
	return evs
}

func (a *adv) consents() map[string]client.Consent {
	a.t.Helper()
	cs, err := a.c.Consents(context.Background(), a.keys["alice"], a.keys["alice"].ID())
	if err != nil {
		a.t.Fatalf("consent list: %v", err)
	}
	out := map[string]client.Consent{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}

func (a *adv) records() []string {
	a.t.Helper()
	rs, err := a.c.Records(context.Background(), a.keys["alice"], a.keys["alice"].ID())
	if err != nil {
		a.t.Fatalf("record list: %v", err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

// putBlob uploads b signed by key.
func (a *adv) putBlob(key ident.Private, b []byte) string {
	a.t.Helper()
	name := hashHex(b)
	if _, err := a.c.PutBlob(context.Background(), key, name, b); err != nil {
		a.t.Fatalf("upload blob: %v", err)
	}
	return name
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// zeros is an endless reader of zero bytes, for streaming big bodies.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// rpcCall posts one JSON-RPC request to CometBFT's RPC.
func rpcCall(t *testing.T, rpc string, body string) (int, map[string]any, string) {
	t.Helper()
	resp, err := advHTTP.Post("http://"+rpc, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("RPC %s: %v", rpc, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

func TestAdversarial(t *testing.T) {
	start := time.Now()
	e, n := oneNode(t)
	var cfg struct {
		RPCAddr string `json:"rpc_addr"`
		P2PAddr string `json:"p2p_addr"`
	}
	if b, err := os.ReadFile(filepath.Join(e.home, "medchain.json")); err != nil || json.Unmarshal(b, &cfg) != nil || cfg.RPCAddr == "" {
		t.Fatalf("read medchain.json: %v", err)
	}
	st := n.status()
	a := newAdv(t, e, st.ChainID)
	ctx := context.Background()

	// --- Setup: a hospital with three members, a patient with one record
	// and three consents (active, expiring, revoked).
	admin, kr := e.loadKey("admin")
	a.keys["admin"] = admin
	for _, name := range []string{"hospital", "clinic", "dr-lee", "nurse", "pharm", "alice", "mallory", "newcomer", "newcomer2", "bystander"} {
		k, err := ident.Generate()
		if err != nil {
			t.Fatal(err)
		}
		a.keys[name] = k
		// CLI cases need some of them in the keyring.
		if slices.Contains([]string{"dr-lee", "nurse", "mallory", "alice"}, name) {
			kr.KDF = keyring.KDF{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
			if err := kr.Import(name, k, testPassphrase); err != nil {
				t.Fatalf("import %s: %v", name, err)
			}
		}
	}
	K := a.keys
	send := func(key ident.Private, typ tx.Type, body any) client.Result {
		t.Helper()
		res, err := a.c.Send(ctx, key, typ, body)
		if err != nil {
			t.Fatalf("setup %s: %v", typ, err)
		}
		return res
	}
	send(admin, tx.TypeOrgAdd, tx.OrgAdd{Public: K["hospital"].Public().String(), Name: "General Hospital"})
	send(admin, tx.TypeOrgAdd, tx.OrgAdd{Public: K["clinic"].Public().String(), Name: "Other Clinic"})
	for _, m := range [][2]string{{"dr-lee", "physician"}, {"nurse", "nurse"}, {"pharm", "pharmacist"}} {
		send(K["hospital"], tx.TypeMemberAdd, tx.MemberAdd{Public: K[m[0]].Public().String(), Role: m[1]})
	}
	if _, err := a.c.RegisterPatient(ctx, K["alice"]); err != nil {
		t.Fatalf("register alice: %v", err)
	}
	recID, _, err := a.c.PutRecord(ctx, K["alice"], K["alice"].ID(), "laboratory", "application/json", []byte(`{"code":"glucose","value":5.4}`))
	if err != nil {
		t.Fatalf("put record: %v", err)
	}
	grant := func(to string, exp time.Duration) string {
		t.Helper()
		id, _, err := a.c.Grant(ctx, K["alice"], client.GrantOptions{Grantee: K[to].ID(), Categories: []string{"laboratory"}, ExpiresIn: exp})
		if err != nil {
			t.Fatalf("grant to %s: %v", to, err)
		}
		return id
	}
	cLee := grant("dr-lee", 0)
	cNurse := grant("nurse", 3*time.Second)
	cPharm := grant("pharm", 0)
	if _, err := a.c.Revoke(ctx, K["alice"], cPharm); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	// A legitimate read, so that the log is not trivially empty.
	if _, _, err := a.c.GetRecord(ctx, K["dr-lee"], recID, "treatment"); err != nil {
		t.Fatalf("dr-lee's legitimate read: %v", err)
	}
	waitFor(t, 20*time.Second, "the legitimate read's access event", func() (bool, string) {
		n := len(a.accessEvents())
		return n == 1, fmt.Sprintf("%d events", n)
	})
	baseEvents := a.accessEvents()
	baseConsents := a.consents()
	baseRecords := a.records()
	if len(baseEvents) != 1 || len(baseConsents) != 3 || len(baseRecords) != 1 || !baseConsents[cPharm].Revoked || baseConsents[cLee].Revoked {
		t.Fatalf("setup: events %v consents %v records %v", baseEvents, baseConsents, baseRecords)
	}
	t.Logf("setup done in %s (height %d)", time.Since(start).Round(time.Millisecond), n.status().Height)

	// unchanged checks the shared targets after each case.
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		if evs := a.accessEvents(); len(evs) != len(baseEvents) {
			t.Errorf("%s: access log has %d events, want %d: %v", what, len(evs), len(baseEvents), evs)
		}
		cs := a.consents()
		if len(cs) != len(baseConsents) {
			t.Errorf("%s: alice has %d consents, want %d", what, len(cs), len(baseConsents))
		}
		for id, c := range baseConsents {
			if cs[id].Revoked != c.Revoked {
				t.Errorf("%s: consent %s revoked=%v, want %v", what, id, cs[id].Revoked, c.Revoked)
			}
		}
		if rs := a.records(); !slices.Equal(rs, baseRecords) {
			t.Errorf("%s: records %v, want %v", what, rs, baseRecords)
		}
		if a.registered(K["mallory"].ID()) {
			t.Errorf("%s: mallory got registered", what)
		}
	}
	readTx := func(reader ident.Private, id string) []byte {
		return a.signTx(tx.TypeAccess, reader.ID(), reader, nonce(), tx.Access{Record: id, Purpose: "treatment"})
	}

	t.Run("replayed transaction", func(t *testing.T) {
		raw := a.signTx(tx.TypeMemberAdd, K["hospital"].ID(), K["hospital"], nonce(), tx.MemberAdd{Public: K["newcomer"].Public().String(), Role: "staff"})
		if r := a.post("/v1/txs", raw); r.status != http.StatusOK {
			t.Fatalf("first submission: %s", r)
		}
		nonceAfter := a.nonceOf(K["hospital"].ID())
		a.want(t, "POST /v1/txs: the same signed member.add bytes a second time", a.post("/v1/txs", raw), http.StatusConflict)
		// Same nonce, new body: a different transaction with a used nonce.
		raw2 := a.signTx(tx.TypeMemberAdd, K["hospital"].ID(), K["hospital"], nonceAfter, tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "staff"})
		a.want(t, "POST /v1/txs: a new member.add re-using the last committed nonce", a.post("/v1/txs", raw2), http.StatusConflict)
		raw3 := a.signTx(tx.TypeMemberAdd, K["hospital"].ID(), K["hospital"], nonceAfter-1, tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "staff"})
		a.want(t, "POST /v1/txs: a member.add with a nonce below the last", a.post("/v1/txs", raw3), http.StatusConflict)
		if got := a.nonceOf(K["hospital"].ID()); got != nonceAfter {
			t.Errorf("hospital's nonce moved from %d to %d", nonceAfter, got)
		}
		unchanged(t, "replay")
	})

	t.Run("wrong key", func(t *testing.T) {
		raw := a.signTx(tx.TypeMemberAdd, K["hospital"].ID(), K["mallory"], nonce(), tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "physician"})
		a.want(t, "member.add with signer=hospital, signed by mallory's key", a.post("/v1/txs", raw), http.StatusUnauthorized)
		raw = a.signTx(tx.TypeOrgAdd, K["admin"].ID(), K["mallory"], nonce(), tx.OrgAdd{Public: K["mallory"].Public().String(), Name: "Evil Corp"})
		a.want(t, "org.add with signer=admin, signed by mallory's key", a.post("/v1/txs", raw), http.StatusUnauthorized)
		raw = a.signTx(tx.TypeOrgAdd, K["mallory"].ID(), K["mallory"], nonce(), tx.OrgAdd{Public: K["mallory"].Public().String(), Name: "Evil Corp"})
		a.want(t, "org.add signed by an unregistered key", a.post("/v1/txs", raw), http.StatusUnauthorized)
		// A valid transaction whose signature is then flipped.
		x, _ := tx.New(tx.TypeMemberAdd, K["hospital"].ID(), nonce(), tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "staff"})
		_ = x.Sign(a.chain, K["hospital"].Sign)
		x.Sig[7] ^= 1
		raw, _ = x.Encode()
		a.want(t, "member.add by hospital with one signature bit flipped", a.post("/v1/txs", raw), http.StatusUnauthorized)
		// Signed for another chain.
		x, _ = tx.New(tx.TypeMemberAdd, K["hospital"].ID(), nonce(), tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "staff"})
		_ = x.Sign(a.chain+"-other", K["hospital"].Sign)
		raw, _ = x.Encode()
		a.want(t, "member.add by hospital signed for another chain ID", a.post("/v1/txs", raw), http.StatusUnauthorized)
		unchanged(t, "wrong key")
	})

	t.Run("member acting for an organization", func(t *testing.T) {
		raw := a.signTx(tx.TypeMemberAdd, K["dr-lee"].ID(), K["dr-lee"], nonce(), tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "physician"})
		a.want(t, "member.add signed by a member (dr-lee), not the organization", a.post("/v1/txs", raw), http.StatusForbidden)
		raw = a.signTx(tx.TypeOrgAdd, K["hospital"].ID(), K["hospital"], nonce(), tx.OrgAdd{Public: K["mallory"].Public().String(), Name: "Shadow Org"})
		a.want(t, "org.add signed by an organization, not an admin", a.post("/v1/txs", raw), http.StatusForbidden)
		// Another organization claims the hospital's physician.
		raw = a.signTx(tx.TypeMemberAdd, K["clinic"].ID(), K["clinic"], nonce(), tx.MemberAdd{Public: K["dr-lee"].Public().String(), Role: "researcher"})
		a.want(t, "member.add by clinic of dr-lee, already the hospital's member", a.post("/v1/txs", raw), http.StatusConflict)
		if m, _ := actor(t, a.api, K["dr-lee"].ID()); m["org"] != K["hospital"].ID() || m["role"] != "physician" {
			t.Errorf("dr-lee changed: %v", m)
		}
		if ms, err := a.c.Members(ctx, K["clinic"].ID()); err != nil || len(ms) != 0 {
			t.Errorf("clinic members: %v %v", ms, err)
		}
		r := e.run("member", "add", "--as", "dr-lee", "--key", "mallory", "--role", "nurse", "--output", "json")
		a.record("CLI: medchain member add --as dr-lee (a member) --key mallory", fmt.Sprintf("exit %d %q", r.code, strings.TrimSpace(r.stderr)))
		if r.code != exitDenied || strings.TrimSpace(r.stderr) == "" {
			t.Errorf("member add --as a member: want exit 3 and a message\n%s", r)
		}
		unchanged(t, "member for org")
	})

	t.Run("consent granted by someone other than the patient", func(t *testing.T) {
		body := tx.ConsentGrant{Grantee: K["dr-lee"].ID(), Categories: []string{"all"}, Purposes: []string{"treatment"}, Actions: []string{"read", "write"}}
		raw := a.signTx(tx.TypeConsentGrant, K["dr-lee"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "consent.grant signed by the physician (signer=dr-lee) for itself", a.post("/v1/txs", raw), http.StatusForbidden, http.StatusBadRequest)
		raw = a.signTx(tx.TypeConsentGrant, K["hospital"].ID(), K["hospital"], nonce(), body)
		a.want(t, "consent.grant signed by the organization", a.post("/v1/txs", raw), http.StatusForbidden, http.StatusBadRequest)
		raw = a.signTx(tx.TypeConsentGrant, K["alice"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "consent.grant with signer=alice, signed by dr-lee's key", a.post("/v1/txs", raw), http.StatusUnauthorized)
		r := e.run("consent", "grant", "--as", "dr-lee", "--to", K["dr-lee"].ID(), "--output", "json")
		a.record("CLI: medchain consent grant --as dr-lee --to dr-lee", fmt.Sprintf("exit %d %q", r.code, strings.TrimSpace(r.stderr)))
		if r.code == exitOK || strings.TrimSpace(r.stderr) == "" {
			t.Errorf("consent grant --as a physician: want a non-zero exit and a message\n%s", r)
		}
		if cs, err := a.c.Consents(ctx, K["dr-lee"], ""); err != nil || len(cs) != 1 || cs[0].ID != cLee {
			t.Errorf("dr-lee's consents: %v %v (want only %s)", cs, err, cLee)
		}
		unchanged(t, "foreign grant")
	})

	t.Run("consent revoked by someone else", func(t *testing.T) {
		body := tx.ConsentRevoke{Consent: cLee}
		raw := a.signTx(tx.TypeConsentRevoke, K["dr-lee"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "consent.revoke of alice's consent, signed by its grantee", a.post("/v1/txs", raw), http.StatusForbidden)
		raw = a.signTx(tx.TypeConsentRevoke, K["hospital"].ID(), K["hospital"], nonce(), body)
		a.want(t, "consent.revoke of alice's consent, signed by the organization", a.post("/v1/txs", raw), http.StatusForbidden)
		raw = a.signTx(tx.TypeConsentRevoke, K["alice"].ID(), K["mallory"], nonce(), body)
		a.want(t, "consent.revoke with signer=alice, signed by mallory's key", a.post("/v1/txs", raw), http.StatusUnauthorized)
		r := e.run("consent", "revoke", "--as", "dr-lee", cLee, "--output", "json")
		a.record("CLI: medchain consent revoke --as dr-lee <alice's consent>", fmt.Sprintf("exit %d %q", r.code, strings.TrimSpace(r.stderr)))
		if r.code == exitOK || strings.TrimSpace(r.stderr) == "" {
			t.Errorf("consent revoke --as the grantee: want non-zero exit and a message\n%s", r)
		}
		if cs := a.consents(); cs[cLee].Revoked {
			t.Errorf("consent %s got revoked", cLee)
		}
		unchanged(t, "foreign revoke")
	})

	t.Run("read under expired or revoked consent", func(t *testing.T) {
		// The nurse's consent expires 3s of block time after its grant.
		until := baseConsents[cNurse].Until
		if until == 0 {
			t.Fatalf("consent %s has no expiry: %v", cNurse, baseConsents[cNurse])
		}
		waitFor(t, 30*time.Second, "block time past the nurse's consent", func() (bool, string) {
			h := n.status().Height
			// A block after `until` exists once a read's CheckTx would see it; poll
			// by waiting a few blocks past the wall-clock estimate.
			return time.Now().UnixNano() > until+int64(2*time.Second), fmt.Sprintf("height %d", h)
		})
		a.want(t, "POST /v1/records/{id}/read by the nurse, consent expired", a.post("/v1/records/"+recID+"/read", readTx(K["nurse"], recID)), http.StatusForbidden)
		a.want(t, "POST /v1/records/{id}/read by the pharmacist, consent revoked", a.post("/v1/records/"+recID+"/read", readTx(K["pharm"], recID)), http.StatusForbidden)
		// The access transaction straight to /v1/txs: refused in the block too.
		a.want(t, "POST /v1/txs: access tx by the nurse under the expired consent", a.post("/v1/txs", readTx(K["nurse"], recID)), http.StatusForbidden)
		a.want(t, "POST /v1/txs: access tx by the pharmacist under the revoked consent", a.post("/v1/txs", readTx(K["pharm"], recID)), http.StatusForbidden)
		// A read signed by mallory but naming the nurse.
		raw := a.signTx(tx.TypeAccess, K["nurse"].ID(), K["mallory"], nonce(), tx.Access{Record: recID, Purpose: "treatment"})
		a.want(t, "POST /v1/records/{id}/read: signer=nurse, signed by mallory", a.post("/v1/records/"+recID+"/read", raw), http.StatusUnauthorized)
		// dr-lee under a purpose the consent lacks.
		raw = a.signTx(tx.TypeAccess, K["dr-lee"].ID(), K["dr-lee"], nonce(), tx.Access{Record: recID, Purpose: "research"})
		a.want(t, "POST /v1/records/{id}/read by dr-lee for purpose research (granted: treatment)", a.post("/v1/records/"+recID+"/read", raw), http.StatusForbidden)
		r := e.run("record", "get", "--as", "nurse", recID, "--output", "json")
		a.record("CLI: medchain record get --as nurse (expired consent)", fmt.Sprintf("exit %d %q", r.code, strings.TrimSpace(r.stderr)))
		if r.code != exitDenied || r.stdout != "" {
			t.Errorf("record get under an expired consent: want exit 3, no stdout\n%s", r)
		}
		unchanged(t, "expired/revoked read")
	})

	t.Run("record write claiming another author", func(t *testing.T) {
		ct, ee, se := randBytes(64), randBytes(1200), randBytes(77)
		for _, b := range [][]byte{ct, ee, se} {
			a.putBlob(K["dr-lee"], b)
		}
		body := tx.RecordPut{Patient: K["alice"].ID(), Category: "laboratory", ContentType: "text/plain", Size: 10,
			Ciphertext: hashHex(ct), Commitment: hashHex([]byte("c")), EpochEnv: hashHex(ee), SelfEnv: hashHex(se)}
		raw := a.signTx(tx.TypeRecordPut, K["alice"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "record.put with signer=alice (the patient), signed by dr-lee", a.post("/v1/txs", raw), http.StatusUnauthorized)
		raw = a.signTx(tx.TypeRecordPut, K["nurse"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "record.put with signer=nurse, signed by dr-lee", a.post("/v1/txs", raw), http.StatusUnauthorized)
		raw = a.signTx(tx.TypeRecordPut, K["dr-lee"].ID(), K["dr-lee"], nonce(), body)
		a.want(t, "record.put signed by dr-lee, who holds no write consent", a.post("/v1/txs", raw), http.StatusForbidden)
		body.Ciphertext = hashHex(randBytes(32))
		raw = a.signTx(tx.TypeRecordPut, K["alice"].ID(), K["alice"], nonce(), body)
		a.want(t, "record.put by the patient naming a ciphertext blob no node holds", a.post("/v1/txs", raw), http.StatusConflict)
		unchanged(t, "foreign author")
	})

	t.Run("oversized", func(t *testing.T) {
		a.want(t, "POST /v1/txs with 64 KiB + 1 bytes", a.post("/v1/txs", bytes.Repeat([]byte("a"), tx.MaxSize+1)), http.StatusRequestEntityTooLarge)
		// A well-formed, signed transaction just over the limit.
		raw := a.signTx(tx.TypeOrgAdd, K["admin"].ID(), K["admin"], nonce(), tx.OrgAdd{Public: K["mallory"].Public().String(), Name: strings.Repeat("x", tx.MaxSize)})
		a.want(t, fmt.Sprintf("POST /v1/txs: a signed org.add of %d bytes", len(raw)), a.post("/v1/txs", raw), http.StatusRequestEntityTooLarge)
		a.want(t, "POST /v1/records/{id}/read with a 2 MiB body", a.post("/v1/records/"+recID+"/read", make([]byte, 2<<20)), http.StatusRequestEntityTooLarge)
		a.want(t, "POST /v1/txs with a 2 MiB body", a.post("/v1/txs", make([]byte, 2<<20)), http.StatusRequestEntityTooLarge)

		// A blob of 64 MiB + 1 zero bytes, streamed (never held in memory),
		// properly signed by a registered actor.
		const size = 64<<20 + 1
		h := sha256.New()
		if _, err := io.Copy(h, io.LimitReader(zeros{}, size)); err != nil {
			t.Fatal(err)
		}
		name := hex.EncodeToString(h.Sum(nil))
		uri := "/v1/blobs/" + name
		// The request signature covers the body's SHA-256, which is name.
		ts := time.Now().UnixNano()
		sig := signRequestHash(a.chain, K["dr-lee"], http.MethodPut, uri, ts, h.Sum(nil))
		req, _ := http.NewRequest(http.MethodPut, a.api+uri, io.LimitReader(zeros{}, size))
		req.ContentLength = size
		req.Header.Set("Authorization", fmt.Sprintf("%s %s:%d:%s", tx.RequestScheme, K["dr-lee"].ID(), ts, sig))
		t0 := time.Now()
		a.want(t, "PUT /v1/blobs/{hash}: 64 MiB + 1 bytes, streamed, signed", doHTTP(t, req), http.StatusRequestEntityTooLarge)
		t.Logf("oversized blob answered in %s", time.Since(t0).Round(time.Millisecond))
		req, _ = http.NewRequest(http.MethodPut, a.api+uri, io.LimitReader(zeros{}, size))
		req.ContentLength = size
		a.want(t, "PUT /v1/blobs/{hash}: 64 MiB + 1 bytes, streamed, unsigned", doHTTP(t, req), http.StatusRequestEntityTooLarge, http.StatusUnauthorized)
		if _, err := os.Stat(filepath.Join(e.home, "data", "blobs", name[:2], name[2:])); err == nil {
			t.Errorf("the oversized blob %s was stored", name)
		}
		// A small blob, unsigned and from no peer.
		b := randBytes(100)
		req, _ = http.NewRequest(http.MethodPut, a.api+"/v1/blobs/"+hashHex(b), bytes.NewReader(b))
		a.want(t, "PUT /v1/blobs/{hash}: unsigned, no peer header", doHTTP(t, req), http.StatusUnauthorized)
		// Signed bytes under another blob's name: refused, and stored under
		// neither, so a record naming that blob is refused too.
		other := hashHex(randBytes(100))
		uri = "/v1/blobs/" + other
		sum := sha256.Sum256(b)
		ts = time.Now().UnixNano()
		req, _ = http.NewRequest(http.MethodPut, a.api+uri, bytes.NewReader(b))
		req.Header.Set("Authorization", fmt.Sprintf("%s %s:%d:%s", tx.RequestScheme, K["dr-lee"].ID(), ts, signRequestHash(a.chain, K["dr-lee"], http.MethodPut, uri, ts, sum[:])))
		a.want(t, "PUT /v1/blobs/{hash}: signed, bytes that hash to another name", doHTTP(t, req), http.StatusBadRequest)
		eps, err := a.c.Epochs(ctx, K["alice"].ID())
		if err != nil {
			t.Fatal(err)
		}
		epochEnv, selfEnv := a.putBlob(K["alice"], randBytes(1200)), a.putBlob(K["alice"], randBytes(77))
		body := tx.RecordPut{Patient: K["alice"].ID(), Category: "laboratory", ContentType: "text/plain", Size: 10, Epoch: eps["laboratory"].Epoch,
			Ciphertext: other, Commitment: hashHex([]byte("c")), EpochEnv: epochEnv, SelfEnv: selfEnv}
		raw = a.signTx(tx.TypeRecordPut, K["alice"].ID(), K["alice"], nonce(), body)
		a.want(t, "record.put naming the blob uploaded with the wrong bytes", a.post("/v1/txs", raw), http.StatusConflict)
		body.Ciphertext = hashHex(b)
		raw = a.signTx(tx.TypeRecordPut, K["alice"].ID(), K["alice"], nonce(), body)
		a.want(t, "record.put naming the wrong bytes' own hash", a.post("/v1/txs", raw), http.StatusConflict)
		// A signed batch of more empty blobs than a batch may hold (four
		// bytes each: gigabytes of names at 256 MiB): refused whole.
		_, err = a.c.PutBlobs(ctx, K["dr-lee"], make([][]byte, blob.MaxBatchBlobs+1))
		var refused *client.Error
		if !errors.As(err, &refused) || refused.Status != http.StatusBadRequest || !strings.Contains(refused.Msg, "blobs") {
			t.Errorf("POST /v1/blobs with %d empty blobs, signed: %v; want HTTP 400 naming the limit", blob.MaxBatchBlobs+1, err)
		}
		unchanged(t, "oversized")
	})

	t.Run("signed GET attacks", func(t *testing.T) {
		alice, mallory, lee := K["alice"], K["mallory"], K["dr-lee"]
		for _, uri := range []string{"/v1/records?patient=" + alice.ID(), "/v1/consents", "/v1/access"} {
			r, _ := a.signedGet(uri, nil, time.Time{}, "", "")
			a.want(t, "GET "+uri+": no Authorization", r, http.StatusUnauthorized)
			r, _ = a.signedGet(uri, &alice, time.Now().Add(-3*time.Minute), "", "")
			a.want(t, "GET "+uri+": signed by alice 3 min ago", r, http.StatusUnauthorized)
			r, _ = a.signedGet(uri, &alice, time.Now().Add(3*time.Minute), "", "")
			a.want(t, "GET "+uri+": signed by alice 3 min in the future", r, http.StatusUnauthorized)
			r, hdr := a.signedGet(uri, &alice, time.Now(), "", "")
			if r.status != http.StatusOK {
				t.Fatalf("GET %s properly signed: %s", uri, r)
			}
			r, _ = a.signedGet(uri, nil, time.Time{}, "", hdr)
			a.want(t, "GET "+uri+": replayed Authorization header", r, http.StatusUnauthorized)
			r, _ = a.signedGet(uri, &alice, time.Now(), "/v1/status", "")
			a.want(t, "GET "+uri+": signature made for GET /v1/status", r, http.StatusUnauthorized)
			r, _ = a.signedGet(uri, &mallory, time.Now(), "", "")
			a.want(t, "GET "+uri+": signed by an unregistered key", r, http.StatusUnauthorized)
			hdr = tx.SignRequest(a.chain, alice.ID(), K["mallory"].Sign, http.MethodGet, uri, time.Now().UnixNano(), nil)
			r, _ = a.signedGet(uri, nil, time.Time{}, "", hdr)
			a.want(t, "GET "+uri+": actor=alice, signed by mallory", r, http.StatusUnauthorized)
			r, _ = a.signedGet(uri, nil, time.Time{}, "", "Medchain "+alice.ID()+":"+fmt.Sprint(time.Now().UnixNano())+":!!!")
			a.want(t, "GET "+uri+": malformed signature field", r, http.StatusUnauthorized)
		}
		// Someone else's access log, properly signed.
		r, _ := a.signedGet("/v1/access?patient="+alice.ID(), &lee, time.Now(), "", "")
		a.want(t, "GET /v1/access?patient=alice signed by dr-lee", r, http.StatusForbidden)
		r, _ = a.signedGet("/v1/consents?patient="+alice.ID(), &lee, time.Now(), "", "")
		a.want(t, "GET /v1/consents?patient=alice signed by dr-lee", r, http.StatusForbidden)
		unchanged(t, "signed GETs")
	})

	t.Run("listing pages", func(t *testing.T) {
		alice := K["alice"]
		records, access := "/v1/records?patient="+alice.ID()+"&", "/v1/access?"
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=-1", "limit=1&after=a%20b", "after=" + strings.Repeat("a", 257)} {
			for _, base := range []string{records, access} {
				r, _ := a.signedGet(base+q, &alice, time.Now(), "", "")
				a.want(t, "GET "+base+q, r, http.StatusBadRequest)
			}
		}
		// One entry a page, following each page's next, gives the whole
		// listing in order; the last page names no next. (Longer listings:
		// TestListingPages in app.)
		for _, l := range []struct{ base, field, key string }{{records, "records", "id"}, {access, "events", "record"}} {
			var whole []string
			r, _ := a.signedGet(l.base+"limit=1000", &alice, time.Now(), "", "")
			entries, _ := r.body[l.field].([]any)
			for _, e := range entries {
				whole = append(whole, fmt.Sprint(e.(map[string]any)[l.key]))
			}
			if r.status != http.StatusOK || len(whole) == 0 || r.body["next"] != nil {
				t.Fatalf("GET %slimit=1000: %s; want some %s and no next", l.base, r, l.field)
			}
			var paged []string
			for after := ""; len(paged) <= len(whole); {
				uri := l.base + "limit=1"
				if after != "" {
					uri += "&after=" + url.QueryEscape(after)
				}
				r, _ := a.signedGet(uri, &alice, time.Now(), "", "")
				entries, _ := r.body[l.field].([]any)
				if r.status != http.StatusOK || len(entries) != 1 {
					t.Fatalf("GET %s: %s; want one of %s", uri, r, l.field)
				}
				paged = append(paged, fmt.Sprint(entries[0].(map[string]any)[l.key]))
				next, _ := r.body["next"].(string)
				if next == "" {
					break
				}
				after = next
			}
			if !slices.Equal(paged, whole) {
				t.Errorf("%s a page at a time: %v; whole: %v", l.field, paged, whole)
			}
		}
	})

	t.Run("consensus RPC garbage", func(t *testing.T) {
		h0 := n.status().Height
		junk := base64.StdEncoding.EncodeToString(randBytes(300))
		code, m, raw := rpcCall(t, cfg.RPCAddr, `{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"`+junk+`"}}`)
		res, _ := m["result"].(map[string]any)
		a.record("CometBFT RPC broadcast_tx_sync with 300 random bytes", fmt.Sprintf("HTTP %d, result code %v log %q", code, res["code"], res["log"]))
		if res == nil || res["code"] == nil || res["code"].(float64) == 0 {
			t.Errorf("broadcast_tx_sync of random bytes was not rejected with a code: %s", raw)
		}
		code, m, raw = rpcCall(t, cfg.RPCAddr, `{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"`+base64.StdEncoding.EncodeToString(make([]byte, 200<<10))+`"}}`)
		res, _ = m["result"].(map[string]any)
		a.record("CometBFT RPC broadcast_tx_sync with a 200 KiB tx", fmt.Sprintf("HTTP %d, result %v error %v", code, res, m["error"]))
		if res != nil && res["code"] != nil && res["code"].(float64) == 0 {
			t.Errorf("oversized tx accepted by RPC: %s", raw)
		}
		code, _, raw = rpcCall(t, cfg.RPCAddr, "\x00\xff{{{not json")
		a.record("CometBFT RPC: a body that is not JSON", fmt.Sprintf("HTTP %d %.100q", code, raw))
		// A replay of a committed transaction through the RPC.
		replay := a.signTx(tx.TypeMemberAdd, K["hospital"].ID(), K["hospital"], 1, tx.MemberAdd{Public: K["mallory"].Public().String(), Role: "staff"})
		_, m, _ = rpcCall(t, cfg.RPCAddr, `{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"`+base64.StdEncoding.EncodeToString(replay)+`"}}`)
		res, _ = m["result"].(map[string]any)
		a.record("CometBFT RPC broadcast_tx_sync: member.add with nonce 1 (stale)", fmt.Sprintf("result code %v log %q", res["code"], res["log"]))
		if res == nil || res["code"] == nil || res["code"].(float64) != 5 {
			t.Errorf("stale nonce via RPC: %v", m)
		}
		// Raw junk at the RPC and P2P ports.
		for _, p := range []struct{ what, addr string }{{"RPC", cfg.RPCAddr}, {"P2P", cfg.P2PAddr}} {
			for i := range 20 {
				conn, err := net.DialTimeout("tcp", p.addr, 2*time.Second)
				if err != nil {
					t.Fatalf("dial %s %s: %v", p.what, p.addr, err)
				}
				_ = conn.SetDeadline(time.Now().Add(300 * time.Millisecond))
				_, _ = conn.Write(randBytes(64 << (i % 8)))
				if i%2 == 0 {
					_, _ = io.Copy(io.Discard, io.LimitReader(conn, 4096))
				}
				conn.Close()
			}
			a.record("20 TCP connections of random bytes (64 B–8 KiB) to the "+p.what+" port", "connections dropped; node keeps committing (checked below)")
		}
		// Half-open connections held at P2P while the chain goes on.
		var held []net.Conn
		for range 10 {
			if c, err := net.DialTimeout("tcp", cfg.P2PAddr, 2*time.Second); err == nil {
				held = append(held, c)
			}
		}
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		n.waitHeight(h0+3, 20*time.Second)
		t0 := time.Now()
		raw2 := a.signTx(tx.TypeMemberAdd, K["clinic"].ID(), K["clinic"], nonce(), tx.MemberAdd{Public: K["bystander"].Public().String(), Role: "nurse"})
		if r := a.post("/v1/txs", raw2); r.status != http.StatusOK {
			t.Errorf("normal tx after RPC/P2P junk: %s", r)
		}
		t.Logf("after junk: node at height %d, a normal tx committed in %s", n.status().Height, time.Since(t0).Round(time.Millisecond))
		unchanged(t, "rpc garbage")
	})

	t.Run("record.put via RPC naming blobs no node holds", func(t *testing.T) {
		// The API refuses such a record (409); the RPC does not go through the API.
		eps, err := a.c.Epochs(ctx, K["alice"].ID())
		if err != nil {
			t.Fatal(err)
		}
		body := tx.RecordPut{Patient: K["alice"].ID(), Category: "laboratory", ContentType: "text/plain", Size: 10, Epoch: eps["laboratory"].Epoch,
			Ciphertext: hashHex(randBytes(32)), Commitment: hashHex([]byte("c")), EpochEnv: hashHex(randBytes(32)), SelfEnv: hashHex(randBytes(32))}
		raw := a.signTx(tx.TypeRecordPut, K["alice"].ID(), K["alice"], nonce(), body)
		_, m, _ := rpcCall(t, cfg.RPCAddr, `{"jsonrpc":"2.0","id":1,"method":"broadcast_tx_sync","params":{"tx":"`+base64.StdEncoding.EncodeToString(raw)+`"}}`)
		res, _ := m["result"].(map[string]any)
		got := fmt.Sprintf("result code %v log %q", res["code"], res["log"])
		time.Sleep(2 * time.Second)
		id := "r" + body.Ciphertext[:32]
		if slices.Contains(a.records(), id) {
			got += "; the record was COMMITTED with no blob anywhere"
			t.Errorf("PRODUCT BUG: a record.put sent to the CometBFT RPC committed record %s whose ciphertext no node holds (the API's blob check is bypassed)", id)
		}
		a.record("CometBFT RPC broadcast_tx_sync: alice's signed record.put naming blobs no node holds", got)
		baseRecords = a.records() // later cases compare against what is there now
	})

	t.Run("flood from one signer", func(t *testing.T) {
		// One signer (dr-lee) floods with junk signatures, replays of one
		// committed transaction and stale nonces; the clinic meanwhile adds a
		// member, which must commit within a bound.
		committed := readTx(K["dr-lee"], recID)
		if r := a.post("/v1/records/"+recID+"/read", committed); r.status != http.StatusOK {
			t.Fatalf("dr-lee's read: %s", r)
		}
		// That read is legitimate: its event reaches the ledger (perhaps a
		// block or two later).
		want := len(baseEvents) + 1
		waitFor(t, 20*time.Second, "dr-lee's access event", func() (bool, string) {
			n := len(a.accessEvents())
			return n == want, fmt.Sprintf("%d events", n)
		})
		baseEvents = a.accessEvents()
		stale := a.nonceOf(K["dr-lee"].ID())
		const total, workers, ceiling = 2000, 8, 20000
		var next atomic.Int64
		var otherDone atomic.Bool
		var mu sync.Mutex
		statuses := map[int]int{}
		floodStart := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if (i > total && otherDone.Load()) || i > ceiling {
						return
					}
					var raw []byte
					switch i % 3 {
					case 0: // junk signature
						x, _ := tx.New(tx.TypeAccess, K["dr-lee"].ID(), nonce(), tx.Access{Record: recID, Purpose: "treatment"})
						x.Sig = randBytes(64)
						raw, _ = x.Encode()
					case 1: // replay of a committed transaction
						raw = committed
					case 2: // valid signature, used nonce
						x, _ := tx.New(tx.TypeAccess, K["dr-lee"].ID(), stale, tx.Access{Record: recID, Purpose: []string{"treatment", "payment"}[i%2]})
						_ = x.Sign(a.chain, K["dr-lee"].Sign)
						raw, _ = x.Encode()
					}
					req, _ := http.NewRequest(http.MethodPost, a.api+"/v1/txs", bytes.NewReader(raw))
					resp, err := advHTTP.Do(req)
					code := -1
					if err == nil {
						code = resp.StatusCode
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					mu.Lock()
					statuses[code]++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond) // let the flood get going
		t0 := time.Now()
		raw := a.signTx(tx.TypeMemberAdd, K["clinic"].ID(), K["clinic"], nonce(), tx.MemberAdd{Public: K["newcomer2"].Public().String(), Role: "staff"})
		r := a.post("/v1/txs", raw)
		other := time.Since(t0)
		otherDone.Store(true)
		wg.Wait()
		sent := min(next.Load()-workers, ceiling)
		floodTime := time.Since(floodStart)
		t.Logf("flood: %d submissions from dr-lee in %s (%.0f/s) with %d workers; statuses %v", sent, floodTime.Round(time.Millisecond), float64(sent)/floodTime.Seconds(), workers, statuses)
		t.Logf("flood: the clinic's member.add committed in %s (%s)", other.Round(time.Millisecond), r)
		a.record(fmt.Sprintf("flood: %d txs from one signer (junk sig / replay / stale nonce), %d workers", sent, workers),
			fmt.Sprintf("statuses %v in %s; another actor's tx committed in %s", statuses, floodTime.Round(time.Millisecond), other.Round(time.Millisecond)))
		if r.status != http.StatusOK {
			t.Errorf("the clinic's tx during the flood: %s", r)
		}
		if other > 10*time.Second {
			t.Errorf("the clinic's tx took %s during the flood (bound 10s)", other)
		}
		if statuses[http.StatusOK] != 0 || statuses[-1] != 0 || statuses[http.StatusInternalServerError] != 0 {
			t.Errorf("flood: some submissions were accepted, failed or errored: %v", statuses)
		}
		if got := a.nonceOf(K["dr-lee"].ID()); got != stale {
			t.Errorf("dr-lee's nonce moved during the flood: %d → %d", stale, got)
		}
		if !a.registered(K["newcomer2"].ID()) {
			t.Error("the clinic's member is not registered")
		}
		unchanged(t, "flood")
	})

	if !n.Running() {
		t.Fatalf("node exited: %v", n.Err())
	}
	b, _ := os.ReadFile(n.log)
	noPanic(t, string(b), "node")
	var tbl strings.Builder
	tbl.WriteString("\n| hostile input | got |\n| --- | --- |\n")
	for _, r := range a.rows {
		fmt.Fprintf(&tbl, "| %s | %s |\n", strings.ReplaceAll(r.input, "|", `\|`), strings.ReplaceAll(r.got, "|", `\|`))
	}
	t.Log(tbl.String())
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

// signRequestHash signs a request whose body is known only by its SHA-256
// (a streamed body), exactly as tx.RequestSignBytes would.
func signRequestHash(chain string, key ident.Private, method, uri string, ts int64, bodyHash []byte) string {
	msg := fmt.Appendf(nil, "%s\x00%s\x00%s %s\x00%d\x00%s", tx.RequestDomain, chain, method, uri, ts, hex.EncodeToString(bodyHash))
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(key.Sign, msg))
}

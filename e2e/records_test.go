package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/tx"
)

// TestRecordsConsentAudit walks SPEC's Records, Consent and Audit tables
// against one node: who may read and write what, under which consent, and
// what the patient's access log shows.
func TestRecordsConsentAudit(t *testing.T) {
	start := time.Now()
	e, n := oneNode(t)

	// Cast: org1 with a physician and a nurse, org2 with a researcher,
	// patients p1 and p2.
	ids := map[string]string{}
	for _, k := range []string{"org1", "org2", "phys", "nurse", "res", "p1", "p2"} {
		ids[k] = str(t, e.json("keys", "new", k), "id")
	}
	e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Org One")
	e.json("org", "add", "--as", "admin", "--key", "org2", "--name", "Org Two")
	e.json("member", "add", "--as", "org1", "--key", "phys", "--role", "physician")
	e.json("member", "add", "--as", "org1", "--key", "nurse", "--role", "nurse")
	e.json("member", "add", "--as", "org2", "--key", "res", "--role", "researcher")
	e.json("patient", "add", "--key", "p1")
	e.json("patient", "add", "--key", "p2")

	// Records. Each holds a distinctive marker; the imaging one is binary.
	markers := map[string]string{}
	content := map[string][]byte{}
	for _, c := range []string{"laboratory", "mental-health", "imaging", "clinical-note"} {
		markers[c] = marker(t, c)
	}
	content["laboratory"] = []byte("HbA1c 6.1%\n" + markers["laboratory"] + "\nno trailing newline")
	content["mental-health"] = []byte("session notes\r\n" + markers["mental-health"] + "\r\n")
	img := []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0xff, 0xfe}
	img = append(img, markers["imaging"]...)
	for i := range 300 {
		img = append(img, byte(i*7))
	}
	content["imaging"] = img
	content["clinical-note"] = []byte("physician note: " + markers["clinical-note"])

	lab := e.putRecord("p1", "p1", "laboratory", writeTemp(t, "lab.txt", content["laboratory"]))
	mh := e.putRecord("p1", ids["p1"], "mental-health", writeTemp(t, "mh.txt", content["mental-health"]))
	imgRec := e.putRecord("p1", "p1", "imaging", writeTemp(t, "scan.png", content["imaging"]))
	labID, mhID, imgID := str(t, lab, "id"), str(t, mh, "id"), str(t, imgRec, "id")
	written := 3

	// want is the access log we expect: one event per successful read by
	// anyone but the patient; consent "" means "do not check".
	type want struct{ record, accessor, consent string }
	var wantEvents []want
	read := func(what, as, id, purpose string, body []byte, consent string) map[string]any {
		t.Helper()
		meta := e.wantRead(what, as, id, purpose, body)
		if meta != nil && as != "p1" {
			wantEvents = append(wantEvents, want{id, ids[as], consent})
		}
		return meta
	}

	// The patient reads its own records, in file and stdout mode.
	meta := read("patient reads own lab", "p1", labID, "", content["laboratory"], "")
	if meta != nil && (meta["patient"] != ids["p1"] || meta["author"] != ids["p1"] || meta["category"] != "laboratory" || num(t, meta, "height") != num(t, lab, "height")) {
		t.Errorf("record get metadata: %v (put: %v)", meta, lab)
	}
	read("patient reads own mental-health", "p1", mhID, "", content["mental-health"], "")
	read("patient reads own imaging", "p1", imgID, "personal", content["imaging"], "")
	if r := e.readStdout("p1", imgID, ""); r.code != exitOK || r.stdout != string(content["imaging"]) {
		t.Errorf("patient reads imaging to stdout: want exit 0 and the %d bytes\n%s", len(content["imaging"]), r)
	}

	// No consent yet.
	e.wantDenied("physician without consent", "phys", labID, "")
	e.wantDenied("researcher without consent", "res", labID, "research")

	// Grant the physician (defaults: all categories, treatment, read).
	g1 := e.json("consent", "grant", "--as", "p1", "--to", "phys")
	hasKeys(t, "consent grant", g1, "id", "tx", "height")
	physGrant := str(t, g1, "id")
	read("physician reads lab under consent", "phys", labID, "", content["laboratory"], physGrant)
	if r := e.readStdout("phys", labID, "treatment"); r.code != exitOK || r.stdout != string(content["laboratory"]) {
		t.Errorf("physician reads lab to stdout: want exit 0 and the bytes\n%s", r)
	} else {
		wantEvents = append(wantEvents, want{labID, ids["phys"], physGrant})
	}
	e.wantDenied("physician reads mental-health under an all grant", "phys", mhID, "")
	e.wantDenied("physician reads lab for research", "phys", labID, "research")

	// Grant the organization mental-health: its members read it, others not.
	g2 := e.json("consent", "grant", "--as", "p1", "--to", "org1", "--categories", "mental-health")
	orgGrant := str(t, g2, "id")
	read("nurse reads mental-health under the org grant", "nurse", mhID, "", content["mental-health"], orgGrant)
	e.wantDenied("researcher of org2 reads mental-health", "res", mhID, "")
	e.wantDenied("nurse reads lab (org grant is mental-health only)", "nurse", labID, "")

	// A conditional org grant for imaging: physicians only.
	g3 := e.json("consent", "grant", "--as", "p1", "--to", "org1", "--categories", "imaging",
		"--condition", `requester.role == "physician"`)
	condGrant := str(t, g3, "id")
	e.wantDenied("nurse reads imaging under a physician-only condition", "nurse", imgID, "")
	read("physician reads imaging", "phys", imgID, "", content["imaging"], "")

	// Several records under one signed request: all of them or none.
	chart := filepath.Join(t.TempDir(), "chart")
	cr := e.run("record", "get", "--as", "phys", "-o", chart, "--output", "json", labID, imgID)
	if cr.code != exitOK {
		t.Errorf("physician reads lab and imaging in one request: want exit 0\n%s", cr)
	} else {
		got := oneObject(t, cr)
		if recs, _ := got["records"].([]any); len(recs) != 2 {
			t.Errorf("record get of two IDs: want two records in the JSON, got %v", got)
		}
		for id, want := range map[string][]byte{labID: content["laboratory"], imgID: content["imaging"]} {
			if b, err := os.ReadFile(filepath.Join(chart, id)); err != nil || !bytes.Equal(b, want) {
				t.Errorf("record get of two IDs: %s/%s holds %d bytes (%v), want the %d written", chart, id, len(b), err, len(want))
			}
		}
		wantEvents = append(wantEvents, want{labID, ids["phys"], physGrant}, want{imgID, ids["phys"], condGrant})
	}
	denied := filepath.Join(t.TempDir(), "denied")
	if r := e.run("record", "get", "--as", "nurse", "-o", denied, mhID, labID); r.code != exitDenied || !deniedRE.MatchString(r.stderr) {
		t.Errorf("nurse reads mental-health (allowed) and lab (not) in one request: want exit 3, denied\n%s", r)
	}
	if _, err := os.Stat(denied); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a denied request for two records left its -o directory behind (%v)", err)
	}
	kept := t.TempDir() // a directory that was there before stays, empty
	if r := e.run("record", "get", "--as", "nurse", "-o", kept, mhID, labID); r.code != exitDenied {
		t.Errorf("nurse reads mental-health and lab into an existing directory: want exit 3\n%s", r)
	}
	if files, err := os.ReadDir(kept); err != nil || len(files) != 0 {
		t.Errorf("a denied request into an existing directory: %d files, %v; want the directory, empty", len(files), err)
	}
	e.want(exitUsage, "record", "get", "--as", "phys", labID, imgID)

	// An expiring grant for the researcher.
	g4 := e.json("consent", "grant", "--as", "p1", "--to", "res", "--categories", "laboratory", "--purpose", "research", "--expires", "3s")
	resGrant := str(t, g4, "id")
	read("researcher reads lab right after an --expires 3s grant", "res", labID, "research", content["laboratory"], resGrant)
	expiredAfter := time.Now()
	waitDeadline := time.Now().Add(20 * time.Second)
	for {
		r, got, _ := e.readFileMode("res", labID, "research")
		if r.code == exitDenied {
			if got != nil || strings.TrimSpace(r.stdout) != "" {
				t.Errorf("expired consent: denied read left output\n%s", r)
			}
			t.Logf("expired consent denied %.1fs after the first read", time.Since(expiredAfter).Seconds())
			break
		}
		if r.code != exitOK || !bytes.Equal(got, content["laboratory"]) {
			t.Fatalf("researcher polling an expiring consent: want exit 0 with the bytes or 3\n%s", r)
		}
		wantEvents = append(wantEvents, want{labID, ids["res"], resGrant})
		if time.Now().After(waitDeadline) {
			t.Fatalf("a consent granted --expires 3s still serves the researcher after 20s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.wantDenied("researcher after expiry (stdout too)", "res", labID, "research")

	// Member write needs write consent for the category.
	notePath := writeTemp(t, "note.txt", content["clinical-note"])
	r := e.fail(exitDenied, "record", "put", "--as", "phys", "--patient", "p1", "--category", "clinical-note", notePath)
	if !deniedRE.MatchString(r.stderr) {
		t.Errorf("member write without consent: stderr does not say denied\n%s", r)
	}
	g5 := e.json("consent", "grant", "--as", "p1", "--to", "phys", "--actions", "read,write", "--categories", "clinical-note")
	writeGrant := str(t, g5, "id")
	note := e.putRecord("phys", "p1", "clinical-note", notePath)
	noteID := str(t, note, "id")
	written++
	meta = read("physician (author) reads its note", "phys", noteID, "", content["clinical-note"], "")
	if meta != nil && (meta["author"] != ids["phys"] || meta["patient"] != ids["p1"]) {
		t.Errorf("note metadata: %v", meta)
	}
	read("patient reads the physician's note", "p1", noteID, "", content["clinical-note"], "")
	// The write grant is for clinical-note only.
	e.want(exitDenied, "record", "put", "--as", "phys", "--patient", "p1", "--category", "laboratory", notePath)

	// Revoke the physician's all-categories grant.
	rv := e.json("consent", "revoke", "--as", "p1", physGrant)
	hasKeys(t, "consent revoke", rv, "tx", "height")
	if len(rv) != 2 {
		t.Logf("consent revoke JSON has extra keys: %v", rv)
	}
	e.wantDenied("physician reads lab after revocation", "phys", labID, "")
	// The conditional org grant still admits the physician to imaging.
	read("physician reads imaging under the conditional org grant", "phys", imgID, "", content["imaging"], condGrant)

	// record list: the patient sees all; the physician what it is covered for.
	all := e.recordList("p1", "p1")
	for _, id := range []string{labID, mhID, imgID, noteID} {
		if _, ok := all[id]; !ok {
			t.Errorf("record list --as p1 lacks %s: %v", id, all)
		}
	}
	if len(all) != written {
		t.Errorf("record list --as p1: %d records, want %d: %v", len(all), written, all)
	}
	if row := all[noteID]; row.Author != ids["phys"] || row.Category != "clinical-note" || row.Height != num(t, note, "height") {
		t.Errorf("record list row for the note: %+v (put: %v)", row, note)
	}
	phys := e.recordList("phys", "p1")
	if _, ok := phys[labID]; ok {
		t.Errorf("record list --as phys shows the lab record after its consent was revoked: %v", phys)
	}
	for _, id := range []string{mhID, imgID, noteID} {
		if _, ok := phys[id]; !ok {
			t.Errorf("record list --as phys lacks covered record %s: %v", id, phys)
		}
	}
	nurse := e.recordList("nurse", "p1")
	if _, ok := nurse[mhID]; !ok || nurse[labID].ID != "" || nurse[noteID].ID != "" {
		t.Errorf("record list --as nurse: want mental-health and not lab/note: %v", nurse)
	}
	if _, ok := nurse[imgID]; ok {
		t.Logf("NOTE: record list --as nurse lists imaging although the org's imaging consent's condition excludes nurses (list does not evaluate conditions)")
	}
	res := e.recordList("res", "p1")
	if len(res) != 0 {
		t.Errorf("record list --as res after its consent expired: %v", res)
	}

	// consent list.
	cs := e.consentList("p1")
	for _, id := range []string{physGrant, orgGrant, condGrant, resGrant, writeGrant} {
		if _, ok := cs[id]; !ok {
			t.Errorf("consent list --as p1 lacks %s", id)
		}
	}
	if len(cs) != 5 {
		t.Errorf("consent list --as p1: %d consents, want 5: %v", len(cs), cs)
	}
	for id, c := range cs {
		if c.Revoked != (id == physGrant) {
			t.Errorf("consent %s revoked=%v, want %v", id, c.Revoked, id == physGrant)
		}
	}
	if c := cs[physGrant]; c.Grantee != ids["phys"] || !slices.Contains(c.Categories, "all") || !slices.Equal(c.Purposes, []string{"treatment"}) || !slices.Equal(c.Actions, []string{"read"}) || c.Until != "" {
		t.Errorf("physician's default grant listed as %+v", c)
	}
	if c := cs[writeGrant]; !slices.Contains(c.Actions, "write") || !slices.Contains(c.Actions, "read") || !slices.Equal(c.Categories, []string{"clinical-note"}) {
		t.Errorf("write grant listed as %+v", c)
	}
	if c := cs[orgGrant]; c.Grantee != ids["org1"] || !slices.Equal(c.Categories, []string{"mental-health"}) {
		t.Errorf("org grant listed as %+v", c)
	}
	if c := cs[resGrant]; c.Until == "" || !slices.Equal(c.Purposes, []string{"research"}) {
		t.Errorf("expiring grant listed as %+v (want an until)", c)
	} else if u, err := time.Parse(time.RFC3339, c.Until); err != nil {
		t.Errorf("expiring grant until %q is not RFC3339: %v", c.Until, err)
	} else if d := time.Until(u); d > 5*time.Second || d < -5*time.Minute {
		t.Errorf("expiring grant until %s is not ~3s after its grant", c.Until)
	}
	pcs := e.consentList("phys")
	for _, id := range []string{physGrant, writeGrant} {
		if _, ok := pcs[id]; !ok {
			t.Errorf("consent list --as phys lacks its own consent %s: %v", id, pcs)
		}
	}
	for id, c := range pcs {
		if c.Grantee != ids["phys"] && c.Grantee != ids["org1"] {
			t.Errorf("consent list --as phys shows %s granted to %s", id, c.Grantee)
		}
	}
	if pcs[physGrant].Revoked != true {
		t.Errorf("consent list --as phys: revoked grant shown as %+v", pcs[physGrant])
	}
	for id := range e.consentList("res") {
		if id != resGrant {
			t.Errorf("consent list --as res shows %s, not its own", id)
		}
	}
	e.want(exitDenied, "consent", "list", "--as", "phys", "--patient", "p1")

	// Hostile and malformed attempts.
	r = e.run("consent", "grant", "--as", "phys", "--to", "nurse", "--output", "json")
	if r.code == exitOK {
		t.Errorf("consent grant signed by a physician (not a patient) succeeded\n%s", r)
	}
	t.Logf("consent grant by a member: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	// SPEC: only the patient may revoke; anyone else is access denied (3).
	for _, who := range []string{"p2", "phys"} {
		r = e.run("consent", "revoke", "--as", who, orgGrant, "--output", "json")
		switch {
		case r.code == exitOK:
			t.Errorf("consent revoke of p1's consent by %s succeeded\n%s", who, r)
		case r.code != exitDenied:
			t.Errorf("PRODUCT BUG: consent revoke of p1's consent by %s: exit %d, SPEC wants 3 (access denied); the CLI's client-side check (client.Revoke) answers 404 \"not one of this patient's\"\n%s", who, r.code, r)
		case !deniedRE.MatchString(r.stderr):
			t.Errorf("revoke by %s: stderr does not say denied\n%s", who, r)
		}
	}
	// The CLI refuses before it asks the ledger; the ledger must refuse too.
	if err := e.sendRaw("p2", tx.TypeConsentRevoke, tx.ConsentRevoke{Consent: orgGrant}); !client.Denied(err) {
		t.Errorf("a consent.revoke of p1's consent signed by p2, sent straight to the node: want denied, got %v", err)
	}
	if c := e.consentList("p1")[orgGrant]; c.Revoked {
		t.Errorf("p1's org consent was revoked by another patient's transaction: %+v", c)
	}
	r = e.run("consent", "grant", "--as", "p1", "--to", "phys", "--condition", "requester.role +", "--output", "json")
	if r.code == exitOK || !strings.Contains(strings.ToLower(r.stderr), "condition") || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 {
		t.Errorf("grant with an invalid CEL condition: want non-zero and one line naming the condition\n%s", r)
	}
	t.Logf("invalid CEL: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	r = e.run("consent", "grant", "--as", "p1", "--to", "phys", "--condition", `requester.role`, "--output", "json")
	if r.code == exitOK {
		t.Errorf("grant with a non-bool CEL condition succeeded\n%s", r)
	}
	r = e.want(exitUsage, "consent", "grant", "--as", "p1", "--to", "phys", "--categories", "bogus")
	if !strings.Contains(r.stderr, "bogus") {
		t.Errorf("--categories bogus: stderr does not name it\n%s", r)
	}
	e.want(exitUsage, "consent", "grant", "--as", "p1", "--to", "phys", "--purpose", "marketing")
	e.want(exitUsage, "record", "put", "--as", "p1", "--patient", "p1", "--category", "bogus", notePath)
	e.want(exitUsage, "record", "get", "--as", "p1", "--purpose", "curiosity", labID)
	// The revoked and the bad grants changed nothing for the physician.
	e.wantDenied("physician reads lab after the hostile attempts", "phys", labID, "")
	// Another patient sees nothing of p1's.
	e.wantDenied("another patient reads p1's lab", "p2", labID, "")

	// The access log: exactly one event per successful non-patient read.
	r = e.want(exitDenied, "access", "log", "--as", "phys", "--patient", "p1")
	if !deniedRE.MatchString(r.stderr) {
		t.Errorf("access log by a member: stderr does not say denied\n%s", r)
	}
	e.want(exitDenied, "access", "log", "--as", "p2", "--patient", "p1")
	evs := e.waitAccessLog("p1", len(wantEvents), 20*time.Second)
	if evs2 := e.accessLog("p1", "p1"); len(evs2) != len(evs) {
		t.Errorf("access log with and without --patient differ: %d vs %d", len(evs2), len(evs))
	}
	type key struct{ record, accessor string }
	gotN, wantN := map[key]int{}, map[key]int{}
	for _, ev := range evs {
		gotN[key{ev.Record, ev.Accessor}]++
		if ev.Accessor == ids["p1"] {
			t.Errorf("access log holds a read by the patient itself: %+v", ev)
		}
		if ev.Height < 1 {
			t.Errorf("access event without a height: %+v", ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
			t.Errorf("access event time %q: %v", ev.Time, err)
		}
	}
	for _, w := range wantEvents {
		wantN[key{w.record, w.accessor}]++
		if w.consent == "" {
			continue
		}
		found := false
		for _, ev := range evs {
			found = found || ev.Record == w.record && ev.Accessor == w.accessor && ev.Consent == w.consent
		}
		if !found {
			t.Errorf("no access event for %s reading %s under consent %s", w.accessor, w.record, w.consent)
		}
	}
	if len(evs) != len(wantEvents) {
		t.Errorf("access log: %d events, want %d (one per successful non-patient read)", len(evs), len(wantEvents))
	}
	for k, n := range wantN {
		if gotN[k] != n {
			t.Errorf("access log: %d events for %s reading %s, want %d", gotN[k], k.accessor, k.record, n)
		}
	}
	for k, n := range gotN {
		if wantN[k] == 0 {
			t.Errorf("access log: %d unexpected events for %s reading %s (denied reads must leave none)", n, k.accessor, k.record)
		}
	}
	for _, ev := range evs {
		if ev.Accessor == ids["res"] && ev.Purpose != "research" {
			t.Errorf("researcher's event purpose %q, want research", ev.Purpose)
		}
	}
	t.Logf("access log: %d events, as expected %d", len(evs), len(wantEvents))

	// Offline: verify, then no plaintext anywhere on disk.
	n.stop()
	v := e.json("verify")
	if v["ok"] != true || num(t, v, "records") < int64(written) {
		t.Errorf("verify: want ok and records ≥ %d: %v", written, v)
	}
	t.Logf("verify: %v", v)
	var ms []string
	for _, m := range markers {
		ms = append(ms, m)
	}
	if hits := grepTrees(t, []string{e.home, e.keyring}, ms); len(hits) > 0 {
		t.Errorf("plaintext found on disk:\n%s", strings.Join(hits, "\n"))
	}

	// A changed byte in a stored blob is found, and named, offline.
	tampered := filepath.Join(t.TempDir(), "home")
	copyDir(t, e.home, tampered)
	seg, ok := largest(filepath.Join(tampered, "data", "blobs", "segments"), ".seg", 1024)
	if !ok {
		t.Fatal("no blob segment of 1 KiB or more in data/blobs/segments")
	}
	flipMiddle(t, seg, 1)
	if r := e.run("verify", "--home", tampered, "--output", "json"); r.code == exitOK || !strings.Contains(r.stderr, "blob") {
		t.Errorf("verify of a home with a blob byte flipped: exit %d; want a failure naming the blob\n%s", r.code, r)
	}

	// So is a record taken out of its patient's index, which the state's
	// commitment leaves out (state version 2): verify compares the index
	// with the one its replay rebuilds.
	unlisted := filepath.Join(t.TempDir(), "home")
	copyDir(t, e.home, unlisted)
	dropFirstKey(t, filepath.Join(unlisted, "data", "app"), "dprecord/") // 'd': the state's data namespace
	if r := e.run("verify", "--home", unlisted, "--output", "json"); r.code == exitOK || !strings.Contains(r.stderr, "precord/") {
		t.Errorf("verify of a home with a record dropped from its patient's index: exit %d; want a failure naming the index\n%s", r.code, r)
	}
	t.Logf("%s took %s", t.Name(), time.Since(start).Round(100*time.Millisecond))
	_ = fmt.Sprint
}

// dropFirstKey deletes, underneath the node, the first key with prefix in
// the Pebble store at dir, as someone with the disk could.
func dropFirstKey(t *testing.T, dir, prefix string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if !it.First() || !strings.HasPrefix(string(it.Key()), prefix) {
		it.Close()
		t.Fatalf("no key with prefix %q in %s", prefix, dir)
	}
	key := bytes.Clone(it.Key())
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(key, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

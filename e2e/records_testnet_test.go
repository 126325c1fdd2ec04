package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRecordsAcrossTestnet: a record written at one validator is read,
// byte for byte, at another; with one validator crashed, records are still
// written and read; the crashed one, restarted, catches up on blocks and
// blobs and serves the record itself. No plaintext reaches any disk.
func TestRecordsAcrossTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four nodes; skipped with -short")
	}
	start := time.Now()
	const V = 4
	e := newEnv(t)
	nodes := startTestnet(t, e, V)
	t.Logf("testnet up after %s", time.Since(start).Round(100*time.Millisecond))

	// Register at node0.
	e.node = nodes[0].api
	ids := map[string]string{}
	for _, k := range []string{"org1", "phys", "p1"} {
		ids[k] = str(t, e.json("keys", "new", k), "id")
	}
	e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Org One")
	e.json("member", "add", "--as", "org1", "--key", "phys", "--role", "physician")
	e.json("patient", "add", "--key", "p1")

	m1, m2 := marker(t, "first"), marker(t, "second")
	body1 := []byte("lab at node0\n" + m1 + "\x00\xff binary tail")
	body2 := []byte("note via node1\r\n" + m2)

	// Write at node0 (explicit --node), grant, read at node3.
	rec1 := e.json("record", "put", "--node", nodes[0].api, "--as", "p1", "--patient", "p1", "--category", "laboratory",
		writeTemp(t, "lab.txt", body1))
	hasKeys(t, "record put", rec1, "id", "tx", "height")
	id1 := str(t, rec1, "id")
	grant := str(t, e.json("consent", "grant", "--node", nodes[0].api, "--as", "p1", "--to", "phys"), "id")
	reads := 0
	at := func(i int) *env { c := *e; c.node = nodes[i].api; return &c }
	if at(3).wantRead("physician reads record 1 at node3", "phys", id1, "", body1) != nil {
		reads++
	}

	// Crash node0; write via node1, read via node2.
	nodes[0].kill9()
	crashedAt := nodes[1].status().Height
	rec2 := at(1).putRecord("p1", "p1", "clinical-note", writeTemp(t, "note.txt", body2))
	id2 := str(t, rec2, "id")
	if at(2).wantRead("physician reads record 2 at node2 with node0 down", "phys", id2, "", body2) != nil {
		reads++
	}
	// The patient still reads the first record with node0 down.
	at(1).wantRead("patient reads record 1 at node1 with node0 down", "p1", id1, "", body1)

	// Restart node0: it catches up on blocks, then on blobs.
	nodes[0] = e.startNode("node0-restarted", nodes[0].home, nodes[0].api)
	target := max(nodes[1].status().Height, num(t, rec2, "height"))
	nodes[0].waitHeight(target, 60*time.Second)
	t.Logf("node0 caught up to height %d (crashed near %d)", target, crashedAt)
	n0 := at(0)
	waitFor(t, 30*time.Second, "node0 to serve record 2", func() (bool, string) {
		r, got, _ := n0.readFileMode("phys", id2, "")
		switch {
		case r.code == exitOK && string(got) == string(body2):
			reads++
			return true, ""
		case r.code == exitOK:
			t.Fatalf("node0 served record 2 with wrong bytes (%d, want %d)", len(got), len(body2))
		case r.code == exitDenied:
			t.Fatalf("node0 denied the physician record 2\n%s", r)
		}
		return false, strings.TrimSpace(r.stderr)
	})
	if n0.wantRead("physician reads record 1 at node0 after restart", "phys", id1, "", body1) != nil {
		reads++
	}

	// The access log at node0 shows every read, under the grant.
	evs := n0.waitAccessLog("p1", reads, 20*time.Second)
	per := map[string]int{}
	for _, ev := range evs {
		if ev.Accessor != ids["phys"] {
			t.Errorf("access event by %s, only the physician read: %+v", ev.Accessor, ev)
		}
		if ev.Consent != grant {
			t.Errorf("access event under consent %q, want %s: %+v", ev.Consent, grant, ev)
		}
		per[ev.Record]++
	}
	if len(evs) != reads || per[id1] != 2 || per[id2] != 2 {
		t.Errorf("access log at node0: %d events (%v), want %d: 2 for each record", len(evs), per, reads)
	}
	// Every node tells the same story.
	for i := 1; i < V; i++ {
		if n := len(at(i).waitAccessLog("p1", reads, 15*time.Second)); n != reads {
			t.Errorf("access log at node%d: %d events, want %d", i, n, reads)
		}
	}

	// Stop all cleanly; verify every home; no plaintext on any disk.
	for _, p := range nodes {
		p.stop()
	}
	var roots []string
	for i, p := range nodes {
		v := e.json("verify", "--home", p.home)
		if v["ok"] != true || num(t, v, "records") < 2 {
			t.Errorf("verify node%d: want ok and records ≥ 2: %v", i, v)
		}
		t.Logf("verify node%d: records=%v blobs=%v blobs_missing=%v blocks=%v", i, v["records"], v["blobs"], v["blobs_missing"], v["blocks"])
		roots = append(roots, p.home)
	}
	roots = append(roots, e.keyring)
	if hits := grepTrees(t, roots, []string{m1, m2}); len(hits) > 0 {
		t.Errorf("plaintext found on disk:\n%s", strings.Join(hits, "\n"))
	}
	t.Logf("%s took %s", t.Name(), time.Since(start).Round(100*time.Millisecond))
}

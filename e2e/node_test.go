package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSingleNodeFreshHome: `medchain node` on an empty home and keyring,
// with no passphrase to be had, initializes itself on the default
// addresses, keeps a generated admin passphrase (0600) and commits blocks.
func TestSingleNodeFreshHome(t *testing.T) {
	for _, p := range []int{8780, 26656, 26657} {
		if !portFree(p) {
			t.Skipf("default port %d is busy on 127.0.0.1; this test needs the defaults (8780, 26656, 26657)", p)
		}
	}
	e := newEnv(t)
	e.pass = "" // no MEDCHAIN_PASSPHRASE, stdin /dev/null
	for _, d := range []string{e.home, e.keyring} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	n := e.startNode("node", e.home, "http://127.0.0.1:8780")
	st := n.waitHeight(2, 60*time.Second)
	if st.ChainID == "" || st.NodeID == "" || st.Validators != 1 {
		t.Errorf("status of a fresh one-validator node: %+v", st)
	}

	// The passphrase was generated into a file named on stderr.
	logText, _ := os.ReadFile(n.log)
	m := regexp.MustCompile(`generated into (\S+) \(mode 0600\)`).FindSubmatch(logText)
	if m == nil {
		t.Fatalf("stderr does not name a generated passphrase file:\n%s", tail(string(logText), 20))
	}
	path := string(m[1])
	if !strings.HasPrefix(path, e.keyring) {
		t.Errorf("passphrase file %s lies outside the keyring %s", path, e.keyring)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("generated passphrase file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	pass, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(pass)) == "" {
		t.Fatalf("generated passphrase file empty or unreadable: %v", err)
	}

	// The generated passphrase opens the admin key: the admin can sign.
	e.pass = strings.TrimSpace(string(pass))
	e.node = n.api
	e.json("keys", "new", "org1")
	out := e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Fresh Org")
	hasKeys(t, "org add", out, "id", "tx", "height")

	// The home is now initialized: a second start does not re-init.
	n.stop()
	if _, err := os.Stat(filepath.Join(e.home, "medchain.json")); err != nil {
		t.Errorf("home has no medchain.json after the node ran: %v", err)
	}
	v := e.json("verify")
	if v["ok"] != true {
		t.Errorf("verify after a clean stop: %v", v)
	}
}

// TestVerifyDetectsTampering: verify passes on a cleanly stopped node and
// fails, naming the place, once the block store or the state is corrupted.
func TestVerifyDetectsTampering(t *testing.T) {
	e, n := oneNode(t)
	e.json("keys", "new", "org1")
	e.json("keys", "new", "m1")
	e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Org One")
	e.json("member", "add", "--as", "org1", "--key", "m1", "--role", "physician")
	n.waitHeight(n.status().Height+2, 30*time.Second)
	n.stop()

	v := e.json("verify")
	if v["ok"] != true || num(t, v, "blocks") < 3 {
		t.Fatalf("verify of an intact home: %v", v)
	}
	// A cleanly stopped home has its logs flushed into tables; a crashed
	// one keeps journals (goleveldb *.log, pebble WAL *.log). Make both.
	clean := filepath.Join(t.TempDir(), "clean")
	copyDir(t, e.home, clean)
	n = e.startNode("node-again", e.home, e.node)
	n.waitHeight(num(t, v, "blocks")+1, 30*time.Second)
	e.json("keys", "new", "org2")
	e.json("keys", "new", "m2")
	e.json("org", "add", "--as", "admin", "--key", "org2", "--name", "Org Two")
	e.json("member", "add", "--as", "org2", "--key", "m2", "--role", "nurse")
	n.kill9()
	crashed := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, e.home, crashed)
	if v := e.json("verify"); v["ok"] != true {
		t.Fatalf("verify of a crashed but intact home: %v", v)
	}

	// The error must name the place: a height, or the store that broke.
	place := regexp.MustCompile(`(?i)block \d+|height \d+|block ?store|\bstate\b`)
	cases := []struct{ name, src, dir, ext string }{
		{"blockstore-table", clean, "data/blockstore.db", ".ldb"},
		{"blockstore-journal", crashed, "data/blockstore.db", ".log"},
		{"app-table", clean, "data/app", ".sst"},
		{"app-wal", crashed, "data/app", ".log"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			victim, ok := largest(filepath.Join(c.src, c.dir), c.ext, 1024)
			if !ok {
				t.Skipf("no %s file of 1 KiB or more in %s", c.ext, c.dir)
			}
			home := filepath.Join(t.TempDir(), "home")
			copyDir(t, c.src, home)
			victim = filepath.Join(home, strings.TrimPrefix(victim, c.src))
			flipMiddle(t, victim, 64)
			r := e.run("verify", "--home", home, "--output", "json")
			t.Logf("flipped 64 bytes mid %s: exit %d, stderr %s", strings.TrimPrefix(victim, home+"/"), r.code, strings.TrimSpace(r.stderr))
			if r.code == exitOK {
				t.Fatalf("verify passes on a home with %s flipped\n%s", victim, r)
			}
			if strings.TrimSpace(r.stdout) != "" {
				out := oneObject(t, r)
				if out["ok"] != false {
					t.Errorf("verify JSON says ok on a tampered home: %v", out)
				}
			}
			if !place.MatchString(r.stderr) {
				t.Errorf("verify's error names neither a height nor the broken store (block store / state)\n%s", r)
			}
		})
	}
}

// TestRestartKeepsCommitted: a node killed with SIGKILL right after a burst
// of transactions keeps every one it reported committed.
func TestRestartKeepsCommitted(t *testing.T) {
	e, n := oneNode(t)

	// Identity transactions: N organizations admitted one by one by the
	// admin, then one member per organization and N patients, submitted
	// concurrently (each by its own signer) so that several share a block.
	const N = 4
	type committed struct {
		id     string
		kind   string
		height int64
	}
	var got []committed
	var top int64
	for i := range N {
		org, mem := fmt.Sprintf("org%d", i), fmt.Sprintf("m%d", i)
		e.json("keys", "new", org)
		e.json("keys", "new", mem)
		out := e.json("org", "add", "--as", "admin", "--key", org, "--name", "Org "+org)
		got = append(got, committed{str(t, out, "id"), "org", num(t, out, "height")})
	}
	// Then, concurrently, a member per organization and N patients.
	for i := range N {
		e.json("keys", "new", fmt.Sprintf("p%d", i))
	}
	results := make(chan result, 2*N)
	for i := range N {
		go func() {
			results <- e.run("member", "add", "--as", fmt.Sprintf("org%d", i), "--key", fmt.Sprintf("m%d", i), "--role", "nurse", "--output", "json")
		}()
		go func() {
			results <- e.run("patient", "add", "--key", fmt.Sprintf("p%d", i), "--output", "json")
		}()
	}
	for range 2 * N {
		select {
		case r := <-results:
			if r.code != exitOK {
				t.Errorf("failed\n%s", r)
				continue
			}
			m := oneObject(t, r)
			got = append(got, committed{str(t, m, "id"), r.args[0], num(t, m, "height")})
		case <-time.After(90 * time.Second):
			t.Fatal("member add / patient add did not return within 90s")
		}
	}
	n.kill9()
	for _, c := range got {
		top = max(top, c.height)
	}

	n2 := e.startNode("node-restarted", e.home, e.node)
	st := n2.waitHeight(top, 30*time.Second)
	if st.Height < top {
		t.Fatalf("after restart the height is %d, below the committed %d", st.Height, top)
	}
	for _, c := range got {
		a, ok := actor(t, n2.api, c.id)
		if !ok {
			t.Errorf("%s %s committed at height %d is gone after kill -9 and restart", c.kind, c.id, c.height)
			continue
		}
		if a["kind"] != c.kind || num(t, a, "height") != c.height {
			t.Errorf("%s %s after restart: %v, want kind %s at height %d", c.kind, c.id, a, c.kind, c.height)
		}
	}
	// Height continues, and the node takes new transactions.
	n2.waitHeight(st.Height+2, 30*time.Second)
	e.json("keys", "new", "after")
	e.json("member", "add", "--as", "org0", "--key", "after", "--role", "staff")

	n2.stop()
	v := e.json("verify")
	if v["ok"] != true {
		t.Errorf("verify after a crash and a restart: %v", v)
	}
}

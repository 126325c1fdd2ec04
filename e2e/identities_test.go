package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUsageErrors: bad usage exits 2 without a node.
func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	e.node = "http://127.0.0.1:1" // nothing may be contacted

	r := e.run("no-such-command")
	if r.code != exitUsage {
		t.Errorf("unknown command: want exit 2\n%s", r)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	if !strings.Contains(first, "no-such-command") {
		t.Errorf("unknown command: first stderr line does not name it\n%s", r)
	}
	if r.stdout != "" {
		t.Errorf("unknown command wrote to stdout\n%s", r)
	}

	for _, args := range [][]string{
		{"org", "add", "--as", "admin"},                 // no --key, --name
		{"member", "add", "--as", "org1", "--key", "x"}, // no --role
		{"patient", "add"},                              // no --key
		{"keys", "new"},                                 // no NAME
		{"keys", "show", "a", "b"},                      // too many
		{"status", "--no-such-flag"},
	} {
		r := e.fail(exitUsage, args...)
		if !strings.HasPrefix(r.stderr, "medchain ") {
			t.Errorf("usage error does not name the command\n%s", r)
		}
	}
	// A bad --output is bad usage too (and nothing is created).
	if r := e.run("init", "--output", "yaml"); r.code != exitUsage || r.stdout != "" {
		t.Errorf("--output yaml: want exit 2 and no stdout\n%s", r)
	}
	// A node that cannot be reached is a failure (1), not bad usage.
	r = e.fail(exitFail, "status")
	if !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("unreachable node: error does not name the address\n%s", r)
	}
}

// TestIdentities walks SPEC's Identities table against one node.
func TestIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node; skipped with -short")
	}
	e := newEnv(t)
	initOut := e.initNode()
	hasKeys(t, "init", initOut, "home", "chain_id", "admin")
	if len(initOut) != 3 {
		t.Errorf("init JSON has extra keys: %v", initOut)
	}
	if str(t, initOut, "home") != e.home {
		t.Errorf("init home %q, want %q", initOut["home"], e.home)
	}
	adminID := str(t, initOut, "admin")
	idRE := regexp.MustCompile(`^mc1[0-9a-f]{40}$`)
	if !idRE.MatchString(adminID) {
		t.Errorf("admin ID %q does not look like mc1 + 40 hex", adminID)
	}
	// init on an initialized home is refused.
	e.fail(exitFail, "init", "--api-addr", "127.0.0.1:1")

	n := e.startNode("node", e.home, e.node)
	n.waitHeight(1, 30*time.Second)

	st := e.json("status")
	hasKeys(t, "status", st, "chain_id", "height", "node_id", "validators")
	if st["chain_id"] != initOut["chain_id"] || num(t, st, "validators") != 1 || num(t, st, "height") < 1 {
		t.Errorf("status: %v", st)
	}

	// keys new / keys show.
	keys := map[string]string{}
	for _, name := range []string{"org1", "org2", "m1", "m2", "p1", "nobody"} {
		out := e.json("keys", "new", name)
		hasKeys(t, "keys new", out, "name", "id")
		if out["name"] != name || !idRE.MatchString(str(t, out, "id")) {
			t.Errorf("keys new %s: %v", name, out)
		}
		keys[name] = str(t, out, "id")
	}
	e.fail(exitFail, "keys", "new", "org1") // exists
	show := e.json("keys", "show", "org1", "--public")
	hasKeys(t, "keys show --public", show, "name", "id", "public")
	if show["id"] != keys["org1"] || !strings.HasPrefix(str(t, show, "public"), "mcpub1") {
		t.Errorf("keys show --public: %v", show)
	}
	if byID := e.json("keys", "show", keys["org1"]); byID["name"] != "org1" {
		t.Errorf("keys show by ID: %v", byID)
	}

	// org add by the admin.
	org := e.json("org", "add", "--as", "admin", "--key", "org1", "--name", "Org One")
	hasKeys(t, "org add", org, "id", "tx", "height")
	if org["id"] != keys["org1"] || num(t, org, "height") < 1 {
		t.Errorf("org add: %v", org)
	}
	if a, ok := actor(t, n.api, keys["org1"]); !ok || a["kind"] != "org" && a["kind"] != "organization" {
		t.Errorf("org1 on the ledger: %v (found %v)", a, ok)
	}
	// The admin may be named by actor ID too (SPEC: keyring name or ID).
	org2 := e.json("org", "add", "--as", adminID, "--key", "org2", "--name", "Org Two")
	hasKeys(t, "org add", org2, "id", "tx", "height")

	// member add by the organization.
	mem := e.json("member", "add", "--as", "org1", "--key", "m1", "--role", "physician")
	hasKeys(t, "member add", mem, "id", "tx", "height")
	if a, ok := actor(t, n.api, keys["m1"]); !ok || a["org"] != keys["org1"] || a["role"] != "physician" {
		t.Errorf("m1 on the ledger: %v (found %v)", a, ok)
	}

	// patient add by the patient.
	pat := e.json("patient", "add", "--key", "p1")
	hasKeys(t, "patient add", pat, "id", "tx", "height")
	if pat["id"] != keys["p1"] {
		t.Errorf("patient add: %v", pat)
	}

	// Access denied: exit 3, one clear line.
	denied := func(what string, args ...string) {
		t.Helper()
		r := e.fail(exitDenied, args...)
		if !regexp.MustCompile(`(?i)unauthori|denied|only|not allowed|may not`).MatchString(r.stderr) {
			t.Errorf("%s: stderr does not say access was denied\n%s", what, r)
		}
	}
	denied("org add by a patient", "org", "add", "--as", "p1", "--key", "nobody", "--name", "X")
	denied("org add by an org", "org", "add", "--as", "org1", "--key", "nobody", "--name", "X")
	denied("org add by a member", "org", "add", "--as", "m1", "--key", "nobody", "--name", "X")
	denied("member add by the admin", "member", "add", "--as", "admin", "--key", "m2", "--role", "nurse")
	denied("member add by a member", "member", "add", "--as", "m1", "--key", "m2", "--role", "nurse")
	denied("member add by a patient", "member", "add", "--as", "p1", "--key", "m2", "--role", "nurse")
	if _, ok := actor(t, n.api, keys["m2"]); ok {
		t.Error("m2 registered although every attempt was denied")
	}
	if _, ok := actor(t, n.api, keys["nobody"]); ok {
		t.Error("nobody registered as an org although every attempt was denied")
	}

	// Another org cannot take over org1's member: it is already registered.
	r := e.fail(exitFail, "member", "add", "--as", "org2", "--key", "m1", "--role", "nurse")
	if !strings.Contains(r.stderr, "already") {
		t.Errorf("member of org1 added again by org2: stderr does not say already\n%s", r)
	}
	if a, _ := actor(t, n.api, keys["m1"]); a["org"] != keys["org1"] {
		t.Errorf("m1 changed organization: %v", a)
	}
	// A signer that is not on the ledger cannot act.
	r = e.run("member", "add", "--as", "nobody", "--key", "m2", "--role", "nurse", "--output", "json")
	if r.code == exitOK {
		t.Errorf("member add signed by an unregistered key succeeded\n%s", r)
	}
	t.Logf("member add signed by an unregistered key: exit %d: %s", r.code, strings.TrimSpace(r.stderr))

	// patient add twice.
	r = e.run("patient", "add", "--key", "p1", "--output", "json")
	if r.code == exitOK || !strings.Contains(r.stderr, "already") {
		t.Errorf("patient add twice: want non-zero and \"already\"\n%s", r)
	}

	// A key from another machine's keyring, passed as its public string.
	other := newEnv(t)
	other.keyring = filepath.Join(t.TempDir(), "other-keys")
	other.json("keys", "new", "remote-org")
	pub := other.json("keys", "show", "remote-org", "--public")
	remote := e.json("org", "add", "--as", "admin", "--key", str(t, pub, "public"), "--name", "Remote Org")
	if remote["id"] != pub["id"] {
		t.Errorf("org add with a public string: id %v, want %v", remote["id"], pub["id"])
	}
	if a, ok := actor(t, n.api, str(t, pub, "id")); !ok || a["public"] != pub["public"] {
		t.Errorf("remote org on the ledger: %v (found %v)", a, ok)
	}
	// … and the remote org, with its own keyring, admits a member given by
	// public string from this machine.
	other.node = e.node
	m2pub := e.json("keys", "show", "m2", "--public")
	mem2 := other.json("member", "add", "--as", "remote-org", "--key", str(t, m2pub, "public"), "--role", "nurse")
	if mem2["id"] != keys["m2"] {
		t.Errorf("member add by the remote org: %v", mem2)
	}
	// An actor ID as --key resolves through the ledger.
	e.json("keys", "new", "m3")
	m3pub := e.json("keys", "show", "m3", "--public")
	e.json("patient", "add", "--key", "m3")
	r = e.run("org", "add", "--as", "admin", "--key", str(t, m3pub, "id"), "--name", "Dup", "--output", "json")
	if r.code == exitOK || !strings.Contains(r.stderr, "already") {
		t.Errorf("org add of a registered patient's ID: want non-zero and \"already\"\n%s", r)
	}

	n.stop()
	if v := e.json("verify"); v["ok"] != true {
		t.Errorf("verify: %v", v)
	}
}

package e2e

// Helpers for the Records / Consent / Audit end-to-end tests. They build
// on harness_test.go and add nothing to it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/tx"
)

// deniedRE matches an error line that says access was refused.
var deniedRE = regexp.MustCompile(`(?i)unauthori|denied|forbidden|not allowed|may not|no (active )?consent|not covered|only`)

// marker returns a distinctive, non-repeating string to plant in a record.
func marker(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "MEDCHAIN-PLAINTEXT-" + strings.ToUpper(what) + "-" + hex.EncodeToString(b)
}

// writeTemp writes b to a new file named name in a fresh temp dir.
func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// putRecord runs `record put` and wants {"id","tx","height"}.
func (e *env) putRecord(as, patient, category, file string) map[string]any {
	e.t.Helper()
	out := e.json("record", "put", "--as", as, "--patient", patient, "--category", category, file)
	hasKeys(e.t, "record put", out, "id", "tx", "height")
	if num(e.t, out, "height") < 1 {
		e.t.Errorf("record put: height < 1: %v", out)
	}
	return out
}

// readFileMode runs `record get --as as [--purpose p] id -o FILE --output
// json`. It returns the run, the bytes written (nil if no file) and, on
// success, the JSON metadata.
func (e *env) readFileMode(as, id, purpose string) (result, []byte, map[string]any) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "out.bin")
	args := []string{"record", "get", "--as", as}
	if purpose != "" {
		args = append(args, "--purpose", purpose)
	}
	args = append(args, id, "-o", dst, "--output", "json")
	r := e.run(args...)
	b, err := os.ReadFile(dst)
	if err != nil {
		b = nil
	}
	var meta map[string]any
	if r.code == exitOK {
		meta = oneObject(e.t, r)
	}
	return r, b, meta
}

// readStdout runs `record get` without -o in text mode: contents to stdout.
func (e *env) readStdout(as, id, purpose string) result {
	e.t.Helper()
	args := []string{"record", "get", "--as", as}
	if purpose != "" {
		args = append(args, "--purpose", purpose)
	}
	return e.run(append(args, id)...)
}

// wantRead reads id as `as` with -o and wants exactly want, and metadata
// naming the record.
func (e *env) wantRead(what, as, id, purpose string, want []byte) map[string]any {
	e.t.Helper()
	r, got, meta := e.readFileMode(as, id, purpose)
	if r.code != exitOK {
		e.t.Errorf("%s: want exit 0\n%s", what, r)
		return nil
	}
	if !bytes.Equal(got, want) {
		e.t.Errorf("%s: file holds %d bytes, want the %d bytes written (equal prefix: %v)", what, len(got), len(want), bytes.HasPrefix(want, got[:min(len(got), 16)]))
	}
	hasKeys(e.t, what, meta, "id", "patient", "author", "category", "height")
	if meta["id"] != id {
		e.t.Errorf("%s: metadata id %v, want %s", what, meta["id"], id)
	}
	return meta
}

// wantDenied reads id as `as`, in file mode and in stdout mode, and wants
// exit 3, a one-line reason, no file and nothing on stdout.
func (e *env) wantDenied(what, as, id, purpose string) {
	e.t.Helper()
	r, got, _ := e.readFileMode(as, id, purpose)
	if r.code != exitDenied {
		e.t.Errorf("%s (-o): want exit 3\n%s", what, r)
	}
	if got != nil {
		e.t.Errorf("%s (-o): a denied read wrote %d bytes to the output file", what, len(got))
	}
	if strings.TrimSpace(r.stdout) != "" {
		e.t.Errorf("%s (-o): a denied read printed on stdout\n%s", what, r)
	}
	r = e.readStdout(as, id, purpose)
	if r.code != exitDenied {
		e.t.Errorf("%s (stdout): want exit 3\n%s", what, r)
	}
	if r.stdout != "" {
		e.t.Errorf("%s (stdout): a denied read printed %d bytes on stdout\n%s", what, len(r.stdout), r)
	}
	if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || !deniedRE.MatchString(r.stderr) {
		e.t.Errorf("%s: want one stderr line saying access was denied\n%s", what, r)
	}
}

// event is one access-log entry.
type event struct {
	Record, Accessor, Purpose, Consent string
	Height                             int64
	Time                               string
}

// accessLog runs `access log --as as [--patient p]` and parses the events.
func (e *env) accessLog(as, patient string) []event {
	e.t.Helper()
	args := []string{"access", "log", "--as", as}
	if patient != "" {
		args = append(args, "--patient", patient)
	}
	out := e.json(args...)
	list, ok := out["events"].([]any)
	if !ok {
		e.t.Fatalf("access log: no events array: %v", out)
	}
	var evs []event
	for _, x := range list {
		m, _ := x.(map[string]any)
		hasKeys(e.t, "access event", m, "record", "accessor", "purpose", "height", "time")
		if _, ok := m["consent"]; !ok {
			e.t.Errorf("access event lacks \"consent\": %v", m)
		}
		c, _ := m["consent"].(string)
		evs = append(evs, event{str(e.t, m, "record"), str(e.t, m, "accessor"), str(e.t, m, "purpose"), c, num(e.t, m, "height"), str(e.t, m, "time")})
	}
	return evs
}

// recordRow is one `record list` entry.
type recordRow struct {
	ID, Category, Author string
	Height               int64
}

func (e *env) recordList(as, patient string) map[string]recordRow {
	e.t.Helper()
	out := e.json("record", "list", "--as", as, "--patient", patient)
	list, ok := out["records"].([]any)
	if !ok {
		e.t.Fatalf("record list: no records array: %v", out)
	}
	rows := map[string]recordRow{}
	for _, x := range list {
		m, _ := x.(map[string]any)
		hasKeys(e.t, "record row", m, "id", "category", "author", "height")
		r := recordRow{str(e.t, m, "id"), str(e.t, m, "category"), str(e.t, m, "author"), num(e.t, m, "height")}
		if _, dup := rows[r.ID]; dup {
			e.t.Errorf("record list --as %s: %s listed twice", as, r.ID)
		}
		rows[r.ID] = r
	}
	return rows
}

// consentRow is one `consent list` entry.
type consentRow struct {
	ID, Grantee, Until            string
	Categories, Purposes, Actions []string
	Revoked                       bool
}

func (e *env) consentList(as string) map[string]consentRow {
	e.t.Helper()
	out := e.json("consent", "list", "--as", as)
	list, ok := out["consents"].([]any)
	if !ok {
		e.t.Fatalf("consent list: no consents array: %v", out)
	}
	strs := func(m map[string]any, k string) []string {
		xs, ok := m[k].([]any)
		if !ok {
			e.t.Errorf("consent %q is not an array: %v", k, m)
		}
		var s []string
		for _, x := range xs {
			v, _ := x.(string)
			s = append(s, v)
		}
		return s
	}
	rows := map[string]consentRow{}
	for _, x := range list {
		m, _ := x.(map[string]any)
		hasKeys(e.t, "consent row", m, "id", "grantee", "categories", "purposes", "actions", "revoked")
		if _, ok := m["until"]; !ok {
			e.t.Errorf("consent row lacks \"until\": %v", m)
		}
		until, _ := m["until"].(string)
		rev, ok := m["revoked"].(bool)
		if !ok {
			e.t.Errorf("consent \"revoked\" is not a bool: %v", m)
		}
		c := consentRow{str(e.t, m, "id"), str(e.t, m, "grantee"), until, strs(m, "categories"), strs(m, "purposes"), strs(m, "actions"), rev}
		rows[c.ID] = c
	}
	return rows
}

// plaintextForms are the byte strings under which marker could sit on
// disk: raw, hex, and base64 (std and URL alphabets) at every alignment.
func plaintextForms(marker string) [][]byte {
	m := []byte(marker)
	forms := [][]byte{m, []byte(hex.EncodeToString(m)), []byte(strings.ToUpper(hex.EncodeToString(m)))}
	for k := range 3 {
		s := m[k:]
		s = s[:len(s)/3*3]
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, []byte(enc.EncodeToString(s)))
		}
	}
	return forms
}

// grepTrees returns "file: marker" for every file under roots that holds
// any form of any marker.
func grepTrees(t *testing.T, roots []string, markers []string) []string {
	t.Helper()
	var hits []string
	files := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, mk := range markers {
				for _, f := range plaintextForms(mk) {
					if bytes.Contains(b, f) {
						hits = append(hits, fmt.Sprintf("%s: %s (as %q)", path, mk, f[:min(len(f), 24)]))
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
	}
	if files == 0 {
		t.Errorf("grep for plaintext: no files under %v", roots)
	}
	t.Logf("grep for plaintext: %d files under %d trees scanned", files, len(roots))
	return hits
}

// startTestnet writes a v-validator testnet, points e's keyring at its
// shared keyring, starts every node and waits until all share heights within
// one of each other, ≥ 2, with ≥ 2 peers each.
func startTestnet(t *testing.T, e *env, v int) []*proc {
	t.Helper()
	out := filepath.Join(t.TempDir(), "net")
	base := freeBase(t, v)
	tn := e.json("testnet", "--validators", fmt.Sprint(v), "--out", out, "--base-port", fmt.Sprint(base))
	list, ok := tn["nodes"].([]any)
	if !ok || len(list) != v {
		t.Fatalf("testnet JSON: want %d nodes: %v", v, tn)
	}
	e.keyring = filepath.Join(out, "keyring")
	nodes := make([]*proc, v)
	for i, x := range list {
		m, _ := x.(map[string]any)
		nodes[i] = e.startNode(fmt.Sprintf("node%d", i), str(t, m, "home"), str(t, m, "api"))
	}
	waitFor(t, 60*time.Second, "all nodes within one height, ≥ 2, with ≥ 2 peers", func() (bool, string) {
		var hs []int64
		info := ""
		good := true
		for _, p := range nodes {
			if !p.Running() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.Err(), tailFile(p.log, 30))
			}
			st, err := getStatus(p.api)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", p.name, err)
			}
			info += fmt.Sprintf("%s h=%d peers=%d; ", p.name, st.Height, st.Peers)
			hs = append(hs, st.Height)
			good = good && st.Height >= 2 && st.Peers >= 2
		}
		lo, hi := hs[0], hs[0]
		for _, h := range hs {
			lo, hi = min(lo, h), max(hi, h)
		}
		return good && hi-lo <= 1, info
	})
	return nodes
}

// want runs a command with --output json and reports (without stopping the
// test) when its exit status is not code or it prints more than one line
// on stderr when it fails.
func (e *env) want(code int, args ...string) result {
	e.t.Helper()
	r := e.run(append(args, "--output", "json")...)
	if r.code != code {
		e.t.Errorf("want exit %d\n%s", code, r)
	}
	if r.code != exitOK {
		if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || lines[0] == "" {
			e.t.Errorf("want one error line on stderr, got %d\n%s", len(lines), r)
		}
	}
	return r
}

// sendRaw signs body as the keyring key name and submits it to e's node
// directly, past the CLI's own checks, as a hostile client would.
func (e *env) sendRaw(name string, typ tx.Type, body any) error {
	e.t.Helper()
	key, _ := e.loadKey(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.New(e.node).Send(ctx, key, typ, body)
	return err
}

// loadKey loads the keyring key name (the keyring is returned too, for
// importing more).
func (e *env) loadKey(name string) (ident.Private, *keyring.Keyring) {
	e.t.Helper()
	kr, err := keyring.Open(e.keyring)
	if err != nil {
		e.t.Fatalf("open keyring: %v", err)
	}
	key, err := kr.Load(name, testPassphrase)
	if err != nil {
		e.t.Fatalf("load %s: %v", name, err)
	}
	return key, kr
}

// waitAccessLog polls `access log --as as` until it holds at least n
// events (bounded by d): nodes make each served read durable locally and
// carry it to the ledger in access batches, so events trail the reads by
// a block or two. It then waits a little more and reads the log again, so
// that late duplicates would show, and returns that second reading.
func (e *env) waitAccessLog(as string, n int, d time.Duration) []event {
	e.t.Helper()
	var evs []event
	t0 := time.Now()
	waitFor(e.t, d, fmt.Sprintf("the access log at %s to hold %d events", e.node, n), func() (bool, string) {
		evs = e.accessLog(as, "")
		return len(evs) >= n, fmt.Sprintf("%d events", len(evs))
	})
	e.t.Logf("access log at %s reached %d events after %s", e.node, len(evs), time.Since(t0).Round(100*time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	return e.accessLog(as, "")
}

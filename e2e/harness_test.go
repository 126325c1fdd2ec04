// Package e2e runs the medchain binary end to end: real processes, real
// ports on 127.0.0.1, real homes in temporary directories.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/medchain/medchain/internal/testnode"
)

// Exit statuses SPEC fixes.
const (
	exitOK     = 0
	exitFail   = 1
	exitUsage  = 2
	exitDenied = 3
)

// testPassphrase unlocks every key the tests create.
const testPassphrase = "e2e-test-passphrase"

// bin is the medchain binary TestMain builds.
var bin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	b, dir, err := testnode.Build("medchain-e2e-bin-")
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin = b
	return m.Run()
}

// ---------------------------------------------------------------------------
// CLI invocations

// env is the environment one test runs commands in.
type env struct {
	t        *testing.T
	home     string
	keyring  string
	node     string // API URL, "" leaves MEDCHAIN_NODE unset
	pass     string // "" leaves MEDCHAIN_PASSPHRASE unset
	userHome string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := t.TempDir()
	return &env{
		t: t, home: filepath.Join(d, "home"), keyring: filepath.Join(d, "keys"),
		pass: testPassphrase, userHome: filepath.Join(d, "user"),
	}
}

// environ is the process environment: the test's MEDCHAIN_* only, and a
// private $HOME so that no default path touches the real ~/.medchain.
func (e *env) environ() []string {
	out := testnode.Environ("HOME="+e.userHome, "MEDCHAIN_HOME="+e.home, "MEDCHAIN_KEYRING="+e.keyring)
	if e.node != "" {
		out = append(out, "MEDCHAIN_NODE="+e.node)
	}
	if e.pass != "" {
		out = append(out, "MEDCHAIN_PASSPHRASE="+e.pass)
	}
	return out
}

// result is one finished command.
type result struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("medchain %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs the binary to completion (bounded at 90s), stdin /dev/null.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.environ()
	cmd.Stdin = nil // /dev/null: not a terminal
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{args: args, stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		// Errorf, not Fatalf: run may be called from other goroutines.
		e.t.Errorf("medchain %s: %v (ctx: %v)\nstderr: %s", strings.Join(args, " "), err, ctx.Err(), r.stderr)
		r.code = -1
	}
	noPanic(e.t, r.stderr, "medchain "+strings.Join(args, " "))
	return r
}

// json runs a command with --output json, wants exit 0 and exactly one
// JSON object on stdout, and returns it.
func (e *env) json(args ...string) map[string]any {
	e.t.Helper()
	r := e.run(append(args, "--output", "json")...)
	if r.code != exitOK {
		e.t.Fatalf("want exit 0\n%s", r)
	}
	return oneObject(e.t, r)
}

// fail runs a command with --output json and wants exit code want, one
// line on stderr, and nothing but at most one JSON object on stdout.
func (e *env) fail(want int, args ...string) result {
	e.t.Helper()
	r := e.run(append(args, "--output", "json")...)
	if r.code != want {
		e.t.Fatalf("want exit %d\n%s", want, r)
	}
	if strings.TrimSpace(r.stdout) != "" {
		oneObject(e.t, r)
	}
	if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || lines[0] == "" {
		e.t.Errorf("want one error line on stderr, got %d\n%s", len(lines), r)
	}
	return r
}

// oneObject parses stdout as exactly one JSON object.
func oneObject(t *testing.T, r result) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON object\n%s", r)
	}
	return m
}

// hasKeys checks that m has each of the keys want, none an empty string.
func hasKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		v, ok := m[k]
		if !ok {
			t.Errorf("%s: JSON lacks %q: %v", what, k, m)
			continue
		}
		if s, isStr := v.(string); isStr && s == "" {
			t.Errorf("%s: JSON %q is empty: %v", what, k, m)
		}
	}
}

func str(t *testing.T, m map[string]any, k string) string {
	t.Helper()
	s, ok := m[k].(string)
	if !ok {
		t.Fatalf("JSON %q is not a string: %v", k, m)
	}
	return s
}

func num(t *testing.T, m map[string]any, k string) int64 {
	t.Helper()
	f, ok := m[k].(float64)
	if !ok {
		t.Fatalf("JSON %q is not a number: %v", k, m)
	}
	return int64(f)
}

func noPanic(t *testing.T, stderr, what string) {
	t.Helper()
	if testnode.Panicked(stderr) {
		t.Errorf("%s panicked:\n%s", what, tail(stderr, 40))
	}
}

// ---------------------------------------------------------------------------
// Ports

// freeBase picks a random base port in 10000-19990 (apart from the faults
// suite's 20000-32000, which may run at the same time) such that, for each
// of n nodes, base+10i, +1 and +2 are free on 127.0.0.1.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	base, ok := testnode.FreeBase(10000, n, 3, 1000)
	if !ok {
		t.Fatal("no free port range found in 10000-19990")
	}
	return base
}

var (
	portFree = testnode.PortFree
	addr     = testnode.Addr
)

// initNode runs `medchain init` on e.home with ports from a fresh base and
// points e at its API.
func (e *env) initNode() map[string]any {
	e.t.Helper()
	base := freeBase(e.t, 1)
	out := e.json("init", "--p2p-addr", addr(base), "--rpc-addr", addr(base+1), "--api-addr", addr(base+2))
	e.node = "http://" + addr(base+2)
	return out
}

// ---------------------------------------------------------------------------
// Node processes

// proc is a running `medchain node`.
type proc struct {
	*testnode.Proc
	t    *testing.T
	name string
	home string
	api  string
	log  string
}

// oneNode starts a test against one fresh node, initialized and at height
// 1; it skips the test with -short.
func oneNode(t *testing.T) (*env, *proc) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a node; skipped with -short")
	}
	e := newEnv(t)
	e.initNode()
	n := e.startNode("node", e.home, e.node)
	n.waitHeight(1, 30*time.Second)
	return e, n
}

// startNode starts `medchain node --home home` with e's environment, its
// output to a log file; it is killed at cleanup whatever happens.
func (e *env) startNode(name, home, api string) *proc {
	e.t.Helper()
	logPath := filepath.Join(e.t.TempDir(), name+".log")
	tp, err := testnode.Start(bin, name, home, logPath, e.environ())
	if err != nil {
		e.t.Fatal(err)
	}
	p := &proc{Proc: tp, t: e.t, name: name, home: home, api: api, log: logPath}
	e.t.Cleanup(func() {
		p.killGroup()
		if e.t.Failed() {
			e.t.Logf("--- tail of %s log (%s):\n%s", name, logPath, tailFile(logPath, 40))
		}
	})
	return p
}

// killGroup SIGKILLs the node's process group and waits for it.
func (p *proc) killGroup() {
	if err := p.Kill(); err != nil {
		p.t.Error(err)
	}
}

// kill9 kills the node with SIGKILL, as a crash.
func (p *proc) kill9() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("%s exited before kill -9: %v\n%s", p.name, p.Err(), tailFile(p.log, 30))
	}
	p.killGroup()
}

// stop sends SIGTERM and wants a clean exit 0 within 30s.
func (p *proc) stop() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("%s exited before SIGTERM: %v\n%s", p.name, p.Err(), tailFile(p.log, 30))
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("%s: SIGTERM: %v", p.name, err)
	}
	if !p.Wait(30 * time.Second) {
		p.t.Fatalf("%s: no exit 30s after SIGTERM\n%s", p.name, tailFile(p.log, 30))
	}
	if p.Err() != nil {
		p.t.Fatalf("%s: after SIGTERM: %v (want exit 0)\n%s", p.name, p.Err(), tailFile(p.log, 30))
	}
	b, _ := os.ReadFile(p.log)
	noPanic(p.t, string(b), p.name)
}

// ---------------------------------------------------------------------------
// HTTP API

// status is GET /v1/status.
type status = testnode.Status

var httpClient = &http.Client{Timeout: 3 * time.Second}

// getJSON GETs url; it returns the HTTP status and decodes a 200's body.
func getJSON(url string, v any) (int, error) { return testnode.GetJSON(httpClient, 1<<20, url, v) }

func getStatus(api string) (status, error) { return testnode.GetStatus(httpClient, 1<<20, api) }

// waitFor polls cond every 100ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, info := cond()
		if ok {
			return
		}
		if info != "" {
			last = info
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHeight waits until p's API reports height ≥ h; p must stay up.
func (p *proc) waitHeight(h int64, d time.Duration) status {
	p.t.Helper()
	var st status
	waitFor(p.t, d, fmt.Sprintf("%s to reach height %d", p.name, h), func() (bool, string) {
		if !p.Running() {
			p.t.Fatalf("%s exited: %v\n%s", p.name, p.Err(), tailFile(p.log, 30))
		}
		s, err := getStatus(p.api)
		if err != nil {
			return false, err.Error()
		}
		st = s
		return s.Height >= h, fmt.Sprintf("height %d", s.Height)
	})
	return st
}

func (p *proc) status() status {
	p.t.Helper()
	st, err := getStatus(p.api)
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	return st
}

// actor is GET /v1/actors/ID; ok is false on 404.
func actor(t *testing.T, api, id string) (map[string]any, bool) {
	t.Helper()
	var a map[string]any
	code, err := getJSON(api+"/v1/actors/"+id, &a)
	if err != nil {
		t.Fatalf("GET /v1/actors/%s: %v", id, err)
	}
	switch code {
	case http.StatusOK:
		return a, true
	case http.StatusNotFound:
		return nil, false
	}
	t.Fatalf("GET /v1/actors/%s: HTTP %d", id, code)
	return nil, false
}

// ---------------------------------------------------------------------------
// Files

var (
	tail     = testnode.Tail
	tailFile = testnode.TailFile
)

// copyDir copies the tree src to dst, keeping file modes.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// flipMiddle inverts n bytes at the middle of path.
func flipMiddle(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2*n {
		t.Fatalf("%s: only %d bytes", path, len(b))
	}
	mid := len(b)/2 - n/2
	for i := mid; i < mid+n; i++ {
		b[i] ^= 0xFF
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// largest returns the largest file in dir whose name ends in ext, if it
// holds at least min bytes.
func largest(dir, ext string, min int64) (string, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	best, size := "", min-1
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		if info, err := e.Info(); err == nil && info.Size() > size {
			best, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	return best, best != ""
}

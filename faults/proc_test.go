package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// passphrase unlocks every key the harness creates.
const passphrase = "faults-test-passphrase"

// env is the environment the binary runs in: MEDCHAIN_* from the test
// only, and a private $HOME.
type env struct {
	t        *testing.T
	keyring  string
	userHome string
}

func newEnv(t *testing.T, dir string) *env {
	return &env{t: t, keyring: filepath.Join(dir, "keys"), userHome: filepath.Join(dir, "user")}
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MEDCHAIN_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+e.userHome, "MEDCHAIN_KEYRING="+e.keyring, "MEDCHAIN_PASSPHRASE="+passphrase)
}

// run runs the binary to completion (bounded at 3 minutes) and wants exit 0
// and one JSON object on stdout, which it returns.
func (e *env) json(args ...string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args = append(args, "--output", "json")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.environ()
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if err != nil {
		return nil, fmt.Errorf("medchain %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, so.String(), tail(se.String(), 20))
	}
	var m map[string]any
	if err := json.Unmarshal(so.Bytes(), &m); err != nil {
		return nil, fmt.Errorf("medchain %s: stdout is not one JSON object: %v\n%s", strings.Join(args, " "), err, so.String())
	}
	return m, nil
}

// ---------------------------------------------------------------------------
// Ports

var (
	portMu   sync.Mutex
	usedBase = map[int]bool{}
)

// freeBase picks a base port in 20000-32000, below Linux's ephemeral range
// (32768-60999) so that no outgoing connection can take a port a node or a
// proxy needs at its restart, such that, for each of n nodes,
// base+10i+0 … base+10i+width-1 are free on 127.0.0.1.
func freeBase(t *testing.T, n, width int) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		base := 20000 + 10*rand.IntN(1200-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			if usedBase[base+10*i] {
				ok = false
				break
			}
			for off := range width {
				if !portFree(base + 10*i + off) {
					ok = false
					break
				}
			}
		}
		if ok {
			for i := range n {
				usedBase[base+10*i] = true
			}
			return base
		}
	}
	t.Fatal("no free port range found in 20000-32000")
	return 0
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", addr(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func addr(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

// ---------------------------------------------------------------------------
// Node processes

// proc is one run of `medchain node`.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done closes
}

// startNode starts `medchain node --home home`, appending its output to
// logPath.
func (e *env) startNode(name, home, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== start %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, "node", "--home", home)
	cmd.Env = e.environ()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the node's process group.
func (p *proc) signal(sig syscall.Signal) error {
	if !p.running() {
		return fmt.Errorf("%s is not running (%v)", p.name, p.err)
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill9 SIGKILLs the process group and waits for it (10s at most).
func (p *proc) kill9() error {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: still running 10s after SIGKILL", p.name)
	}
}

// stop sends SIGTERM and wants a clean exit 0 within 30s.
func (p *proc) stop() error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.kill9()
		return fmt.Errorf("%s: no exit 30s after SIGTERM\n%s", p.name, tailFile(p.log, 30))
	}
	if p.err != nil {
		return fmt.Errorf("%s: after SIGTERM: %v (want exit 0)\n%s", p.name, p.err, tailFile(p.log, 30))
	}
	return nil
}

// ---------------------------------------------------------------------------
// HTTP

// status is GET /v1/status.
type status struct {
	ChainID    string `json:"chain_id"`
	Height     int64  `json:"height"`
	NodeID     string `json:"node_id"`
	Validators int    `json:"validators"`
	AppHash    string `json:"app_hash"`
	Peers      int    `json:"peers"`
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// getJSON GETs url; it returns the HTTP status and decodes a 200's body.
func getJSON(url string, v any) (int, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %.200s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

func getStatus(api string) (status, error) {
	var st status
	code, err := getJSON(api+"/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/status: HTTP %d", code)
	}
	return st, err
}

// stableStatus reads the status twice back to back and reports whether the
// two readings agree: height and app hash are read apart, so only an
// agreed reading counts.
func stableStatus(api string) (status, bool) {
	a, err1 := getStatus(api)
	b, err2 := getStatus(api)
	return a, err1 == nil && err2 == nil && a.Height == b.Height && a.AppHash == b.AppHash
}

// actorInfo is GET /v1/actors/{id}.
type actorInfo struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Public string `json:"public"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Org    string `json:"org"`
	Height int64  `json:"height"`
	Nonce  uint64 `json:"nonce"`
}

// getActor returns the actor; found is false on a 404.
func getActor(api, id string) (a actorInfo, found bool, err error) {
	code, err := getJSON(api+"/v1/actors/"+id, &a)
	if err != nil {
		return a, false, err
	}
	switch code {
	case http.StatusOK:
		return a, true, nil
	case http.StatusNotFound:
		return a, false, nil
	}
	return a, false, fmt.Errorf("GET /v1/actors/%s: HTTP %d", id, code)
}

// blockMeta is one entry of CometBFT's /blockchain.
type blockMeta struct {
	BlockID struct {
		Hash string `json:"hash"`
	} `json:"block_id"`
	Header struct {
		Height  string `json:"height"`
		AppHash string `json:"app_hash"`
	} `json:"header"`
}

// blockHashes returns height → block hash and height → header app hash for
// heights lo…hi from the node's CometBFT RPC.
func blockHashes(rpc string, lo, hi int64) (map[int64]string, map[int64]string, error) {
	blocks, apps := map[int64]string{}, map[int64]string{}
	for from := lo; from <= hi; from += 20 {
		to := min(from+19, hi)
		var r struct {
			Result struct {
				BlockMetas []blockMeta `json:"block_metas"`
			} `json:"result"`
		}
		code, err := getJSON(fmt.Sprintf("%s/blockchain?minHeight=%d&maxHeight=%d", rpc, from, to), &r)
		if err != nil {
			return nil, nil, err
		}
		if code != http.StatusOK {
			return nil, nil, fmt.Errorf("/blockchain %d-%d: HTTP %d", from, to, code)
		}
		for _, m := range r.Result.BlockMetas {
			var h int64
			fmt.Sscan(m.Header.Height, &h)
			blocks[h] = m.BlockID.Hash
			apps[h] = m.Header.AppHash
		}
	}
	return blocks, apps, nil
}

// ---------------------------------------------------------------------------
// Waiting and files

// poll calls cond every 100ms until it holds or d passes; it returns the
// last info and whether cond held.
func poll(d time.Duration, cond func() (bool, string)) (string, bool) {
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, info := cond()
		if info != "" {
			last = info
		}
		if ok {
			return last, true
		}
		if time.Now().After(deadline) {
			return last, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// panicked reports whether a log shows a Go panic.
func panicked(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && (bytes.Contains(b, []byte("panic:")) || bytes.Contains(b, []byte("goroutine ")))
}

var errStopped = errors.New("stopped")

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	return testnode.Environ("HOME="+e.userHome, "MEDCHAIN_KEYRING="+e.keyring, "MEDCHAIN_PASSPHRASE="+passphrase)
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

// freeBase picks a base port in 20000-32000, below Linux's ephemeral range
// (32768-60999) so that no outgoing connection can take a port a node or a
// proxy needs at its restart, such that, for each of n nodes,
// base+10i+0 … base+10i+width-1 are free on 127.0.0.1.
func freeBase(t *testing.T, n, width int) int {
	t.Helper()
	base, ok := testnode.FreeBase(20000, n, width, 1200)
	if !ok {
		t.Fatal("no free port range found in 20000-32000")
	}
	return base
}

var (
	portFree = testnode.PortFree
	addr     = testnode.Addr
)

// ---------------------------------------------------------------------------
// Node processes

// proc is one run of `medchain node`.
type proc struct{ *testnode.Proc }

// startNode starts `medchain node --home home`, appending its output to
// logPath.
func (e *env) startNode(name, home, logPath string) (*proc, error) {
	p, err := testnode.Start(bin, name, home, logPath, e.environ())
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

// kill9 SIGKILLs the process group and waits for it (10s at most).
func (p *proc) kill9() error {
	_ = p.Signal(syscall.SIGCONT) // a SIGSTOPped node
	return p.Kill()
}

// stop sends SIGTERM and wants a clean exit 0 within 30s.
func (p *proc) stop() error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !p.Wait(30 * time.Second) {
		_ = p.kill9()
		return fmt.Errorf("%s: no exit 30s after SIGTERM\n%s", p.Name, tailFile(p.Log, 30))
	}
	if p.Err() != nil {
		return fmt.Errorf("%s: after SIGTERM: %v (want exit 0)\n%s", p.Name, p.Err(), tailFile(p.Log, 30))
	}
	return nil
}

// ---------------------------------------------------------------------------
// HTTP

// status is GET /v1/status.
type status = testnode.Status

var httpClient = &http.Client{Timeout: 2 * time.Second}

// getJSON GETs url; it returns the HTTP status and decodes a 200's body.
func getJSON(url string, v any) (int, error) { return testnode.GetJSON(httpClient, 4<<20, url, v) }

func getStatus(api string) (status, error) { return testnode.GetStatus(httpClient, 4<<20, api) }

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

var (
	tail     = testnode.Tail
	tailFile = testnode.TailFile
)

// panicked reports whether a log shows a Go panic.
func panicked(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && testnode.Panicked(string(b))
}

var errStopped = errors.New("stopped")

package testnode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
)

// Addr is 127.0.0.1:p.
func Addr(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }

// PortFree reports whether TCP port p can be listened on at 127.0.0.1.
func PortFree(p int) bool {
	ln, err := net.Listen("tcp", Addr(p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

var (
	portMu   sync.Mutex
	usedBase = map[int]bool{}
)

// FreeBase picks a random base port lo+10k, k < slots-n, not handed out
// before, such that for each of n nodes the ports base+10i …
// base+10i+width-1 are free on 127.0.0.1. It tries 200 times. Suites that
// run at the same time (go test runs packages in parallel) must use
// disjoint ranges: one suite's node must never answer another's dial.
func FreeBase(lo, n, width, slots int) (int, bool) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		base := lo + 10*rand.IntN(slots-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			if usedBase[base+10*i] {
				ok = false
				break
			}
			for off := range width {
				if !PortFree(base + 10*i + off) {
					ok = false
					break
				}
			}
		}
		if ok {
			for i := range n {
				usedBase[base+10*i] = true
			}
			return base, true
		}
	}
	return 0, false
}

// Status is a node's GET /v1/status.
type Status struct {
	ChainID    string `json:"chain_id"`
	Height     int64  `json:"height"`
	NodeID     string `json:"node_id"`
	Validators int    `json:"validators"`
	AppHash    string `json:"app_hash"`
	Peers      int    `json:"peers"`
}

// GetJSON GETs url with c, reading at most limit bytes of body; it returns
// the HTTP status and decodes a 200's body into v.
func GetJSON(c *http.Client, limit int64, url string, v any) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
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

// GetStatus is GET api/v1/status, which must answer 200.
func GetStatus(c *http.Client, limit int64, api string) (Status, error) {
	var st Status
	code, err := GetJSON(c, limit, api+"/v1/status", &st)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/status: HTTP %d", code)
	}
	return st, err
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailFile is the last n lines of the file at path, or the error reading it.
func TailFile(path string, n int) string {
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

// Panicked reports whether output shows a Go panic or fatal error: the
// runtime writes "panic: " or "fatal error: ", then each goroutine's
// "goroutine N [...]:", at the start of a line. A panic a library recovered
// and logged is not a crash of the process: CometBFT's p2p layer turns a
// peer's unwanted message (an "unsolicited BlockResponse" after a restart)
// into a panic it recovers, logging "MConnection panicked" with the stack
// quoted inside one log line, and drops the peer.
func Panicked(output string) bool {
	for line := range strings.Lines(output) {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "goroutine ") {
			return true
		}
	}
	return false
}

package faults

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/medchain/medchain/keyring"
)

const validators = 4

// tnode is one validator of the testnet.
type tnode struct {
	idx                      int
	name, home, api, rpc, lg string
	p2pPort                  int
	id                       string // CometBFT node ID

	mu     sync.Mutex
	p      *proc
	paused bool
}

func (n *tnode) proc() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// live: running and not paused, so worth sending requests to.
func (n *tnode) live() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p != nil && n.p.Running() && !n.paused
}

// cluster is the 4-validator testnet behind its proxies.
type cluster struct {
	t     *testing.T
	e     *env
	prof  profile
	out   string
	nodes []*tnode
	links map[[2]int]*link
	ports map[int]int // real p2p port → node
	load  *load

	smu       sync.Mutex
	seen      []map[int64]string // stable (height → app hash) readings per node
	forks     map[int64]string   // heights at which nodes disagreed
	bypass    map[string]bool
	checkedTo int64 // block hashes compared up to here
	stopSamp  chan struct{}
	sampWG    sync.WaitGroup
}

// runResult is one perturbation run's outcome.
type runResult struct {
	acked, lost, forks, readErrs int
	resume, recover              time.Duration
	note                         string
}

// TestFaultsTestnet: a 4-validator network under load, every p2p link
// through a proxy, and one perturbation after another.
func TestFaultsTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("fault harness: runs four nodes; skipped with -short")
	}
	t.Parallel()
	began := time.Now()
	prof := currentProfile()
	budget := 150 * time.Second
	if prof.Name == "long" {
		budget = 40 * time.Minute
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl)-30*time.Second < budget {
		budget = time.Until(dl) - 30*time.Second
	}
	deadline := time.Now().Add(budget)
	c := newCluster(t, prof)
	t.Logf("profile %s; testnet in %s; budget %s", prof.Name, c.out, budget)

	c.startAll()
	c.waitFormed(90 * time.Second)
	c.checkBypass("after start")

	kr, err := keyring.Open(filepath.Join(c.out, "keyring"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kr.Load("admin", passphrase)
	if err != nil {
		t.Fatalf("load the testnet admin key: %v", err)
	}
	var apis []string
	for _, n := range c.nodes {
		apis = append(apis, n.api)
	}
	c.load = newLoad(t, apis, func(i int) bool { return c.nodes[i].live() }, admin)
	c.load.start(deadline, 3)
	t.Cleanup(c.load.halt)
	c.startSampler()

	// Warm up: a few acknowledged writes before the first perturbation.
	if _, ok := poll(30*time.Second, func() (bool, string) {
		a, _ := c.load.counts()
		return a >= 6, fmt.Sprintf("%d acknowledged", a)
	}); !ok {
		t.Fatalf("the load got no acknowledged writes in 30s: %s", c.load.failureSummary())
	}

	type kind struct {
		name string
		runs int
		run  func(r int) runResult
	}
	kinds := []kind{
		{"kill -9 + restart one", prof.Kill9Runs, c.kill9},
		{"SIGSTOP/SIGCONT one", prof.PauseRuns, c.pause},
		{"restart all (SIGTERM)", prof.RestartAllRuns, c.restartAll},
		{"partition 2|2, heal", prof.Split22Runs, c.split22},
		{"partition 3|1, heal", prof.Split31Runs, c.split31},
	}
	rows := make([]row, len(kinds))
	for i, k := range kinds {
		rows[i] = row{Test: "TestFaultsTestnet", Perturbation: k.name, BoundMS: prof.Recover.Milliseconds()}
	}
	var notes = make([][]string, len(kinds))
	outOfTime := false
	for r := 0; !outOfTime; r++ {
		more := false
		for i, k := range kinds {
			if r >= k.runs {
				continue
			}
			more = true
			if time.Now().Add(60 * time.Second).After(deadline) {
				t.Errorf("out of time budget before %s run %d", k.name, r+1)
				outOfTime = true
				break
			}
			name := fmt.Sprintf("%s #%d", k.name, r+1)
			c.load.setPhase(name)
			a0, re0 := c.load.counts()
			t0 := time.Now()
			res := k.run(r)
			a1, re1 := c.load.counts()
			res.acked, res.readErrs = a1-a0, re1-re0
			t.Logf("%s: %s; resume %s, recover %s, %d acknowledged, %d lost, %d forks, %d reader errors; %s",
				name, time.Since(t0).Round(time.Millisecond), res.resume.Round(time.Millisecond), res.recover.Round(time.Millisecond),
				res.acked, res.lost, res.forks, res.readErrs, res.note)
			rw := &rows[i]
			rw.Runs++
			rw.Acked += res.acked
			rw.Lost += res.lost
			rw.Forks += res.forks
			rw.ReadErrors += res.readErrs
			rw.ResumeMS = append(rw.ResumeMS, res.resume.Milliseconds())
			rw.RecoverMS = append(rw.RecoverMS, res.recover.Milliseconds())
			rw.RecoverMaxMS = max(rw.RecoverMaxMS, res.recover.Milliseconds())
			if res.note != "" {
				notes[i] = append(notes[i], res.note)
			}
		}
		if !more || t.Failed() {
			break
		}
	}
	for i := range rows {
		rows[i].Notes = strings.Join(notes[i], "; ")
	}

	// Wind down: stop the load, check everything one last time, stop every
	// node cleanly and verify every home offline.
	c.load.setPhase("final")
	c.load.halt()
	c.stopSampler()
	lost, msgs := c.load.checkAll(c.all(), 60*time.Second)
	for _, m := range msgs {
		t.Errorf("final check: %s", m)
	}
	forks := c.compareBlocks()
	c.smu.Lock()
	forks += len(c.forks)
	for h, m := range c.forks {
		t.Errorf("fork at height %d: %s", h, m)
	}
	var bypass []string
	for b := range c.bypass {
		bypass = append(bypass, b)
	}
	c.smu.Unlock()
	c.load.mu.Lock()
	for _, m := range c.load.readLog {
		t.Errorf("%s", m)
	}
	c.load.mu.Unlock()
	t.Logf("load: %s", c.load.failureSummary())
	selfDials := 0
	for _, l := range c.links {
		l.mu.Lock()
		selfDials += l.selfDials
		l.mu.Unlock()
	}
	if selfDials > 0 {
		t.Logf("NOTE: %d times a node dialed itself through another node's proxy port (its own ID at that address, learned through PEX); refused in the handshake", selfDials)
	}
	if len(bypass) > 0 {
		sort.Strings(bypass)
		t.Errorf("p2p traffic bypassed the proxies (PEX learned real addresses):\n%s", strings.Join(bypass, "\n"))
	}

	var stopErrs []string
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.proc().stop(); err != nil {
				emu.Lock()
				stopErrs = append(stopErrs, err.Error())
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, m := range stopErrs {
		t.Errorf("final SIGTERM: %s", m)
	}
	for _, n := range c.nodes { // written at a clean stop
		own := map[int]bool{}
		for _, l := range c.links {
			if l.From == n.idx {
				own[l.ln.Addr().(*net.TCPAddr).Port] = true
			}
		}
		entries, self, leaks, err := addrBookLeaks(n.home, n.id, own)
		switch {
		case err != nil:
			t.Logf("%s's address book: %v", n.name, err)
		case len(leaks) > 0:
			// Not a verdict by itself: the live check (checkBypass) fails the
			// run if such a route was used.
			t.Logf("WARNING: %s's address book holds other nodes at addresses other than its own proxies (learned through PEX; a route around a partition): %s", n.name, strings.Join(leaks, ", "))
		default:
			t.Logf("%s's address book: %d entries, none a route around its proxies; %d are its own ID at another node's proxy port, learned through PEX (%s)",
				n.name, entries, len(self), strings.Join(self, ", "))
		}
	}
	verified := 0
	for _, n := range c.nodes {
		v, err := c.e.json("verify", "--home", n.home)
		if err != nil {
			t.Errorf("verify %s: %v", n.name, err)
			continue
		}
		if v["ok"] != true {
			t.Errorf("verify %s: %v", n.name, v)
			continue
		}
		verified++
		t.Logf("verify %s: %v", n.name, v)
	}
	for _, n := range c.nodes {
		if panicked(n.lg) {
			t.Errorf("%s's log shows a panic:\n%s", n.name, tailFile(n.lg, 40))
		}
	}
	acked, _ := c.load.counts()
	rows = append(rows, row{Test: "TestFaultsTestnet", Perturbation: "final (all runs)", Runs: 1, Acked: acked, Lost: lost, Forks: forks,
		Notes: fmt.Sprintf("verify ok on %d/%d homes; %s", verified, validators, c.load.failureSummary())})
	addRows(rows...)
	setDuration("TestFaultsTestnet", time.Since(began))
	t.Logf("summary (profile %s, %s):%s", prof.Name, time.Since(began).Round(time.Second), table(rows))
}

// newCluster writes the testnet and rewires every p2p link through a
// proxy: node i reaches node j at base+10i+3+k, which forwards to node j's
// real p2p port base+10j.
func newCluster(t *testing.T, prof profile) *cluster {
	dir := t.TempDir()
	c := &cluster{t: t, e: newEnv(t, dir), prof: prof, out: filepath.Join(dir, "net"),
		links: map[[2]int]*link{}, ports: map[int]int{}, forks: map[int64]string{}, bypass: map[string]bool{},
		stopSamp: make(chan struct{})}
	base := freeBase(t, validators, 3+validators-1)
	if _, err := c.e.json("testnet", "--validators", strconv.Itoa(validators), "--out", c.out, "--base-port", strconv.Itoa(base)); err != nil {
		t.Fatal(err)
	}
	for i := range validators {
		n := &tnode{idx: i, name: fmt.Sprintf("node%d", i), home: filepath.Join(c.out, fmt.Sprintf("node%d", i)),
			api: "http://" + addr(base+10*i+2), rpc: "http://" + addr(base+10*i+1), p2pPort: base + 10*i,
			lg: filepath.Join(dir, fmt.Sprintf("node%d.log", i))}
		c.nodes = append(c.nodes, n)
		c.ports[n.p2pPort] = i
	}
	for i, n := range c.nodes {
		path := filepath.Join(n.home, "medchain.json")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any // keep every field, change only "peers" and "pex"
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want := addr(n.p2pPort); cfg["p2p_addr"] != want {
			t.Fatalf("%s: p2p_addr %v, want %s", path, cfg["p2p_addr"], want)
		}
		peers, _ := cfg["peers"].(string)
		var rewritten []string
		k := 0
		for _, p := range strings.Split(peers, ",") {
			id, hostport, ok := strings.Cut(strings.TrimSpace(p), "@")
			if !ok {
				t.Fatalf("%s: peer %q is not id@host:port", path, p)
			}
			_, port, _ := strings.Cut(hostport, ":")
			pn, _ := strconv.Atoi(port)
			j, ok := c.ports[pn]
			if !ok || j == i {
				t.Fatalf("%s: peer %q is not another node's p2p port", path, p)
			}
			listen := addr(base + 10*i + 3 + k)
			k++
			l, err := newLink(i, j, listen, addr(c.nodes[j].p2pPort), c.socketOwner)
			if err != nil {
				t.Fatal(err)
			}
			c.nodes[j].id = id
			c.links[[2]int{i, j}] = l
			rewritten = append(rewritten, id+"@"+listen)
		}
		if len(rewritten) != validators-1 {
			t.Fatalf("%s: %d peers, want %d", path, len(rewritten), validators-1)
		}
		cfg["peers"] = strings.Join(rewritten, ",")
		// Peer exchange off: CometBFT's PEX puts an inbound peer's own
		// listen address (its real port, not the proxy it came through)
		// in the address book, and after a restart a node may dial it,
		// around the proxies and any partition they make (seen once in
		// CI). The detector below still fails the run on any such route.
		cfg["pex"] = false
		nb, _ := json.MarshalIndent(cfg, "", "  ")
		if err := os.WriteFile(path, append(nb, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for range validators {
		c.seen = append(c.seen, map[int64]string{})
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if p := n.proc(); p != nil {
				_ = p.kill9()
			}
		}
		for _, l := range c.links {
			l.Close()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("--- tail of %s (%s):\n%s", n.name, n.lg, tailFile(n.lg, 25))
			}
		}
	})
	return c
}

func (c *cluster) all() []int {
	out := make([]int, len(c.nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

func (c *cluster) start(n *tnode) {
	p, err := c.e.startNode(n.name, n.home, n.lg)
	if err != nil {
		c.t.Fatal(err)
	}
	n.mu.Lock()
	n.p, n.paused = p, false
	n.mu.Unlock()
}

func (c *cluster) startAll() {
	for _, n := range c.nodes {
		c.start(n)
	}
}

// waitFormed waits until every node answers at one height ≥ 2 with all
// three others as peers.
func (c *cluster) waitFormed(d time.Duration) {
	info, ok := poll(d, func() (bool, string) {
		var info string
		good := true
		for _, n := range c.nodes {
			if p := n.proc(); !p.Running() {
				c.t.Fatalf("%s exited: %v\n%s", n.name, p.Err(), tailFile(n.lg, 30))
			}
			st, err := getStatus(n.api)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", n.name, err)
			}
			info += fmt.Sprintf("%s h=%d peers=%d; ", n.name, st.Height, st.Peers)
			good = good && st.Height >= 2 && st.Peers == validators-1 && st.Validators == validators
		}
		return good, info
	})
	if !ok {
		c.t.Fatalf("testnet did not form in %s: %s", d, info)
	}
}

// heights returns each node's height, -1 where it does not answer.
func (c *cluster) heights() []int64 {
	hs := make([]int64, len(c.nodes))
	for i, n := range c.nodes {
		hs[i] = -1
		if !n.live() {
			continue
		}
		if st, err := getStatus(n.api); err == nil {
			hs[i] = st.Height
		}
	}
	return hs
}

func maxOf(hs []int64, only []int) int64 {
	m := int64(-1)
	for _, i := range only {
		m = max(m, hs[i])
	}
	return m
}

func minOf(hs []int64, only []int) int64 {
	m := int64(1 << 62)
	for _, i := range only {
		m = min(m, hs[i])
	}
	return m
}

func others(k int) []int {
	var out []int
	for i := range validators {
		if i != k {
			out = append(out, i)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Sampler: stable app-hash readings, and the bypass detector.

func (c *cluster) startSampler() {
	c.sampWG.Add(1)
	go func() {
		defer c.sampWG.Done()
		tick := 0
		for {
			select {
			case <-c.stopSamp:
				return
			case <-time.After(200 * time.Millisecond):
			}
			for i, n := range c.nodes {
				if n.live() {
					if st, ok := stableStatus(n.api); ok {
						c.record(i, st)
					}
				}
			}
			if tick++; tick%10 == 0 {
				c.checkBypass("")
			}
		}
	}()
}

func (c *cluster) stopSampler() {
	select {
	case <-c.stopSamp:
	default:
		close(c.stopSamp)
	}
	c.sampWG.Wait()
}

// record keeps a stable reading and compares it with the other nodes'.
func (c *cluster) record(i int, st status) {
	c.smu.Lock()
	defer c.smu.Unlock()
	c.seen[i][st.Height] = st.AppHash
	for j := range c.seen {
		if h, ok := c.seen[j][st.Height]; ok && j != i && h != st.AppHash {
			if _, dup := c.forks[st.Height]; !dup {
				c.forks[st.Height] = fmt.Sprintf("app hash node%d %s, node%d %s", i, st.AppHash, j, h)
				c.t.Errorf("FORK: at height %d %s", st.Height, c.forks[st.Height])
			}
		}
	}
}

func (c *cluster) forkCount() int {
	c.smu.Lock()
	defer c.smu.Unlock()
	return len(c.forks)
}

// socketOwner returns the node whose process holds the client socket
// 127.0.0.1:clientPort → listenPort, or -1.
func (c *cluster) socketOwner(clientPort, listenPort int) int {
	inode := socketInode(clientPort, listenPort)
	if inode == "" {
		return -1
	}
	for i, n := range c.nodes {
		if p := n.proc(); p != nil && p.Running() && pidOwns(p.Cmd.Process.Pid, inode) {
			return i
		}
	}
	return -1
}

// checkBypass records node-to-node p2p connections that do not go through
// the proxies.
func (c *cluster) checkBypass(when string) []string {
	d, err := directConns(c.ports)
	if err != nil {
		c.t.Logf("bypass check: %v", err)
		return nil
	}
	for _, l := range c.links {
		l.mu.Lock()
		d = append(d, l.misroute...)
		l.mu.Unlock()
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	for _, s := range d {
		if !c.bypass[s] {
			c.bypass[s] = true
			c.t.Logf("BYPASS %s: %s", when, s)
		}
	}
	return d
}

// agree waits until every node has a stable reading above h at a height
// node0 also has, with the same app hash (mismatches are forks, recorded).
func (c *cluster) agree(h int64, d time.Duration) bool {
	_, ok := poll(d, func() (bool, string) {
		c.smu.Lock()
		defer c.smu.Unlock()
		for i := 1; i < len(c.seen); i++ {
			found := false
			for hh := range c.seen[i] {
				if _, ok := c.seen[0][hh]; ok && hh > h {
					found = true
					break
				}
			}
			if !found {
				return false, ""
			}
		}
		return true, ""
	})
	return ok
}

// compareBlocks compares block hashes and header app hashes at every height
// every node has and that was not compared yet; it returns the number of
// heights where they differ.
func (c *cluster) compareBlocks() int {
	hs := make([]int64, len(c.nodes))
	for i, n := range c.nodes {
		st, err := getStatus(n.api)
		if err != nil {
			c.t.Errorf("compare blocks: %s: %v", n.name, err)
			return 0
		}
		hs[i] = st.Height
	}
	hi := minOf(hs, c.all())
	lo := c.checkedTo + 1
	if hi < lo {
		return 0
	}
	var blocks, apps []map[int64]string
	for _, n := range c.nodes {
		b, a, err := blockHashes(n.rpc, lo, hi)
		if err != nil {
			c.t.Errorf("compare blocks: %s: %v", n.name, err)
			return 0
		}
		blocks, apps = append(blocks, b), append(apps, a)
	}
	forks := 0
	for h := lo; h <= hi; h++ {
		for i := 1; i < len(c.nodes); i++ {
			if blocks[i][h] == "" || blocks[0][h] == "" {
				c.t.Errorf("compare blocks: height %d missing on node0 or node%d", h, i)
				continue
			}
			if blocks[i][h] != blocks[0][h] || apps[i][h] != apps[0][h] {
				forks++
				c.t.Errorf("FORK at height %d: node0 block %s app %s, node%d block %s app %s", h, blocks[0][h], apps[0][h], i, blocks[i][h], apps[i][h])
				break
			}
		}
	}
	c.checkedTo = hi
	return forks
}

// ---------------------------------------------------------------------------
// After each perturbation

// settle measures recovery from endAt (the moment the perturbation ended)
// with hEnd the highest height any node had then: resume is the first new
// commit anywhere, recover is every node past hEnd. Then it checks every
// acknowledged write at every node, app-hash agreement and block hashes.
func (c *cluster) settle(res *runResult, endAt time.Time, hEnd int64) {
	var resumed time.Time
	info, ok := poll(c.prof.Recover, func() (bool, string) {
		hs := c.heights()
		if resumed.IsZero() && maxOf(hs, c.all()) > hEnd {
			resumed = time.Now()
		}
		return minOf(hs, c.all()) > hEnd, fmt.Sprintf("heights %v, end height %d", hs, hEnd)
	})
	if !resumed.IsZero() {
		res.resume = resumed.Sub(endAt)
	}
	res.recover = time.Since(endAt)
	if !ok {
		c.t.Fatalf("no recovery within the bound %s: %s\nload: %s", c.prof.Recover, info, c.load.failureSummary())
	}
	f0 := c.forkCount()
	lost, msgs := c.load.checkAll(c.all(), 30*time.Second)
	res.lost = lost
	for _, m := range msgs {
		c.t.Errorf("after %s: %s", c.load.currentPhase(), m)
	}
	if !c.agree(hEnd, 20*time.Second) {
		c.t.Errorf("nodes did not share a stable app-hash reading above height %d within 20s", hEnd)
	}
	res.forks = c.forkCount() - f0 + c.compareBlocks()
}

// ---------------------------------------------------------------------------
// Perturbations

// majorityCommit waits (20s at most) until a node other than k commits
// above what the others had in from; it returns how long that took from t0.
func (c *cluster) majorityCommit(k int, from []int64, t0 time.Time) (time.Duration, bool) {
	top := maxOf(from, others(k))
	_, ok := poll(20*time.Second, func() (bool, string) {
		return maxOf(c.heights(), others(k)) > top, ""
	})
	return time.Since(t0), ok
}

// kill9 kills one validator with SIGKILL, keeps it down for prof.Down and
// at least until the other three have committed, and restarts it.
func (c *cluster) kill9(r int) runResult {
	var res runResult
	k := (r + 1) % validators
	n := c.nodes[k]
	hs := c.heights()
	t0 := time.Now()
	if err := n.proc().kill9(); err != nil {
		c.t.Fatal(err)
	}
	took, ok := c.majorityCommit(k, hs, t0)
	time.Sleep(time.Until(t0.Add(c.prof.Down)))
	after := c.heights()
	if !ok {
		c.t.Errorf("kill -9 %s: the other three did not commit within 20s (heights %v → %v)", n.name, hs, after)
	}
	res.note = fmt.Sprintf("%s down %s; the other three committed after %s, +%d heights while it was down",
		n.name, time.Since(t0).Round(100*time.Millisecond), took.Round(time.Millisecond), maxOf(after, others(k))-maxOf(hs, others(k)))
	c.start(n)
	c.settle(&res, time.Now(), maxOf(c.heights(), c.all()))
	return res
}

// pause SIGSTOPs one validator for prof.Pause and at least until the other
// three have committed, then SIGCONTs it.
func (c *cluster) pause(r int) runResult {
	var res runResult
	k := (r + 2) % validators
	n := c.nodes[k]
	hs := c.heights()
	t0 := time.Now()
	if err := n.proc().Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
	took, ok := c.majorityCommit(k, hs, t0)
	time.Sleep(time.Until(t0.Add(c.prof.Pause)))
	after := c.heights()
	if err := n.proc().Signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
	endAt := time.Now()
	if !ok {
		c.t.Errorf("SIGSTOP %s: the other three did not commit within 20s (heights %v → %v)", n.name, hs, after)
	}
	res.note = fmt.Sprintf("%s stopped %s; the other three committed after %s, +%d heights while it was stopped",
		n.name, endAt.Sub(t0).Round(100*time.Millisecond), took.Round(time.Millisecond), maxOf(after, others(k))-maxOf(hs, others(k)))
	c.settle(&res, endAt, maxOf(c.heights(), c.all()))
	return res
}

func (c *cluster) restartAll(int) runResult {
	var res runResult
	hEnd := maxOf(c.heights(), c.all())
	t0 := time.Now()
	for _, n := range c.nodes { // SIGTERM all at once …
		n.mu.Lock()
		n.paused = true // no requests while going down
		n.mu.Unlock()
		if err := n.proc().Signal(syscall.SIGTERM); err != nil {
			c.t.Errorf("SIGTERM %s: %v", n.name, err)
		}
	}
	for _, n := range c.nodes { // … then wait for each
		p := n.proc()
		select {
		case <-p.Done():
			if p.Err() != nil {
				c.t.Errorf("%s after SIGTERM: %v (want exit 0)\n%s", n.name, p.Err(), tailFile(n.lg, 20))
			}
		case <-time.After(30 * time.Second):
			c.t.Errorf("%s: no exit 30s after SIGTERM\n%s", n.name, tailFile(n.lg, 20))
			_ = p.kill9()
		}
	}
	down := time.Since(t0)
	c.startAll()
	res.note = fmt.Sprintf("all stopped in %s", down.Round(time.Millisecond))
	c.settle(&res, time.Now(), hEnd)
	return res
}

func (c *cluster) cut(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			c.links[[2]int{i, j}].Cut()
			c.links[[2]int{j, i}].Cut()
		}
	}
}

func (c *cluster) healAll() {
	for _, l := range c.links {
		l.Heal()
	}
}

func (c *cluster) peers() string {
	var s []string
	for _, n := range c.nodes {
		st, err := getStatus(n.api)
		if err != nil {
			s = append(s, n.name+"=?")
		} else {
			s = append(s, fmt.Sprintf("%s=%d", n.name, st.Peers))
		}
	}
	return strings.Join(s, " ")
}

func (c *cluster) split22(r int) runResult {
	var res runResult
	a, b := []int{0, 1}, []int{2, 3}
	if r%2 == 1 {
		a, b = []int{0, 2}, []int{1, 3}
	}
	c.cut(a, b)
	time.Sleep(2 * time.Second) // a block already voted on may still land
	if d := c.checkBypass(fmt.Sprintf("during 2|2 %v|%v", a, b)); len(d) > 0 {
		c.t.Errorf("2|2 %v|%v: %d direct node-to-node connections bypass the proxy", a, b, len(d))
	}
	frozen := c.heights()
	peers := c.peers()
	var moved string
	_, advanced := poll(c.prof.Stall, func() (bool, string) {
		hs := c.heights()
		for i := range hs {
			if hs[i] > frozen[i] && frozen[i] >= 0 {
				moved = fmt.Sprintf("node%d %d → %d", i, frozen[i], hs[i])
				return true, ""
			}
		}
		return false, ""
	})
	if advanced {
		c.t.Errorf("2|2 %v|%v: commits did not stop: %s (peers %s)", a, b, moved, peers)
	} else {
		res.note = fmt.Sprintf("%v|%v: heights %v frozen %s (peers %s)", a, b, frozen, c.prof.Stall, peers)
	}
	hEnd := maxOf(c.heights(), c.all())
	c.healAll()
	c.settle(&res, time.Now(), hEnd)
	return res
}

func (c *cluster) split31(r int) runResult {
	var res runResult
	k := []int{3, 1, 0, 2}[r%validators]
	maj := others(k)
	c.cut([]int{k}, maj)
	time.Sleep(1 * time.Second)
	if d := c.checkBypass(fmt.Sprintf("during 3|1 (node%d alone)", k)); len(d) > 0 {
		c.t.Errorf("3|1: %d direct node-to-node connections bypass the proxy", len(d))
	}
	before := c.heights()
	t0 := time.Now()
	// The majority must commit at least two heights: within the window,
	// which is extended by up to 15s for that.
	_, ok := poll(c.prof.Minority+15*time.Second, func() (bool, string) {
		return time.Since(t0) >= c.prof.Minority && minOf(c.heights(), maj)-maxOf(before, maj) >= 2, ""
	})
	after := c.heights()
	peers := c.peers()
	adv := minOf(after, maj) - maxOf(before, maj)
	if !ok {
		c.t.Errorf("3|1: the majority %v did not keep committing: heights %v → %v", maj, before, after)
	}
	if after[k] > before[k] {
		c.t.Errorf("3|1: the isolated node%d committed alone: %d → %d", k, before[k], after[k])
	}
	res.note = fmt.Sprintf("node%d alone %s: majority +%d heights, minority +%d (peers %s)", k, time.Since(t0).Round(100*time.Millisecond), adv, after[k]-before[k], peers)
	hEnd := maxOf(c.heights(), c.all())
	c.healAll()
	c.settle(&res, time.Now(), hEnd)
	return res
}

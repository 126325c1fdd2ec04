package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medchain/medchain/keyring"
)

// TestCrashConsistency: one node under a steady writer, killed with
// SIGKILL at random moments (seeded; the seed is logged) and restarted each
// time. Nothing acknowledged may be lost, the node must always come back,
// history must not change, and `medchain verify` must pass at the end.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("fault harness: kills a node repeatedly; skipped with -short")
	}
	t.Parallel()
	began := time.Now()
	prof := currentProfile()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MEDCHAIN_FAULTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MEDCHAIN_FAULTS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("crash loop: profile %s, %d kills, seed %d (replay the schedule with MEDCHAIN_FAULTS_SEED=%d)", prof.Name, prof.CrashKills, seed, seed)
	repMu.Lock()
	report.Seed = seed
	repMu.Unlock()
	rng := rand.New(rand.NewPCG(seed, 0x6d656463))

	dir := t.TempDir()
	e := newEnv(t, dir)
	home := filepath.Join(dir, "home")
	lg := filepath.Join(dir, "node.log")
	base := freeBase(t, 1, 3)
	api, rpc := "http://"+addr(base+2), "http://"+addr(base+1)
	if _, err := e.json("init", "--home", home, "--p2p-addr", addr(base), "--rpc-addr", addr(base+1), "--api-addr", addr(base+2)); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Open(e.keyring)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kr.Load("admin", passphrase)
	if err != nil {
		t.Fatalf("load admin key: %v", err)
	}

	var p atomic.Pointer[proc]
	var up atomic.Bool
	t.Cleanup(func() {
		if q := p.Load(); q != nil {
			_ = q.kill9()
		}
		if t.Failed() {
			t.Logf("--- tail of the node's log (%s):\n%s", lg, tailFile(lg, 30))
		}
	})
	// start starts the node and waits until its API answers (60s at most);
	// it returns the time from start to the first reading above height
	// `above`: the first new commit.
	start := func(above int64) time.Duration {
		t.Helper()
		t0 := time.Now()
		q, err := e.startNode("node", home, lg)
		if err != nil {
			t.Fatal(err)
		}
		p.Store(q)
		info, ok := poll(60*time.Second, func() (bool, string) {
			if !q.Running() {
				t.Fatalf("the node did not restart: exited %v\n%s", q.Err(), tailFile(lg, 40))
			}
			st, err := getStatus(api)
			if err != nil {
				return false, err.Error()
			}
			return st.Height > above, fmt.Sprintf("height %d", st.Height)
		})
		if !ok {
			t.Fatalf("the node did not commit above height %d within 60s of its start: %s\n%s", above, info, tailFile(lg, 40))
		}
		up.Store(true)
		return time.Since(t0)
	}
	start(0)

	l := newLoad(t, []string{api}, func(int) bool { return up.Load() }, admin)
	l.timeout = 5 * time.Second
	l.pace = 20 * time.Millisecond
	budget := 100 * time.Second
	if prof.Name == "long" {
		budget = 30 * time.Minute
	}
	l.start(time.Now().Add(budget), 3)
	t.Cleanup(l.halt)

	blocks := map[int64]string{} // height → block hash, as first seen
	forks := 0
	checkHistory := func() {
		t.Helper()
		st, err := getStatus(api)
		if err != nil {
			t.Errorf("status: %v", err)
			return
		}
		got, _, err := blockHashes(rpc, 1, st.Height)
		if err != nil {
			t.Errorf("block hashes: %v", err)
			return
		}
		for h, hash := range got {
			if old, ok := blocks[h]; ok && old != hash {
				forks++
				t.Errorf("history changed across a crash: block %d was %s, now %s", h, old, hash)
			}
			blocks[h] = hash
		}
	}

	rw := row{Test: "TestCrashConsistency", Perturbation: "kill -9 single node (crash loop)", BoundMS: (60 * time.Second).Milliseconds()}
	for k := 1; k <= prof.CrashKills; k++ {
		// Writes must be flowing: wait for a new acknowledgement.
		a0, _ := l.counts()
		if info, ok := poll(30*time.Second, func() (bool, string) {
			a, _ := l.counts()
			return a > a0, l.failureSummary()
		}); !ok {
			t.Fatalf("kill %d: no write acknowledged in 30s since the restart: %s", k, info)
		}
		gap := prof.CrashMinGap + time.Duration(rng.Int64N(int64(prof.CrashMaxGap-prof.CrashMinGap)))
		time.Sleep(gap)
		st, _ := getStatus(api)
		up.Store(false)
		if err := p.Load().kill9(); err != nil {
			t.Fatal(err)
		}
		before, _ := l.counts()
		rec := start(st.Height)
		lost, msgs := l.checkAll([]int{0}, 30*time.Second)
		for _, m := range msgs {
			t.Errorf("after kill %d: %s", k, m)
		}
		checkHistory()
		t.Logf("kill %d/%d after %s at height %d: %d acknowledged so far, back and committing in %s, %d lost",
			k, prof.CrashKills, gap.Round(time.Millisecond), st.Height, before, rec.Round(time.Millisecond), lost)
		rw.Runs++
		rw.Lost = max(rw.Lost, lost) // lost is cumulative over all acknowledged writes
		rw.ResumeMS = append(rw.ResumeMS, rec.Milliseconds())
		rw.RecoverMS = append(rw.RecoverMS, rec.Milliseconds())
		rw.RecoverMaxMS = max(rw.RecoverMaxMS, rec.Milliseconds())
		if t.Failed() {
			break
		}
	}
	l.halt()
	lost, msgs := l.checkAll([]int{0}, 30*time.Second)
	for _, m := range msgs {
		t.Errorf("final check: %s", m)
	}
	rw.Lost = max(rw.Lost, lost)
	checkHistory()
	rw.Forks = forks
	rw.Acked, rw.ReadErrors = l.counts()
	l.mu.Lock()
	for _, m := range l.readLog {
		t.Errorf("%s", m)
	}
	l.mu.Unlock()
	if err := p.Load().stop(); err != nil {
		t.Errorf("final SIGTERM: %v", err)
	}
	v, err := e.json("verify", "--home", home)
	switch {
	case err != nil:
		t.Errorf("verify: %v", err)
	case v["ok"] != true:
		t.Errorf("verify: %v", v)
	default:
		t.Logf("verify: %v", v)
	}
	if panicked(lg) {
		t.Errorf("the node's log shows a panic:\n%s", tailFile(lg, 40))
	}
	rw.Notes = fmt.Sprintf("seed %d; verify ok=%v; %s", seed, err == nil && v["ok"] == true, l.failureSummary())
	addRows(rw)
	setDuration("TestCrashConsistency", time.Since(began))
	t.Logf("summary (profile %s, %s):%s", prof.Name, time.Since(began).Round(time.Second), table([]row{rw}))
}

// Package faults is medchain's multi-process fault harness (issue 5): it
// runs the real binary on 127.0.0.1, a 4-validator network whose every p2p
// link goes through an in-process TCP proxy, under a steady bounded write
// and read load, and applies perturbations one after another (kill -9,
// SIGSTOP/SIGCONT, restart all, 2|2 and 3|1 partitions); and it kills a
// single node at random moments during writes. After each perturbation it
// checks that every acknowledged write is readable at every node, that the
// nodes agree on the app hash and the block hash at every height, and that
// the network resumes within a stated bound.
//
//	go test ./faults/                                   # short profile (CI, ~3 min)
//	MEDCHAIN_FAULTS=long go test -timeout 60m ./faults/  # long profile
//	MEDCHAIN_FAULTS_REPORT=out.json                      # also write the summary as JSON
//	MEDCHAIN_FAULTS_SEED=N                               # replay a crash-loop schedule
//
// Everything is skipped under -short.
package faults

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medchain/medchain/internal/testnode"
)

// bin is the medchain binary TestMain builds.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	b, dir, err := testnode.Build("medchain-faults-bin-")
	if dir != "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	bin = b
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: report:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// ---------------------------------------------------------------------------
// Profiles

// profile sizes a run. The short one fits CI (~3 minutes for the package);
// the long one is MEDCHAIN_FAULTS=long.
type profile struct {
	Name string `json:"name"`
	// Testnet perturbation runs.
	Kill9Runs, PauseRuns, RestartAllRuns, Split22Runs, Split31Runs int
	Down                                                           time.Duration // how long a kill -9'd validator stays down
	Pause                                                          time.Duration // how long a validator stays SIGSTOPped
	Stall                                                          time.Duration // 2|2: heights must not move for this long
	Minority                                                       time.Duration // 3|1: how long the minority stays cut off
	// Recover bounds the time from the end of a perturbation until every
	// node has committed a new block: the stated resumption bound.
	Recover time.Duration
	// Crash-consistency loop.
	CrashKills               int
	CrashMinGap, CrashMaxGap time.Duration // random delay before each kill
}

// MarshalJSON spells the durations as "3s".
func (p profile) MarshalJSON() ([]byte, error) {
	type plain profile
	m := map[string]any{}
	b, _ := json.Marshal(plain(p))
	_ = json.Unmarshal(b, &m)
	for k, d := range map[string]time.Duration{"Down": p.Down, "Pause": p.Pause, "Stall": p.Stall, "Minority": p.Minority,
		"Recover": p.Recover, "CrashMinGap": p.CrashMinGap, "CrashMaxGap": p.CrashMaxGap} {
		m[k] = d.String()
	}
	return json.Marshal(m)
}

func currentProfile() profile {
	if strings.EqualFold(os.Getenv("MEDCHAIN_FAULTS"), "long") {
		return profile{Name: "long",
			Kill9Runs: 4, PauseRuns: 2, RestartAllRuns: 2, Split22Runs: 2, Split31Runs: 2,
			Down: 10 * time.Second, Pause: 10 * time.Second, Stall: 15 * time.Second, Minority: 20 * time.Second,
			Recover:    30 * time.Second,
			CrashKills: 20, CrashMinGap: 200 * time.Millisecond, CrashMaxGap: 4 * time.Second,
		}
	}
	return profile{Name: "short",
		Kill9Runs: 1, PauseRuns: 1, RestartAllRuns: 1, Split22Runs: 1, Split31Runs: 1,
		Down: 3 * time.Second, Pause: 4 * time.Second, Stall: 5 * time.Second, Minority: 6 * time.Second,
		Recover:    30 * time.Second,
		CrashKills: 5, CrashMinGap: 200 * time.Millisecond, CrashMaxGap: 2 * time.Second,
	}
}

// ---------------------------------------------------------------------------
// Report

// row is one line of the summary table.
type row struct {
	Test         string  `json:"test"`
	Perturbation string  `json:"perturbation"`
	Runs         int     `json:"runs"`
	Acked        int     `json:"writes_acknowledged"`
	Lost         int     `json:"writes_lost"`
	Forks        int     `json:"forks"`
	ReadErrors   int     `json:"read_errors"`
	ResumeMS     []int64 `json:"resume_ms"`  // first new commit after the perturbation ends
	RecoverMS    []int64 `json:"recover_ms"` // every node has committed past the pre-end height
	RecoverMaxMS int64   `json:"recover_max_ms"`
	BoundMS      int64   `json:"bound_ms"`
	Notes        string  `json:"notes,omitempty"`
}

type reportDoc struct {
	Profile   profile           `json:"profile"`
	Started   time.Time         `json:"started"`
	Finished  time.Time         `json:"finished"`
	Seed      uint64            `json:"crash_seed,omitempty"`
	Rows      []row             `json:"rows"`
	Durations map[string]string `json:"durations"`
}

var (
	repMu  sync.Mutex
	report = reportDoc{Profile: currentProfile(), Started: time.Now(), Durations: map[string]string{}}
)

func addRows(rows ...row) {
	repMu.Lock()
	defer repMu.Unlock()
	report.Rows = append(report.Rows, rows...)
}

func setDuration(test string, d time.Duration) {
	repMu.Lock()
	defer repMu.Unlock()
	report.Durations[test] = d.Round(time.Millisecond).String()
}

// writeReport writes the JSON summary to $MEDCHAIN_FAULTS_REPORT, if set.
func writeReport() error {
	path := os.Getenv("MEDCHAIN_FAULTS_REPORT")
	if path == "" {
		return nil
	}
	repMu.Lock()
	defer repMu.Unlock()
	report.Finished = time.Now()
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// table renders rows as the summary table.
func table(rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-34s %4s %6s %5s %5s %9s  %-22s %s\n", "perturbation", "runs", "acked", "lost", "forks", "read-errs", "resume/recover max", "bound")
	for _, r := range rows {
		var resume int64
		for _, v := range r.ResumeMS {
			resume = max(resume, v)
		}
		times, bound := fmt.Sprintf("%s / %s", ms(resume), ms(r.RecoverMaxMS)), ms(r.BoundMS)
		if len(r.RecoverMS) == 0 {
			times, bound = "-", "-"
		}
		fmt.Fprintf(&b, "%-34s %4d %6d %5d %5d %9d  %-22s %s\n", r.Perturbation, r.Runs, r.Acked, r.Lost, r.Forks, r.ReadErrors, times, bound)
	}
	return b.String()
}

func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }

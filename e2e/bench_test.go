package e2e

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBench runs `medchain bench` on a small workload, end to end: one
// JSON object with every figure issue 4 names, each a positive number, and
// bad flag values refused as usage errors before anything starts.
func TestBench(t *testing.T) {
	e := newEnv(t)
	base := freeBase(t, 10) // the bench's nodes and baseline use base…base+99
	traceFile := filepath.Join(t.TempDir(), "reads.trace")
	heapFile := filepath.Join(t.TempDir(), "heap.prof")
	m := e.json("bench", "--trace", traceFile, "--memprofile", heapFile, "--profile-phase", "paced-reads", "--records", "512", "--patients", "32", "--reads", "100", "--authors", "4",
		"--readers", "4", "--batch", "64", "--paced-rate", "50%", "--paced-records", "512",
		"--paced-read-rate", "200", "--paced-reads", "60", "--base-port", strconv.Itoa(base))
	for _, k := range []string{"records_per_s", "baseline_tx_per_s", "ratio_to_baseline", "write_p50_ms",
		"write_p99_ms", "reads_per_s", "read_p50_ms", "read_p99_ms", "bytes_per_record",
		"ed25519_verify_per_s", "authorize_p50_us", "evaluate_p50_us", "block_interval_ms",
		"write_cpu_us_per_record", "write_cpu_busy", "read_cpu_us_per_read", "read_cpu_busy",
		"baseline_cpu_us_per_tx", "baseline_cpu_busy", "single_reads_per_s", "single_read_p50_ms",
		"single_read_p99_ms", "single_read_cpu_us_per_read", "paced_records_per_s", "paced_write_p50_ms",
		"paced_write_p99_ms", "paced_block_interval_ms", "baseline_warmup_tx_per_s",
		"paced_reads_per_s", "paced_read_p50_ms", "paced_read_p99_ms", "paced_read_max_ms", "paced_read_cpu_us_per_read"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, m[k])
		}
	}
	// Page faults: a new node's first writes touch memory the process never
	// had (its state store's memtables, at least); the other phases may
	// touch none.
	if v, ok := m["write_faults_per_record"].(float64); !ok || v <= 0 {
		t.Errorf("write_faults_per_record = %v, want a positive number", m["write_faults_per_record"])
	}
	// Steal time: the host may have taken no core at all in a phase; nor
	// need a collection cycle have fallen in the paced reads.
	for _, k := range []string{"read_faults_per_read", "single_read_faults_per_read", "baseline_faults_per_tx", "baseline_warmup_faults_per_tx",
		"write_steal", "baseline_steal", "read_steal", "single_read_steal", "paced_read_steal", "paced_read_gc_cycles", "paced_read_faults_per_read"} {
		if v, ok := m[k].(float64); !ok || v < 0 {
			t.Errorf("%s = %v, want a number, 0 or more", k, m[k])
		}
	}
	if m["records"] != float64(512) || m["reads"] != float64(100) || m["batch"] != float64(64) || m["read_batch"] != float64(8) {
		t.Errorf("records, reads, batch, read_batch = %v, %v, %v, %v; want 512, 100, 64, 8", m["records"], m["reads"], m["batch"], m["read_batch"])
	}
	// --paced-rate 50%: half the records/s the closed-loop writes reached.
	if rate, half := m["paced_rate"].(float64), math.Floor(m["records_per_s"].(float64)/2); math.Abs(rate-max(1, half)) > 1 || m["paced_records"] != float64(512) {
		t.Errorf("paced_rate, paced_records = %v, %v; want %v (half of records_per_s %v), 512 (every paced record committed)",
			m["paced_rate"], m["paced_records"], half, m["records_per_s"])
	}
	if p99, longest := m["paced_read_p99_ms"].(float64), m["paced_read_max_ms"].(float64); longest < p99 {
		t.Errorf("paced_read_max_ms = %v, under paced_read_p99_ms = %v: the longest read is no shorter than the p99", longest, p99)
	}
	if m["paced_read_rate"] != float64(200) || m["paced_reads"] != float64(60) {
		t.Errorf("paced_read_rate, paced_reads = %v, %v; want 200, 60", m["paced_read_rate"], m["paced_reads"])
	}
	// A record commits in a block after the one committed when it was sent.
	if b, ok := m["paced_write_p99_blocks"].(float64); !ok || b < 1 {
		t.Errorf("paced_write_p99_blocks = %v, want at least 1", m["paced_write_p99_blocks"])
	}

	// --trace with --profile-phase: an execution trace of that phase alone.
	if b, err := os.ReadFile(traceFile); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("--trace wrote no execution trace: %d bytes, %v", len(b), err)
	}
	// --memprofile: a heap profile (gzipped protocol buffer) as the phase starts.
	if b, err := os.ReadFile(heapFile); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("--memprofile wrote no heap profile: %d bytes, %v", len(b), err)
	}

	prof := filepath.Join(t.TempDir(), "cpu.prof")
	for _, tc := range []struct {
		args []string
		say  string
	}{
		{[]string{"--validators", "3"}, "--validators"},
		{[]string{"--cpuprofile", prof, "--profile-phase", "setup"}, "--profile-phase"},
		{[]string{"--memprofile", prof}, "--memprofile"}, // needs a phase to take it at
		{[]string{"--depth", "0"}, "--depth"},
		{[]string{"--reads", "-1"}, "--reads"},
		{[]string{"--paced-rate", "-1"}, "--paced-rate"},
		{[]string{"--paced-rate", "7x"}, "--paced-rate"},
		{[]string{"--paced-rate", "0%"}, "--paced-rate"},
		{[]string{"--paced-rate", "201%"}, "--paced-rate"},
		{[]string{"--paced-read-rate", "-5"}, "--paced-read-rate"},
		{[]string{"--paced-reads", "-1"}, "--paced-reads"},
		{[]string{"--read-batch", "0"}, "--read-batch"},
		{[]string{"--read-batch", "65"}, "--read-batch"},
		{[]string{"--quick", "--records", "0"}, "--records"}, // flags beside --quick apply
	} {
		r := e.fail(exitUsage, append([]string{"bench"}, tc.args...)...)
		if !strings.Contains(r.stderr, tc.say) {
			t.Errorf("bench %v: error does not name %s\n%s", tc.args, tc.say, r)
		}
	}
}

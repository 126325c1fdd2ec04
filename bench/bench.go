// Package bench measures medchain against the bare consensus engine it
// stands on and against the machine's own ceilings, in one run: record
// writes and consent-checked reads on a real node, CometBFT's example
// key-value application fed transactions of the same size through the same
// submission path, and Ed25519, AES-GCM and SHA-256 throughput.
//
// Figures on a shared machine are noisy; the ratios between figures
// measured in the same run are what to compare across runs.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/medchain/medchain/tx"
)

// Options select a workload.
type Options struct {
	Records       int           // records to write
	Reads         int           // reads to perform
	Patients      int           // patients to register
	Authors       int           // concurrent authors (members with write consent)
	Readers       int           // concurrent readers
	ReadBatch     int           // records per read request (1: one record each; more: one patient's, by access.many)
	Batch         int           // records per transaction (1: one record.put each)
	Depth         int           // transactions in flight per author (the baseline's submitters: Depth*Batch)
	PacedRate     int           // records/s offered to the paced writes, after the reads, open loop (0: none)
	PacedPercent  int           // instead of PacedRate: this percentage of the records/s the closed-loop writes reached
	PacedRecords  int           // records the paced writes write, beside Records (0: none)
	PacedReadRate int           // one-record read requests/s offered to the paced reads, after the other reads, open loop (0: none)
	PacedReads    int           // records the paced reads read (0: none)
	BigEvery      int           // every BigEvery-th record is 1 MiB (0: none)
	Seed          uint64        // workload seed
	Validators    int           // 1, or 4 for a network on 127.0.0.1
	BasePort      int           // first port for the nodes: below the ephemeral range (32768-60999 on Linux), which outgoing connections draw from
	BlockTime     time.Duration // the nodes' block time (0: the default), baseline's too
	Dir           string        // scratch directory (default: a temp dir, removed after)
	Progress      io.Writer
	// Phase, when set, is called as each timed phase ("writes",
	// "decisions", "reads", "single-reads", "paced-reads", "paced-writes")
	// starts; the function it returns is called as the phase ends. The
	// command uses it to profile or trace one phase alone.
	Phase func(name string) (end func())
}

// Quick is the workload of `medchain bench --quick`.
func Quick() Options {
	return Options{Records: 10000, Reads: 6000, Patients: 200, Authors: 16, Readers: 16, ReadBatch: 8, Batch: 256, Depth: 2, PacedRate: 10000, PacedRecords: 30000, PacedReadRate: 500, PacedReads: 3000, BigEvery: 2500, Seed: 1, Validators: 1, BasePort: 27600}
}

// Report holds the figures. Rates are per second of wall time.
type Report struct {
	Records           int     `json:"records"`
	RecordsPerS       float64 `json:"records_per_s"`
	BaselineTxPerS    float64 `json:"baseline_tx_per_s"`
	RatioToBaseline   float64 `json:"ratio_to_baseline"`
	WriteP50Ms        float64 `json:"write_p50_ms"`
	WriteP99Ms        float64 `json:"write_p99_ms"`
	Reads             int     `json:"reads"`
	ReadBatch         int     `json:"read_batch"`  // records per read request
	ReadsPerS         float64 `json:"reads_per_s"` // records read (each consent-checked, each an access event)
	ReadP50Ms         float64 `json:"read_p50_ms"`
	ReadP99Ms         float64 `json:"read_p99_ms"`
	AuthorizeP50Us    float64 `json:"authorize_p50_us"` // one consent decision, in process
	AuthorizeP99Us    float64 `json:"authorize_p99_us"`
	EvaluateP50Us     float64 `json:"evaluate_p50_us"` // the same, for a record already read: the consent evaluation alone
	EvaluateP99Us     float64 `json:"evaluate_p99_us"`
	BytesPerRecord    float64 `json:"bytes_per_record"`
	Ed25519VerifyPerS float64 `json:"ed25519_verify_per_s"`
	AESGCMMBPerS      float64 `json:"aes_gcm_mb_per_s"`
	SHA256MBPerS      float64 `json:"sha256_mb_per_s"`
	SealPerS          float64 `json:"seal_per_s"`
	BaselineTxBytes   int     `json:"baseline_tx_bytes"`
	BlockIntervalMs   float64 `json:"block_interval_ms"`
	// The paced writes: records offered at a fixed rate, open loop, each
	// batch's latency from when it was due (see paced).
	PacedRate            int     `json:"paced_rate"`
	PacedRecords         int     `json:"paced_records"`
	PacedRecordsPerS     float64 `json:"paced_records_per_s"`
	PacedWriteP50Ms      float64 `json:"paced_write_p50_ms"`
	PacedWriteP99Ms      float64 `json:"paced_write_p99_ms"`
	PacedWriteP99Blocks  int64   `json:"paced_write_p99_blocks"` // the commit's height less the height committed when the record was sent
	PacedBlockIntervalMs float64 `json:"paced_block_interval_ms"`
	// The paced reads: one record per request at a fixed offered rate,
	// open loop, each request's latency from when it was due (see
	// pacedReads).
	PacedReadRate  int     `json:"paced_read_rate"`
	PacedReads     int     `json:"paced_reads"`
	PacedReadsPerS float64 `json:"paced_reads_per_s"`
	PacedReadP50Ms float64 `json:"paced_read_p50_ms"`
	PacedReadP99Ms float64 `json:"paced_read_p99_ms"`
	PacedReadCPUUs float64 `json:"paced_read_cpu_us_per_read"`
	// The longest paced read. In a phase of a few thousand reads the p99
	// is set by its slowest few dozen, and one stall of the node's sets
	// them all; the longest read tells a stall from a slow phase.
	PacedReadMaxMs float64 `json:"paced_read_max_ms"`
	// CPU time of the whole process (nodes and load generator) per unit of
	// work in each timed phase, and the share of the cores it kept busy.
	WriteCPUUsPerRecord float64 `json:"write_cpu_us_per_record"`
	WriteCPUBusy        float64 `json:"write_cpu_busy"`
	ReadCPUUsPerRead    float64 `json:"read_cpu_us_per_read"`
	ReadCPUBusy         float64 `json:"read_cpu_busy"`
	// Page faults of the whole process per unit of work in each timed
	// phase: each costs microseconds of CPU, more on a virtual machine
	// without hardware page tables (docs/performance.md, "Page faults").
	WriteFaultsPerRecord    float64 `json:"write_faults_per_record"`
	ReadFaultsPerRead       float64 `json:"read_faults_per_read"`
	SingleReadFaultsPerRead float64 `json:"single_read_faults_per_read"`
	BaselineFaultsPerTx     float64 `json:"baseline_faults_per_tx"`
	PacedReadFaultsPerRead  float64 `json:"paced_read_faults_per_read"`
	// The baseline's warm-up run, before medchain's writes (see warmUp).
	BaselineWarmupTxPerS      float64 `json:"baseline_warmup_tx_per_s"`
	BaselineWarmupFaultsPerTx float64 `json:"baseline_warmup_faults_per_tx"`
	// The same reads one record per request (the figures above when
	// read_batch is 1).
	SingleReadsPerS    float64 `json:"single_reads_per_s"`
	SingleReadP50Ms    float64 `json:"single_read_p50_ms"`
	SingleReadP99Ms    float64 `json:"single_read_p99_ms"`
	SingleReadCPUUs    float64 `json:"single_read_cpu_us_per_read"`
	BaselineCPUUsPerTx float64 `json:"baseline_cpu_us_per_tx"`
	BaselineCPUBusy    float64 `json:"baseline_cpu_busy"`
	Batch              int     `json:"batch"`
	Validators         int     `json:"validators"`
	CPUs               int     `json:"cpus"`
	GoVersion          string  `json:"go_version"`
	Seed               uint64  `json:"seed"`
	DurationS          float64 `json:"duration_s"`
	// The share of the machine's cores its hypervisor gave to something
	// else in each timed phase (Linux's steal time; 0 where the system
	// does not report it): time no process here can see, which every
	// latency and rate in the phase pays for.
	WriteSteal      float64 `json:"write_steal"`
	BaselineSteal   float64 `json:"baseline_steal"`
	ReadSteal       float64 `json:"read_steal"`
	SingleReadSteal float64 `json:"single_read_steal"`
	PacedReadSteal  float64 `json:"paced_read_steal"`
	// The garbage collection cycles the process (nodes and load generator)
	// completed during the paced reads. A cycle takes cores from the
	// reads for its marking; whether a short phase held one is the
	// first thing to rule in or out of its p99 ("Reads at scale: the
	// tail" in docs/performance.md).
	PacedReadGCCycles uint64 `json:"paced_read_gc_cycles"`
}

// ErrOptions reports options Run refuses before it starts anything.
var ErrOptions = errors.New("bad bench options")

// Run runs the whole benchmark.
func Run(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Validators != 1 && o.Validators != 4 {
		return nil, fmt.Errorf("%w: --validators %d: use 1 or 4", ErrOptions, o.Validators)
	}
	if o.Records < 1 || o.Patients < 1 || o.Authors < 1 || o.Readers < 1 || o.Batch < 1 || o.Depth < 1 || o.Reads < 0 {
		return nil, fmt.Errorf("%w: --records, --patients, --authors, --readers, --batch and --depth must be positive, --reads not negative", ErrOptions)
	}
	if o.PacedRate < 0 || o.PacedRecords < 0 || o.PacedPercent < 0 || o.PacedPercent > 200 {
		return nil, fmt.Errorf("%w: --paced-rate must be records/s or 1%% to 200%% of the closed-loop rate, --paced-records not negative (0 skips the paced writes)", ErrOptions)
	}
	if o.PacedReadRate < 0 || o.PacedReads < 0 {
		return nil, fmt.Errorf("%w: --paced-read-rate and --paced-reads must not be negative (0 skips the paced reads)", ErrOptions)
	}
	if o.PacedRate == 0 && o.PacedPercent == 0 {
		o.PacedRecords = 0
	}
	if o.ReadBatch < 1 || o.ReadBatch > tx.MaxAccessRecords {
		return nil, fmt.Errorf("%w: --read-batch %d: use 1 to %d", ErrOptions, o.ReadBatch, tx.MaxAccessRecords)
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "medchain-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	o.BasePort = freePorts(o.BasePort)
	rep := &Report{Validators: o.Validators, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Seed: o.Seed}
	o.logf("machine ceilings")
	ceilings(rep)
	w, err := newWorkload(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	defer w.close()
	if err := w.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	if err := w.seal(ctx, rep); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if err := w.measureTxBytes(); err != nil {
		return nil, err
	}
	if err := w.warmUp(ctx, rep); err != nil {
		return nil, fmt.Errorf("baseline warm-up: %w", err)
	}
	if err := w.writes(ctx, rep); err != nil {
		return nil, fmt.Errorf("writes: %w", err)
	}
	if err := w.authorizations(rep); err != nil {
		return nil, fmt.Errorf("consent decisions: %w", err)
	}
	if err := w.reads(ctx, rep); err != nil {
		return nil, fmt.Errorf("reads: %w", err)
	}
	if err := w.footprint(rep); err != nil {
		return nil, err
	}
	if err := w.paced(ctx, rep); err != nil {
		return nil, fmt.Errorf("paced writes: %w", err)
	}
	w.close()
	o.logf("baseline: CometBFT kvstore, %d transactions of %d bytes", o.Records, w.txBytes)
	run, err := baseline(ctx, o, filepath.Join(dir, "baseline"), o.Records, w.txBytes)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	o.logf("baseline: %.0f tx/s", run.txPerS)
	rep.BaselineTxPerS, rep.BaselineTxBytes = run.txPerS, w.txBytes
	rep.BaselineCPUUsPerTx, rep.BaselineCPUBusy, rep.BaselineFaultsPerTx = run.cost.cpuUs, run.cost.busy, run.cost.faults
	rep.BaselineSteal = run.cost.steal
	if rep.BaselineTxPerS > 0 {
		rep.RatioToBaseline = rep.RecordsPerS / rep.BaselineTxPerS
	}
	rep.DurationS = time.Since(start).Seconds()
	return rep, nil
}

// phase marks the start of a timed phase; call the result at its end.
func (o Options) phase(name string) func() {
	if o.Phase == nil {
		return func() {}
	}
	return o.Phase(name)
}

func (o Options) logf(format string, args ...any) {
	fmt.Fprintf(o.Progress, "bench: "+format+"\n", args...)
}

// percentile returns the p-th percentile (0-100) of ds in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i].Nanoseconds()) / 1e6
}

// freePorts returns the first base at or above base (in steps of 100)
// whose ports base…base+99, the bench's nodes and baseline, are all free.
func freePorts(base int) int {
	for try := 0; try < 50; try++ {
		b := base + 100*try // the nodes use base…base+32, the baseline base+50…base+82
		free := true
		for p := b; p < b+100 && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return b
		}
	}
	return base
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"

	"github.com/medchain/medchain/bench"
	"github.com/medchain/medchain/node"
)

func benchCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	q := bench.Quick()
	// --quick names the defaults; flags given beside it still apply.
	fs.Bool("quick", false, "the quick workload (under 90 s): 10,000 records; 6,000 reads, 8 per request, then 6,000 one per request; then 3,000 paced one-record reads at 500/s; then 30,000 paced writes at 10,000/s (the defaults; other flags still apply)")
	records := fs.Int("records", q.Records, "records to write")
	reads := fs.Int("reads", q.Reads, "records to read (each consent-checked, each leaving an access event)")
	patients := fs.Int("patients", q.Patients, "patients")
	authors := fs.Int("authors", q.Authors, "concurrent authors")
	readers := fs.Int("readers", q.Readers, "concurrent readers")
	readBatch := fs.Int("read-batch", q.ReadBatch, "records per read request: 1 reads one record each; more reads that many of one patient's under one signed access.many request")
	validators := fs.Int("validators", 1, "1, or 4 for a network on 127.0.0.1")
	batch := fs.Int("batch", q.Batch, "records per transaction (1: one record.put each)")
	depth := fs.Int("depth", q.Depth, "transactions each author keeps in flight (the baseline keeps depth*batch)")
	pacedRate := fs.String("paced-rate", strconv.Itoa(q.PacedRate), "records/s offered in the paced writes, after the reads, or a percentage (70%) of the records/s the closed-loop writes reached: open loop, each batch's latency from when it was due (0 skips them)")
	pacedRecords := fs.Int("paced-records", q.PacedRecords, "records the paced writes write")
	pacedReadRate := fs.Int("paced-read-rate", q.PacedReadRate, "one-record read requests/s offered in the paced reads, after the other reads: open loop, each request's latency from when it was due (0 skips them)")
	pacedReads := fs.Int("paced-reads", q.PacedReads, "records the paced reads read")
	seed := fs.Uint64("seed", q.Seed, "workload seed")
	blockTime := fs.Duration("block-time", 0, "the nodes' block time, medchain's and the baseline's (default: a new node's)")
	base := fs.Int("base-port", q.BasePort, "first port of the bench's nodes")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to `FILE`")
	traceFile := fs.String("trace", "", "write an execution trace (go tool trace) of the run to `FILE`")
	memprofile := fs.String("memprofile", "", "write a heap profile to `FILE`, after a forced collection, as the --profile-phase phase starts (needs a phase other than all)")
	profPhase := fs.String("profile-phase", "all", "what --cpuprofile and --trace cover, and where --memprofile is taken: all, writes, decisions, reads, single-reads, paced-reads or paced-writes")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if !slices.Contains([]string{"all", "writes", "decisions", "reads", "single-reads", "paced-reads", "paced-writes"}, *profPhase) {
			return usagef("--profile-phase %q: use all, writes, decisions, reads, single-reads, paced-reads or paced-writes", *profPhase)
		}
		if *memprofile != "" && *profPhase == "all" {
			return usagef("--memprofile: name the phase to take it at with --profile-phase (writes, decisions, reads, single-reads, paced-reads or paced-writes)")
		}
		node.UseSpareProcs() // the bench's nodes and the baseline's alike
		node.UseHugePages(ctx, slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		o := q
		o.Records, o.Reads, o.Patients = *records, *reads, *patients
		o.BigEvery = max(q.BigEvery, *records/4)
		o.Batch, o.Depth, o.BlockTime = *batch, *depth, *blockTime
		rate, percent, err := parsePacedRate(*pacedRate)
		if err != nil {
			return err
		}
		o.PacedRate, o.PacedPercent, o.PacedRecords = rate, percent, *pacedRecords
		o.PacedReadRate, o.PacedReads = *pacedReadRate, *pacedReads
		o.Authors, o.Readers, o.ReadBatch, o.Validators, o.Seed, o.BasePort, o.Progress = *authors, *readers, *readBatch, *validators, *seed, *base, g.stderr
		if *cpuprofile != "" || *traceFile != "" || *memprofile != "" {
			stop, err := profile(&o, *cpuprofile, *traceFile, *memprofile, *profPhase)
			if err != nil {
				return err
			}
			defer stop()
		}
		rep, err := bench.Run(ctx, o)
		if errors.Is(err, bench.ErrOptions) {
			return usagef("%s", strings.TrimPrefix(err.Error(), bench.ErrOptions.Error()+": "))
		}
		if err != nil {
			return err
		}
		return emit(g, rep, benchTable(rep))
	}
}

// parsePacedRate reads --paced-rate: records/s, or a percentage ("70%")
// of the closed-loop rate.
func parsePacedRate(s string) (rate, percent int, err error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		if percent, err = strconv.Atoi(p); err != nil || percent < 1 || percent > 200 {
			return 0, 0, usagef("--paced-rate %q: give records/s, or 1%% to 200%% of the closed-loop rate", s)
		}
		return 0, percent, nil
	}
	if rate, err = strconv.Atoi(s); err != nil || rate < 0 {
		return 0, 0, usagef("--paced-rate %q: give records/s (0 skips the paced writes), or a percentage such as 70%%", s)
	}
	return rate, 0, nil
}

// profile starts a CPU profile into cpuFile and an execution trace into
// traceFile (either may be "") covering the whole run (phase "all") or one
// timed phase of it ("writes", "decisions", "reads", ...), and writes a
// heap profile into memFile as that phase starts; stop ends them and
// closes the files.
func profile(o *bench.Options, cpuFile, traceFile, memFile, phase string) (stop func(), err error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	create := func(name string) (*os.File, error) {
		if name == "" {
			return nil, nil
		}
		f, err := os.Create(name)
		if err == nil {
			files = append(files, f)
		}
		return f, err
	}
	cpu, err := create(cpuFile)
	if err != nil {
		return nil, err
	}
	tr, err := create(traceFile)
	if err != nil {
		closeAll()
		return nil, err
	}
	mem, err := create(memFile)
	if err != nil {
		closeAll()
		return nil, err
	}
	start := func() (end func(), err error) {
		if mem != nil {
			if err := writeHeap(o.Progress, mem, phase); err != nil {
				return nil, err
			}
		}
		if cpu != nil {
			if err := pprof.StartCPUProfile(cpu); err != nil {
				return nil, err
			}
		}
		if tr != nil {
			if err := trace.Start(tr); err != nil {
				if cpu != nil {
					pprof.StopCPUProfile()
				}
				return nil, err
			}
		}
		return func() {
			if cpu != nil {
				pprof.StopCPUProfile()
			}
			if tr != nil {
				trace.Stop()
			}
		}, nil
	}
	if phase == "all" {
		end, err := start()
		if err != nil {
			closeAll()
			return nil, err
		}
		return func() { end(); closeAll() }, nil
	}
	o.Phase = func(name string) func() {
		if name != phase {
			return func() {}
		}
		end, err := start()
		if err != nil {
			// The run goes on; the files stay empty, and the user is told.
			fmt.Fprintf(o.Progress, "bench: could not start --cpuprofile/--trace/--memprofile for phase %s: %v\n", name, err)
			return func() {}
		}
		return end
	}
	return closeAll, nil
}

// writeHeap collects garbage, so that the profile and the figures it
// prints count live objects only, then writes a heap profile to f and
// the live heap's size and object count to progress. The forced cycle is
// part of the phase's start, not of its timing.
func writeHeap(progress io.Writer, f io.Writer, phase string) error {
	runtime.GC()
	samples := []metrics.Sample{{Name: "/gc/heap/objects:objects"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(samples)
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	fmt.Fprintf(progress, "bench: heap as %s starts (after a forced collection): %d objects, %.0f MB live\n",
		phase, samples[0].Value.Uint64(), float64(samples[1].Value.Uint64())/1e6)
	return nil
}

func benchTable(r *bench.Report) string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-28s %s\n", k, v) }
	row("records written", fmt.Sprintf("%d", r.Records))
	row("records/s", fmt.Sprintf("%.0f", r.RecordsPerS))
	row("baseline kvstore tx/s", fmt.Sprintf("%.0f (%d-byte txs; its warm-up run before medchain's writes: %.0f)",
		r.BaselineTxPerS, r.BaselineTxBytes, r.BaselineWarmupTxPerS))
	row("ratio to baseline", fmt.Sprintf("%.2f", r.RatioToBaseline))
	row("write p50 / p99", fmt.Sprintf("%.0f ms / %.0f ms", r.WriteP50Ms, r.WriteP99Ms))
	row("block interval", fmt.Sprintf("%.0f ms", r.BlockIntervalMs))
	row("CPU per record / per tx", fmt.Sprintf("%.0f µs / %.0f µs (cores %.0f%% / %.0f%% busy; baseline's tx)",
		r.WriteCPUUsPerRecord, r.BaselineCPUUsPerTx, 100*r.WriteCPUBusy, 100*r.BaselineCPUBusy))
	row("page faults per record / tx", fmt.Sprintf("%.2f / %.2f", r.WriteFaultsPerRecord, r.BaselineFaultsPerTx))
	row("cores the host took", fmt.Sprintf("%.1f%% / %.1f%% of the writes / baseline; %.1f%% / %.1f%% / %.1f%% of the reads (%d per request / 1 / paced)",
		100*r.WriteSteal, 100*r.BaselineSteal, 100*r.ReadSteal, 100*r.SingleReadSteal, 100*r.PacedReadSteal, r.ReadBatch))
	row("records per transaction", fmt.Sprintf("%d", r.Batch))
	if r.PacedRecords > 0 {
		row("paced writes", fmt.Sprintf("%d records/s offered, %.0f committed (%d records)", r.PacedRate, r.PacedRecordsPerS, r.PacedRecords))
		row("  write p50 / p99", fmt.Sprintf("%.0f ms / %.0f ms (blocks %.0f ms apart; p99 committed %d blocks after the tip it was sent at)",
			r.PacedWriteP50Ms, r.PacedWriteP99Ms, r.PacedBlockIntervalMs, r.PacedWriteP99Blocks))
	}
	row("reads/s", fmt.Sprintf("%.0f (%d records, %d per request)", r.ReadsPerS, r.Reads, r.ReadBatch))
	row("read p50 / p99", fmt.Sprintf("%.1f ms / %.1f ms", r.ReadP50Ms, r.ReadP99Ms))
	row("CPU per read", fmt.Sprintf("%.0f µs (cores %.0f%% busy; %.2f page faults)", r.ReadCPUUsPerRead, 100*r.ReadCPUBusy, r.ReadFaultsPerRead))
	row("one-record reads/s", fmt.Sprintf("%.0f (p50 %.1f ms, p99 %.1f ms, CPU %.0f µs and %.2f page faults per read)",
		r.SingleReadsPerS, r.SingleReadP50Ms, r.SingleReadP99Ms, r.SingleReadCPUUs, r.SingleReadFaultsPerRead))
	if r.PacedReads > 0 {
		row("paced one-record reads", fmt.Sprintf("%d requests/s offered, %.0f answered (%d records)", r.PacedReadRate, r.PacedReadsPerS, r.PacedReads))
		row("  read p50 / p99 / longest", fmt.Sprintf("%.1f ms / %.1f ms / %.1f ms (CPU %.0f µs and %.2f page faults per read)",
			r.PacedReadP50Ms, r.PacedReadP99Ms, r.PacedReadMaxMs, r.PacedReadCPUUs, r.PacedReadFaultsPerRead))
	}
	row("consent decision p50 / p99", fmt.Sprintf("%.0f µs / %.0f µs", r.AuthorizeP50Us, r.AuthorizeP99Us))
	row("  without the record lookup", fmt.Sprintf("%.1f µs / %.1f µs", r.EvaluateP50Us, r.EvaluateP99Us))
	row("bytes per record on disk", fmt.Sprintf("%.0f", r.BytesPerRecord))
	row("client seals/s", fmt.Sprintf("%.0f", r.SealPerS))
	row("ed25519 verify/s (1 core)", fmt.Sprintf("%.0f", r.Ed25519VerifyPerS))
	row("AES-256-GCM MB/s (1 core)", fmt.Sprintf("%.0f", r.AESGCMMBPerS))
	row("SHA-256 MB/s (1 core)", fmt.Sprintf("%.0f", r.SHA256MBPerS))
	row("validators / cpus", fmt.Sprintf("%d / %d", r.Validators, r.CPUs))
	row("duration", fmt.Sprintf("%.1f s", r.DurationS))
	return b.String()
}

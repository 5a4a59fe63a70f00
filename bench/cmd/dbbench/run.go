package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/fxpg/fxpg/bench"
)

// options are what the flags ask run for.
type options struct {
	plan             bench.Plan
	out              string
	setup            bench.SetupOptions
	pairs            bench.PairPolicy
	pairDuration     time.Duration
	calibrate        []time.Duration
	appBin, cycleDir string
	cycle            bench.CycleOptions
	testDB           bool
	root, cpuProfile string
}

func run(ctx context.Context, o options) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	env, err := bench.Setup(ctx, o.setup)
	if err != nil {
		return err
	}
	defer env.Close()
	if len(o.calibrate) > 0 {
		return calibrate(ctx, env, o)
	}

	report := bench.Report{Plan: o.plan, Machine: machine(env.Version(), o.setup.ServerCPUs), Command: "make bench", Chart: "bench.png",
		ServerCPUs: o.setup.ServerCPUs, ClientCPUs: clientCPUs(), ClientProcs: runtime.GOMAXPROCS(0)}
	if report.Allocs, err = bench.CountAllocs(ctx, env); err != nil {
		return err
	}
	if report.Samples, err = bench.Run(ctx, env, o.plan); err != nil {
		return err
	}
	report.PairDuration, report.PairPolicy = o.pairDuration, o.pairs
	for _, p := range bench.Pairings() {
		if o.pairs.Min == 0 || (p.Bouncer && !o.setup.Bouncer) {
			continue
		}
		s, err := bench.RunPairs(ctx, env, p, o.pairs, o.pairDuration, o.plan.Progress)
		if err != nil {
			return err
		}
		report.Pairs = append(report.Pairs, s...)
	}
	dbEnv := []string{"DATABASE_URL=" + env.URL(bench.TCP)}
	if o.cycleDir != "" {
		bins := bench.CycleBinaries{
			Module:  filepath.Join(o.cycleDir, "module"),
			Service: filepath.Join(o.cycleDir, "service"),
			Plain:   filepath.Join(o.cycleDir, "plain"),
		}
		c, err := bench.MeasureCycle(ctx, bins, append(dbEnv, "HTTP_ADDR=127.0.0.1:0", "APP_ENV=production"), o.cycle)
		if err != nil {
			return err
		}
		report.Cycle = &c
	}
	if o.appBin != "" {
		m, err := bench.MeasureIdleRSS(ctx, o.appBin, dbEnv)
		if err != nil {
			return err
		}
		report.RSS = &m
	}
	if o.testDB {
		if report.TestDB, err = bench.MeasureTestDatabase(ctx, o.root); err != nil {
			return err
		}
	}

	return write(o.out, report)
}

// calibrate prints how much module ÷ pgxpool's pairs spread with runs of
// each duration asked for: what -pairs, -pairs-max and -pair-duration rest on.
func calibrate(ctx context.Context, env *bench.Env, o options) error {
	point, err := bench.WorkloadNamed("point")
	if err != nil {
		return err
	}
	p := bench.Pairing{Name: "calibration", A: bench.Module, B: bench.RawPgx, Workloads: []bench.Workload{point},
		Concurrency: []int{8}, Transports: []bench.Transport{bench.TCP}}
	spreads, err := bench.Calibrate(ctx, env, p, o.calibrate, max(o.pairs.Min, 6), nil)
	if err != nil {
		return err
	}
	fmt.Printf("module ÷ pgxpool, point lookup, 8 goroutines, TCP; %s\n", machine(env.Version(), o.setup.ServerCPUs))
	fmt.Printf("%-9s %6s %8s %17s %9s %9s %8s %12s\n", "run", "pairs", "median", "95% range", "width", "SD(log)", "needed", "time/point")
	for _, s := range spreads {
		fmt.Printf("%-9s %6d %7.3f× %8.3f–%-8.3f %8.1f%% %9.3f %8d %12s\n", s.Duration, s.Ratio.Rounds, s.Ratio.Median, s.Ratio.Lo, s.Ratio.Hi,
			s.Ratio.Width()*100, s.SD, s.Needed, (time.Duration(2*s.Needed) * s.Duration).Round(time.Second))
	}
	return nil
}

// rerender reads a report bench.json holds and writes it again into out.
func rerender(path, out string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("-render: %w", err)
	}
	defer f.Close()
	report, err := bench.ReadReport(f)
	if err != nil {
		return fmt.Errorf("-render %s: %w", path, err)
	}
	return write(out, report)
}

// write writes the report's chart, Markdown and JSON into out, and its
// targets to standard error.
func write(out string, report bench.Report) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	if err := bench.WriteChart(filepath.Join(out, report.Chart), report.Plan, report.Samples); err != nil {
		return err
	}
	var md, raw bytes.Buffer
	if err := report.WriteMarkdown(&md); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := report.WriteJSON(&raw); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "bench.md"), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "bench.json"), raw.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, t := range report.Targets() {
		verdict := "met"
		switch {
		case !t.Known:
			verdict = "n/a"
		case !t.Met:
			verdict = "MISSED"
		}
		fmt.Fprintf(os.Stderr, "%-7s %s: %s\n", verdict, t.Goal, t.Measured)
	}
	return nil
}

// Command dbbench measures the module against raw pgxpool, database/sql
// (over pgx and over lib/pq) and pgbench on a throwaway PostgreSQL, and
// writes bench.md, bench.png and bench.json to -out. `make bench` runs it
// in full, from the repository's root; its flags shrink the run.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fxpg/fxpg/bench"
)

func main() {
	out := flag.String("out", "docs", "directory for bench.md, bench.png and bench.json")
	duration := flag.Duration("duration", 2*time.Second, "length of each timed run (pgbench rounds to whole seconds)")
	rounds := flag.Int("rounds", 3, "repetitions of each run, interleaved")
	concurrency := flag.String("concurrency", "1,8,32,64", "goroutines (pgbench clients), comma-separated")
	workloads := flag.String("workloads", "select1,point,rwtx", "workloads, comma-separated")
	transports := flag.String("transports", "tcp,socket", "transports, comma-separated")
	contenders := flag.String("contenders", strings.Join(bench.Contenders(), ","), "contenders, comma-separated")
	bouncer := flag.Bool("bouncer", true, "also compare through PgBouncer in transaction mode (a paired comparison)")
	appBin := flag.String("app", "", "the service binary, for its idle memory; empty skips it")
	cycleDir := flag.String("cycle", "", "directory of bench/cycle's module, service and plain, built, for start-stop timing; empty skips it")
	cycleRuns := flag.Int("cycle-runs", 200, "hyperfine runs of each start-stop binary")
	pairs := flag.Int("pairs", 20, "paired runs at each point of each of bench.Pairings; 0 skips them")
	pairDuration := flag.Duration("pair-duration", time.Second, "length of each paired run")
	testDB := flag.Bool("testdb", true, "also run the test kit's BenchmarkNewDatabase")
	root := flag.String("root", ".", "the library module's directory, whose dbmodule/dbtest -testdb benchmarks")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	serverCPUs := flag.String("server-cpus", "", "CPUs for the server and PgBouncer, comma-separated; run dbbench itself on others (taskset)")
	render := flag.String("render", "", "measure nothing: render this bench.json again into -out")
	flag.Parse()

	if *render != "" {
		if err := rerender(*render, *out); err != nil {
			fmt.Fprintln(os.Stderr, "dbbench:", err)
			os.Exit(1)
		}
		return
	}

	plan, err := planFrom(*duration, *rounds, *concurrency, *workloads, *transports, *contenders)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cpus, err := cpuList(*serverCPUs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(2)
	}
	if err := run(ctx, plan, *out, bench.SetupOptions{Bouncer: *bouncer, ServerCPUs: cpus}, *pairs, *pairDuration, *appBin, *cycleDir, *cycleRuns, *testDB, *root, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(1)
	}
}

func planFrom(d time.Duration, rounds int, concurrency, workloads, transports, contenders string) (bench.Plan, error) {
	plan := bench.Plan{Duration: d, Rounds: rounds, Progress: os.Stderr, Contenders: strings.Split(contenders, ",")}
	for _, c := range strings.Split(concurrency, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return plan, fmt.Errorf("-concurrency: %q is not a positive number", c)
		}
		plan.Concurrency = append(plan.Concurrency, n)
	}
	for _, name := range strings.Split(workloads, ",") {
		w, err := bench.WorkloadNamed(name)
		if err != nil {
			return plan, fmt.Errorf("-workloads: %w", err)
		}
		plan.Workloads = append(plan.Workloads, w)
	}
	for _, t := range strings.Split(transports, ",") {
		if t != string(bench.TCP) && t != string(bench.Socket) {
			return plan, fmt.Errorf("-transports: %q is not tcp or socket", t)
		}
		plan.Transports = append(plan.Transports, bench.Transport(t))
	}
	return plan, nil
}

func run(ctx context.Context, plan bench.Plan, out string, setup bench.SetupOptions, pairs int, pairDuration time.Duration,
	appBin, cycleDir string, cycleRuns int, testDB bool, root, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	env, err := bench.Setup(ctx, setup)
	if err != nil {
		return err
	}
	defer env.Close()

	report := bench.Report{Plan: plan, Machine: machine(env.Version(), setup.ServerCPUs), Command: "make bench", Chart: "bench.png"}
	if report.Allocs, err = bench.CountAllocs(ctx, env); err != nil {
		return err
	}
	if report.Samples, err = bench.Run(ctx, env, plan); err != nil {
		return err
	}
	report.PairDuration = pairDuration
	for _, p := range bench.Pairings() {
		if pairs == 0 || (p.Bouncer && !setup.Bouncer) {
			continue
		}
		s, err := bench.RunPairs(ctx, env, p, pairs, pairDuration, plan.Progress)
		if err != nil {
			return err
		}
		report.Pairs = append(report.Pairs, s...)
	}
	dbEnv := []string{"DATABASE_URL=" + env.URL(bench.TCP)}
	if cycleDir != "" {
		bins := bench.CycleBinaries{
			Module:  filepath.Join(cycleDir, "module"),
			Service: filepath.Join(cycleDir, "service"),
			Plain:   filepath.Join(cycleDir, "plain"),
		}
		c, err := bench.MeasureCycle(ctx, bins, append(dbEnv, "HTTP_ADDR=127.0.0.1:0", "APP_ENV=production"), cycleRuns)
		if err != nil {
			return err
		}
		report.Cycle = &c
	}
	if appBin != "" {
		m, err := bench.MeasureIdleRSS(ctx, appBin, dbEnv)
		if err != nil {
			return err
		}
		report.RSS = &m
	}
	if testDB {
		if report.TestDB, err = bench.MeasureTestDatabase(ctx, root); err != nil {
			return err
		}
	}

	return write(out, report)
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

// cpuList parses a comma-separated list of CPU numbers.
func cpuList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var cpus []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("-server-cpus: %q is not a CPU number", f)
		}
		cpus = append(cpus, n)
	}
	return cpus, nil
}

// machine describes the machine, the server and the toolchain.
func machine(postgres string, serverCPUs []int) string {
	// The machine's CPUs, not runtime.NumCPU's: taskset narrows that.
	cpu, cpus := "unknown CPU", runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = 0
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok && cpu == "unknown CPU" {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
			if strings.HasPrefix(line, "processor") {
				cpus++
			}
		}
	}
	placement := "client and server sharing them"
	if len(serverCPUs) > 0 {
		placement = fmt.Sprintf("server and PgBouncer pinned to CPU %v, the client (GOMAXPROCS %d, pgbench too) to the rest", serverCPUs, runtime.GOMAXPROCS(0))
	}
	return fmt.Sprintf("%s, %d CPUs (%s), %s/%s, %s, %s (fsync=off, on tmpfs), %s",
		cpu, cpus, placement, runtime.GOOS, runtime.GOARCH, runtime.Version(), postgres, time.Now().UTC().Format("2006-01-02"))
}

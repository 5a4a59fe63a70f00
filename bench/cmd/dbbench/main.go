// Command dbbench measures the module against raw pgxpool, database/sql
// (over pgx and over lib/pq) and pgbench on a throwaway PostgreSQL, and
// writes bench.md, bench.png and bench.json to -out. `make bench` runs it
// in full, from the repository's root; its flags shrink the run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fxpg/fxpg/bench"
)

func main() {
	// The defaults come from dbbench -calibrate on the 2-CPU machine of
	// record (README, Performance): a pair's ratio there spreads by 30 to
	// 80 % (standard deviation of its log) whatever the runs' length, since
	// the interference comes in bursts; so short runs, many of them, narrow
	// a median fastest. Six rounds are the fewest with a 95 % range, for the
	// time three rounds of 2 s took.
	out := flag.String("out", "docs", "directory for bench.md, bench.png and bench.json")
	duration := flag.Duration("duration", time.Second, "length of each timed run (pgbench rounds to whole seconds)")
	rounds := flag.Int("rounds", 6, "repetitions of each run, interleaved")
	concurrency := flag.String("concurrency", "1,8,32,64", "goroutines (pgbench clients), comma-separated")
	workloads := flag.String("workloads", "select1,point,rwtx", "workloads, comma-separated")
	transports := flag.String("transports", "tcp,socket", "transports, comma-separated")
	contenders := flag.String("contenders", strings.Join(bench.Contenders(), ","), "contenders, comma-separated")
	bouncer := flag.Bool("bouncer", true, "also compare through PgBouncer in transaction mode (a paired comparison)")
	appBin := flag.String("app", "", "the service binary, for its idle memory; empty skips it")
	cycleDir := flag.String("cycle", "", "directory of bench/cycle's module, service and plain, built, for start-stop timing; empty skips it")
	cycleRuns := flag.Int("cycle-runs", 10, "hyperfine runs of each start-stop binary per round")
	cycleRounds := flag.Int("cycle-rounds", 20, "rounds of start-stop runs at least")
	cycleRoundsMax := flag.Int("cycle-rounds-max", 60, "rounds of start-stop runs at most, until both ratios' 95% ranges are under 10%")
	pairs := flag.Int("pairs", 20, "paired runs at each point of each of bench.Pairings at least; 0 skips them")
	pairsMax := flag.Int("pairs-max", 200, "paired runs at each point at most: more run, two at a time, until the ratio's 95% range is under 10%")
	pairDuration := flag.Duration("pair-duration", 250*time.Millisecond, "length of each paired run (with pgbench at least 1s)")
	calibrate := flag.String("calibrate", "", "measure nothing else: run -pairs pairs of module ÷ pgxpool (point lookup, 8 goroutines, TCP) "+
		"with runs of each of these comma-separated durations, and print how much their ratios spread")
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
	if err == nil && (*pairs < 0 || (*pairs > 0 && *pairsMax < *pairs && *calibrate == "")) {
		err = fmt.Errorf("-pairs-max (%d) must be at least -pairs (%d), which must not be negative", *pairsMax, *pairs)
	}
	if err == nil && (*cycleRuns < 1 || *cycleRounds < 1 || *cycleRoundsMax < *cycleRounds) {
		err = fmt.Errorf("-cycle-runs and -cycle-rounds must be positive and -cycle-rounds-max at least -cycle-rounds")
	}
	var durations []time.Duration
	if err == nil && *calibrate != "" {
		durations, err = durationList(*calibrate)
	}
	cpus, cpuErr := cpuList(*serverCPUs)
	if err == nil {
		err = cpuErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := options{
		plan: plan, out: *out, setup: bench.SetupOptions{Bouncer: *bouncer, ServerCPUs: cpus},
		pairs:        bench.PairPolicy{Min: *pairs, Max: *pairsMax, Width: bench.MaxWidth},
		pairDuration: *pairDuration, calibrate: durations, appBin: *appBin, cycleDir: *cycleDir,
		cycle:  bench.CycleOptions{RunsPerRound: *cycleRuns, MinRounds: *cycleRounds, MaxRounds: *cycleRoundsMax, Width: bench.MaxWidth},
		testDB: *testDB, root: *root, cpuProfile: *cpuProfile,
	}
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "dbbench:", err)
		os.Exit(1)
	}
}

func planFrom(d time.Duration, rounds int, concurrency, workloads, transports, contenders string) (bench.Plan, error) {
	plan := bench.Plan{Duration: d, Rounds: rounds, Progress: os.Stderr, Contenders: strings.Split(contenders, ",")}
	for _, c := range plan.Contenders {
		if !slices.Contains(bench.Contenders(), c) {
			return plan, fmt.Errorf("-contenders: %q is not one of %s", c, strings.Join(bench.Contenders(), ", "))
		}
	}
	if rounds < 1 || d <= 0 {
		return plan, fmt.Errorf("-rounds and -duration must be positive")
	}
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

// durationList parses -calibrate's comma-separated durations.
func durationList(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-calibrate: %q is not a positive duration", f)
		}
		out = append(out, d)
	}
	return out, nil
}

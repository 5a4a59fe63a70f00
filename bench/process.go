package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cycle is hyperfine's timing of whole processes that start, become ready
// and stop: an fx app holding only dbmodule.Module, the whole service
// (app.New), and a plain main that makes and pings the same pool. They run
// in rounds, in an order that rotates from round to round, so that drift in
// the machine or the server weighs on the three alike.
type Cycle struct {
	Module, Service, Plain Timing // over all the runs
	Runs, Rounds           int    // runs of each binary in all, and rounds
	// ModuleRatio and ServiceRatio are module ÷ plain and service ÷ plain:
	// the median over the rounds of the ratio of the rounds' medians.
	ModuleRatio, ServiceRatio Ratio
}

// Timing is one command's times, in seconds.
type Timing struct {
	Mean, Stddev, Median, Min, Max float64
}

// timingOf summarises times, in seconds.
func timingOf(times []float64) Timing {
	if len(times) == 0 {
		return Timing{}
	}
	sorted := slices.Sorted(slices.Values(times))
	var sum, squares float64
	for _, t := range sorted {
		sum += t
	}
	mean := sum / float64(len(sorted))
	for _, t := range sorted {
		squares += (t - mean) * (t - mean)
	}
	return Timing{Mean: mean, Stddev: math.Sqrt(squares / float64(len(sorted))), Median: median(slices.Clone(sorted)),
		Min: sorted[0], Max: sorted[len(sorted)-1]}
}

// CycleBinaries are bench/cycle's three programs, built.
type CycleBinaries struct{ Module, Service, Plain string }

// CycleOptions say how many runs MeasureCycle makes: rounds of RunsPerRound
// runs of each binary, at least MinRounds, then more until both ratios' 95 %
// intervals are at most Width of their medians wide, or MaxRounds ran.
type CycleOptions struct {
	RunsPerRound, MinRounds, MaxRounds int
	Width                              float64
}

// MeasureCycle runs hyperfine (found on PATH) on the three binaries, with
// env added to their environment, in rounds as opts say, each round after
// warm-up runs and in an order that rotates from round to round.
func MeasureCycle(ctx context.Context, bins CycleBinaries, env []string, opts CycleOptions) (Cycle, error) {
	if opts.RunsPerRound < 1 || opts.MinRounds < 1 || opts.MaxRounds < opts.MinRounds {
		return Cycle{}, fmt.Errorf("cycle options %+v: want runs per round and rounds ≥ 1, max rounds ≥ min rounds", opts)
	}
	hyperfine, err := exec.LookPath("hyperfine")
	if err != nil {
		return Cycle{}, fmt.Errorf("hyperfine not found (apt-get install -y hyperfine): %w", err)
	}
	names := []string{bins.Module, bins.Service, bins.Plain}
	all := make(map[string][]float64, len(names))
	var moduleRatios, serviceRatios []float64
	narrow := func() bool {
		m, s := ratioOf(slices.Clone(moduleRatios)), ratioOf(slices.Clone(serviceRatios))
		return m.Width() >= 0 && m.Width() <= opts.Width && s.Width() >= 0 && s.Width() <= opts.Width
	}
	round := 0
	for ; round < opts.MaxRounds && (round < opts.MinRounds || !narrow()); round++ {
		order := append(slices.Clone(names[round%len(names):]), names[:round%len(names)]...)
		times, err := hyperfineTimes(ctx, hyperfine, order, env, opts.RunsPerRound)
		if err != nil {
			return Cycle{}, err
		}
		medians := make(map[string]float64, len(names))
		for name, t := range times {
			all[name] = append(all[name], t...)
			medians[name] = median(slices.Clone(t))
		}
		moduleRatios = append(moduleRatios, medians[bins.Module]/medians[bins.Plain])
		serviceRatios = append(serviceRatios, medians[bins.Service]/medians[bins.Plain])
	}
	return Cycle{
		Module: timingOf(all[bins.Module]), Service: timingOf(all[bins.Service]), Plain: timingOf(all[bins.Plain]),
		Runs: opts.RunsPerRound * round, Rounds: round,
		ModuleRatio: ratioOf(moduleRatios), ServiceRatio: ratioOf(serviceRatios),
	}, nil
}

// hyperfineTimes has hyperfine time each command runs times, after two
// warm-up runs, and returns each one's times in seconds.
func hyperfineTimes(ctx context.Context, hyperfine string, commands, env []string, runs int) (map[string][]float64, error) {
	out, err := os.CreateTemp("", "hyperfine-*.json")
	if err != nil {
		return nil, fmt.Errorf("hyperfine results: %w", err)
	}
	out.Close()
	defer os.Remove(out.Name())
	args := append([]string{"-N", "--warmup", "2", "--runs", strconv.Itoa(runs), "--export-json", out.Name()}, commands...)
	cmd := exec.CommandContext(ctx, hyperfine, args...)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("hyperfine: %w\n%s", err, b)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return nil, fmt.Errorf("hyperfine results: %w", err)
	}
	var results struct {
		Results []struct {
			Command string
			Times   []float64
		}
	}
	if err := json.Unmarshal(b, &results); err != nil {
		return nil, fmt.Errorf("hyperfine results: %w", err)
	}
	times := make(map[string][]float64, len(commands))
	for _, r := range results.Results {
		times[r.Command] = r.Times
	}
	for _, c := range commands {
		if len(times[c]) == 0 {
			return nil, fmt.Errorf("hyperfine results: no times for %s", c)
		}
	}
	return times, nil
}

// IdleRSS is the service's peak resident memory once ready and probed.
type IdleRSS struct {
	PeakKB int64 // VmHWM
	Probes int
}

// MeasureIdleRSS starts the service binary with env, waits until /readyz
// answers 200, probes /readyz and /metrics, reads its peak resident set
// size and stops it with SIGTERM.
func MeasureIdleRSS(ctx context.Context, appBin string, env []string) (IdleRSS, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return IdleRSS{}, fmt.Errorf("find a port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, appBin)
	cmd.Env = append(append(os.Environ(), env...), "HTTP_ADDR="+addr, "APP_ENV=production", "LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return IdleRSS{}, fmt.Errorf("start %s: %w", appBin, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		cmd.Wait()                          //nolint:errcheck // stopping it is all
	}()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get("/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			return IdleRSS{}, fmt.Errorf("%s never became ready", appBin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	const probes = 20
	for range probes {
		for _, path := range []string{"/readyz", "/metrics", "/healthz"} {
			if _, err := get(path); err != nil {
				return IdleRSS{}, fmt.Errorf("probe %s: %w", path, err)
			}
		}
	}
	kb, err := peakRSS(cmd.Process.Pid)
	return IdleRSS{PeakKB: kb, Probes: probes * 3}, err
}

// peakRSS reads VmHWM, the peak resident set size, of process pid.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM for process %d", pid)
}

// AllocsPerOp counts the heap allocations of n runs of o on one goroutine.
func AllocsPerOp(ctx context.Context, o op, n int) float64 {
	r := newRand(0)
	o(ctx, r) //nolint:errcheck // warm-up: caches and the first connection
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		o(ctx, r) //nolint:errcheck // counted, not checked
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n)
}

// CountAllocs counts allocations per QueryRow and per Exec of SELECT 1, over
// TCP, for every Go contender.
func CountAllocs(ctx context.Context, env *Env) (map[string]float64, error) {
	names := []string{Module, RawPgx, PgxStdlib, LibPQ}
	clients, err := connect(ctx, names, env.URL(TCP), "")
	if err != nil {
		return nil, err
	}
	defer closeAll(clients) //nolint:errcheck // measured already
	selectOne, _ := WorkloadNamed("select1")
	counts := map[string]float64{}
	for _, name := range names {
		counts[name+" QueryRow"] = AllocsPerOp(ctx, clients[name].op(selectOne), 10000)
		counts[name+" Exec"] = AllocsPerOp(ctx, clients[name].op(Workload{Name: execWorkload}), 10000)
	}
	return counts, nil
}

// Version is the server binaries' version line.
func (e *Env) Version() string {
	out, err := exec.Command(e.Server.BinDir()+"/postgres", "--version").Output()
	if err != nil {
		return "PostgreSQL"
	}
	return strings.TrimSpace(string(out))
}

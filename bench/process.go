package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cycle is hyperfine's timing of whole processes that start, become ready
// and stop: an fx app holding only dbmodule.Module, the whole service
// (app.New), and a plain main that makes and pings the same pool.
type Cycle struct {
	Module, Service, Plain Timing
	Runs                   int
}

// Timing is one command's times, in seconds.
type Timing struct {
	Mean, Stddev, Median, Min, Max float64
}

// CycleBinaries are bench/cycle's three programs, built.
type CycleBinaries struct{ Module, Service, Plain string }

// MeasureCycle runs hyperfine (found on PATH) on the three binaries, with
// env added to their environment, after warm-up runs.
func MeasureCycle(ctx context.Context, bins CycleBinaries, env []string, runs int) (Cycle, error) {
	hyperfine, err := exec.LookPath("hyperfine")
	if err != nil {
		return Cycle{}, fmt.Errorf("hyperfine not found (apt-get install -y hyperfine): %w", err)
	}
	out, err := os.CreateTemp("", "hyperfine-*.json")
	if err != nil {
		return Cycle{}, fmt.Errorf("hyperfine results: %w", err)
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.CommandContext(ctx, hyperfine, "-N", "--warmup", "5", "--runs", strconv.Itoa(runs),
		"--export-json", out.Name(), bins.Module, bins.Service, bins.Plain)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return Cycle{}, fmt.Errorf("hyperfine: %w\n%s", err, b)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		return Cycle{}, fmt.Errorf("hyperfine results: %w", err)
	}
	var results struct {
		Results []Timing `json:"results"`
	}
	if err := json.Unmarshal(b, &results); err != nil || len(results.Results) != 3 {
		return Cycle{}, fmt.Errorf("hyperfine results: %v", err)
	}
	return Cycle{Module: results.Results[0], Service: results.Results[1], Plain: results.Results[2], Runs: runs}, nil
}

// UnmarshalJSON reads hyperfine's result fields.
func (t *Timing) UnmarshalJSON(b []byte) error {
	var r struct{ Mean, Stddev, Median, Min, Max float64 }
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*t = Timing(r)
	return nil
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

// MeasureTestDatabase runs the test kit's BenchmarkNewDatabase in the module
// at root and returns its metrics: database-, template- and migrate-, each
// -p50-ms and -p95-ms.
func MeasureTestDatabase(ctx context.Context, root string) (map[string]float64, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "NewDatabase", "-benchtime", "1x", "./dbmodule/dbtest/")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench NewDatabase: %w\n%s", err, out)
	}
	metrics := map[string]float64{}
	for _, m := range regexp.MustCompile(`([\d.]+) ([a-z]+-p\d+-ms)`).FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		metrics[m[2]] = v
	}
	if len(metrics) == 0 {
		return nil, fmt.Errorf("no metrics in:\n%s", out)
	}
	return metrics, nil
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

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

// runPgbench runs pgbench for w with concurrency clients (each with a
// connection of its own: pgbench has no pool) for d, rounded to whole
// seconds, in protocol mode (prepared, extended or simple). Its latency is
// the mean it reports: the times in its per-transaction log come from a clock
// it reads lazily, and at these rates most of them are 0 µs.
func (e *Env) runPgbench(ctx context.Context, url string, w Workload, concurrency int, d time.Duration, mode string) (Sample, error) {
	target, env, err := pgbenchTarget(url)
	if err != nil {
		return Sample{}, err
	}
	dir, err := os.MkdirTemp("", "pgbench-")
	if err != nil {
		return Sample{}, fmt.Errorf("pgbench script directory: %w", err)
	}
	defer os.RemoveAll(dir)
	threads := min(concurrency, runtime.GOMAXPROCS(0)) // the CPUs the client may use; more threads only contend
	args := []string{"-n", "-c", strconv.Itoa(concurrency), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(max(1, int(d.Round(time.Second).Seconds()))), "-M", mode}
	args = append(args, w.pgbench...)
	if w.script != "" {
		script := filepath.Join(dir, w.Name+".sql")
		if err := os.WriteFile(script, []byte(w.script), 0o644); err != nil {
			return Sample{}, fmt.Errorf("pgbench script: %w", err)
		}
		args = append(args, "-f", script)
	}
	cmd := exec.CommandContext(ctx, e.pgbench, append(args, target...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Sample{}, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	s := Sample{CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if s.Ops, err = readCount(out, `number of transactions actually processed: (\d+)`); err != nil {
		return Sample{}, err
	}
	tps, err := readFloat(out, `tps = ([\d.]+) \(without initial connection time\)`)
	if err != nil {
		return Sample{}, err
	}
	// pgbench's own rate leaves out its connection set-up, as the Go
	// contenders' warm pools do.
	s.Elapsed = time.Duration(float64(s.Ops) / tps * float64(time.Second))
	if failed, err := readCount(out, `number of failed transactions: (\d+)`); err == nil {
		s.Errors = failed
	}
	ms, err := readFloat(out, `latency average = ([\d.]+) ms`)
	if err != nil {
		return Sample{}, err
	}
	s.Mean = time.Duration(ms * float64(time.Millisecond))
	return s, nil
}

func readCount(out []byte, pattern string) (int64, error) {
	m := regexp.MustCompile(pattern).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench output lacks %q:\n%s", pattern, out)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

func readFloat(out []byte, pattern string) (float64, error) {
	m := regexp.MustCompile(pattern).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench output lacks %q:\n%s", pattern, out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PgbenchMinRun is pgbench's shortest timed run: -T takes whole seconds.
const PgbenchMinRun = time.Second

// pgbenchRun is how one pgbench process was run.
type pgbenchRun struct {
	clients, threads int
	mode             string // -M: prepared, extended or simple
}

// runPgbench runs pgbench for w with the given number of clients (each with
// a connection of its own: pgbench has no pool) for d, rounded to whole
// seconds, in protocol mode (prepared, extended or simple).
//
// Its latency is the mean it reports: the times in its per-transaction log
// come from a clock it reads lazily, and at these rates most of them are
// 0 µs. Its rate leaves out its connection set-up, as the Go contenders'
// warmed pools do; so does its CPU time per operation: right after the timed
// run, the same command runs one transaction per client, and that run's CPU
// time (process start, a SCRAM login per client over TCP, preparing, exit)
// and its transactions are taken off the timed run's.
func (e *Env) runPgbench(ctx context.Context, url string, w Workload, clients int, d time.Duration, mode string) (Sample, error) {
	run := pgbenchRun{clients: clients, threads: min(clients, runtime.GOMAXPROCS(0)), mode: mode} // more threads than CPUs only contend
	seconds := max(1, int(d.Round(time.Second).Seconds()))
	// A run can fail to measure on a loaded machine: -T's clock starts
	// before the clients connect, and 32 SCRAM logins through PgBouncer
	// starved of CPU took 4 s; or the set-up run can take longer than the
	// timed one. Such a run is made again, a few times at most, a connecting
	// one for twice as long (its rate leaves the connecting out); and if
	// none measures, the sample says so rather than end the whole benchmark.
	var why error
	for range pgbenchAttempts {
		timed, err := e.pgbench1(ctx, url, w, run, "-T", strconv.Itoa(seconds))
		if errors.Is(err, errNoTransactions) {
			why, seconds = err, 2*seconds
			continue
		}
		if err != nil {
			return Sample{}, err
		}
		setup, err := e.pgbench1(ctx, url, w, run, "-t", "1")
		if err != nil {
			return Sample{}, err
		}
		s := Sample{Ops: timed.ops, Errors: timed.failed, Mean: timed.mean, Clients: clients, Threads: run.threads, Mode: mode,
			Elapsed:  time.Duration(float64(timed.ops) / timed.tps * float64(time.Second)),
			SetupCPU: setup.cpu, CPU: timed.cpu - setup.cpu, CPUOps: timed.ops - setup.ops}
		if s.CPU > 0 && s.CPUOps > 0 {
			return s, nil
		}
		why = fmt.Errorf("the set-up run's CPU time (%s) is not below the timed run's (%s)", setup.cpu, timed.cpu)
	}
	return Sample{Clients: clients, Threads: run.threads, Mode: mode,
		FirstErr: fmt.Sprintf("pgbench -c %d: %d runs measured nothing: %v", clients, pgbenchAttempts, why)}, nil
}

// pgbenchAttempts is how many times runPgbench tries for a measure.
const pgbenchAttempts = 3

// errNoTransactions is a pgbench run that processed none, its time gone
// in connecting.
var errNoTransactions = errors.New("pgbench processed no transaction: connecting took its whole run")

// pgbenchResult is what one pgbench process reported.
type pgbenchResult struct {
	ops, failed int64
	tps         float64
	mean, cpu   time.Duration
}

// pgbench1 runs one pgbench process for w, with extra saying how long.
func (e *Env) pgbench1(ctx context.Context, url string, w Workload, run pgbenchRun, extra ...string) (pgbenchResult, error) {
	target, env, err := pgbenchTarget(url)
	if err != nil {
		return pgbenchResult{}, err
	}
	dir, err := os.MkdirTemp("", "pgbench-")
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench script directory: %w", err)
	}
	defer os.RemoveAll(dir)
	args := append([]string{"-n", "-c", strconv.Itoa(run.clients), "-j", strconv.Itoa(run.threads), "-M", run.mode}, extra...)
	args = append(args, w.pgbench...)
	if w.script != "" {
		script := filepath.Join(dir, w.Name+".sql")
		if err := os.WriteFile(script, []byte(w.script), 0o644); err != nil {
			return pgbenchResult{}, fmt.Errorf("pgbench script: %w", err)
		}
		args = append(args, "-f", script)
	}
	cmd := exec.CommandContext(ctx, e.pgbench, append(args, target...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	r := pgbenchResult{cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if r.ops, err = readCount(out, `number of transactions actually processed: (\d+)`); err != nil {
		return pgbenchResult{}, err
	}
	if r.ops == 0 {
		return pgbenchResult{}, errNoTransactions
	}
	if r.tps, err = readFloat(out, `tps = ([\d.]+) \(without initial connection time\)`); err != nil {
		return pgbenchResult{}, err
	}
	if failed, err := readCount(out, `number of failed transactions: (\d+)`); err == nil {
		r.failed = failed
	}
	ms, err := readFloat(out, `latency average = ([\d.]+) ms`)
	if err != nil {
		return pgbenchResult{}, err
	}
	r.mean = time.Duration(ms * float64(time.Millisecond))
	return r, nil
}

// pgbenchTarget returns pgbench's connection options for a connection
// string, parsed by pgconn as every Go contender parses it; the password
// goes in the environment, never on a command line.
func pgbenchTarget(raw string) (args, env []string, err error) {
	cc, err := pgconn.ParseConfig(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("pgbench target: %w", err)
	}
	args = []string{"-h", cc.Host, "-p", strconv.Itoa(int(cc.Port)), "-U", cc.User, cc.Database}
	if cc.Password != "" {
		env = []string{"PGPASSWORD=" + cc.Password}
	}
	return args, env, nil
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

package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// markerVar is set in the environment of every process of a cluster, and
// inherited by everything they start (postmasters, backends, pg_autoctl's
// children), so that a cluster's processes can be found in /proc even after
// the test binary that started them died.
const markerVar = "PGCLUSTER_DIR"

// command prepares pg_autoctl (or another program) to run as the owner with
// the cluster's environment: PostgreSQL's binaries first on PATH, and
// pg_autoctl's configuration, state and pid files inside dir. Its output
// goes to logFile. The process gets a group of its own, so that Crash can
// kill a keeper with its postmaster, and SIGTERM if the test binary dies, so
// that a crashed run stops its cluster (the next Start cleans up whatever is
// left).
func (c *Cluster) command(logFile string, extraEnv []string, args ...string) (*exec.Cmd, *os.File, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", logFile, err)
	}
	cmd := exec.Command(c.autoctl, args...)
	cmd.Dir = c.dir
	cmd.Env = []string{
		"PATH=" + c.pgBin + ":/usr/bin:/bin",
		"HOME=" + c.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(c.dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(c.dir, "share"),
		"XDG_RUNTIME_DIR=" + filepath.Join(c.dir, "run"),
		"LC_ALL=C", "LANG=C",
		markerVar + "=" + c.dir,
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = log, log // files: no copying goroutines
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: c.owner.Credential()}
	return cmd, log, nil
}

// run runs pg_autoctl to completion, bounded by timeout, and returns its
// output with the error.
func (c *Cluster) run(timeout time.Duration, args ...string) (string, error) {
	logFile := filepath.Join(c.dir, "commands.log")
	cmd, log, err := c.command(logFile, nil, args...)
	if err != nil {
		return "", err
	}
	defer log.Close()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("pg_autoctl %s: %w", strings.Join(args, " "), err)
	}
	timer := time.AfterFunc(timeout, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }) //nolint:errcheck // it may have exited
	err = cmd.Wait()
	timer.Stop()
	fmt.Fprintf(log, "$ pg_autoctl %s\n%s", strings.Join(args, " "), out.String())
	if err != nil {
		return out.String(), fmt.Errorf("pg_autoctl %s: %w\n%s", strings.Join(args, " "), err, tail(out.String(), 20))
	}
	return out.String(), nil
}

// A process is a long-running pg_autoctl (a keeper or the monitor's).
type process struct {
	cmd *exec.Cmd
	log *os.File
}

func (c *Cluster) startProcess(logFile string, extraEnv []string, args ...string) (*process, error) {
	cmd, log, err := c.command(logFile, extraEnv, args...)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start pg_autoctl %s: %w", strings.Join(args, " "), err)
	}
	return &process{cmd: cmd, log: log}, nil
}

// wait waits up to timeout for the process to exit, killing its group then.
// It reaps the process, so it must be called once.
func (p *process) wait(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	defer p.log.Close()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // it may have exited
		<-done
		return fmt.Errorf("pg_autoctl (pid %d) did not stop within %s; killed it", p.cmd.Process.Pid, timeout)
	}
}

// kill kills the process's group with SIGKILL and reaps it.
func (p *process) kill() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // it may have exited
	p.cmd.Wait()                                      //nolint:errcheck // killed
	p.log.Close()
}

// killMarked kills, with SIGKILL, every process whose environment carries
// dir's marker, and waits until none is left (or ten seconds pass). It is the
// fallback when pg_autoctl stop leaves something behind, and how the next run
// cleans up after one that died.
func killMarked(dir string) error { return killEnv(markerVar + "=" + dir) }

// nodeVar marks the processes of one node, as markerVar marks a cluster's.
const nodeVar = "PGCLUSTER_NODE"

// killEnv kills every process whose environment holds the entry env.
func killEnv(env string) error {
	marker := []byte(env + "\x00")
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := marked(marker)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v marked %s survived SIGKILL", pids, env)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // it may have exited
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// marked lists the live (not zombie) processes whose environment holds marker.
func marked(marker []byte) []int {
	var pids []int
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, path := range envs {
		env, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(append(env, 0), marker) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join(filepath.Dir(path), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// lockDir takes the lock that marks dir as in use for as long as the
// returned file stays open (the kernel releases it when the process dies).
// It fails with errLocked when another live process holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open cluster lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock cluster directory: %w", err)
	}
	return f, nil
}

var errLocked = errors.New("cluster directory in use")

// cleanLeftovers removes the clusters of runs that died without Close: their
// directories under root are unlocked. A directory another live run holds
// stays. The caller holds the root's creation lock, so no directory is
// between being made and being locked.
func cleanLeftovers(root string) error {
	dirs, _ := filepath.Glob(filepath.Join(root, dirPrefix+"*"))
	var errs []error
	for _, dir := range dirs {
		lock, err := lockDir(dir)
		if errors.Is(err, errLocked) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := killMarked(dir); err != nil {
			errs = append(errs, err)
		} else if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove leftover cluster: %w", err))
		} else {
			fmt.Fprintf(os.Stderr, "pgcluster: removed the cluster an interrupted run left in %s\n", dir)
		}
		lock.Close()
	}
	return errors.Join(errs...)
}

// lockRoot serialises, across processes, cleaning up leftovers and making a
// new cluster directory, until the returned file is closed.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, "pgcluster.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

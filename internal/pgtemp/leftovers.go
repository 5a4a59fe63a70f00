package pgtemp

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A process that starts a server or a bouncer and dies without Close (a
// test binary killed by a timeout or Ctrl-C) leaves the postmaster running,
// re-parented to init, and its directory in tempRoot. Each directory
// therefore names its owner, the process that made it, and its child, the
// server or bouncer; the next Start or StartBouncer on the machine stops
// the children of dead owners and removes their directories.
const (
	ownerMark = "owner.pid"
	childMark = "child.pid"
)

// procID names a process by its pid and its start time, as pids are reused.
type procID struct {
	pid   int
	start uint64
}

func (p procID) String() string { return fmt.Sprintf("%d %d\n", p.pid, p.start) }

// alive reports whether the process still runs (and is the same process).
func (p procID) alive() bool {
	start, ok := procStart(p.pid)
	return ok && start == p.start
}

// procStart returns a process's start time, in clock ticks since boot, from
// /proc/<pid>/stat; false if there is no such (live) process.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ... starttime is field 22; comm may hold spaces
	// and parentheses, so count from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

// processID returns pid's procID; false if it does not run.
func processID(pid int) (procID, bool) {
	start, ok := procStart(pid)
	return procID{pid: pid, start: start}, ok
}

// mark records the process pid in dir's file name.
func mark(dir, name string, pid int) error {
	id, ok := processID(pid)
	if !ok {
		return nil // it has exited already, leaving nothing to stop
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(id.String()), 0o644); err != nil {
		return fmt.Errorf("mark %s: %w", name, err)
	}
	return nil
}

func readMark(path string) (procID, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procID{}, false
	}
	var id procID
	if _, err := fmt.Sscanf(string(b), "%d %d", &id.pid, &id.start); err != nil || id.pid <= 0 {
		return procID{}, false
	}
	return id, true
}

// sweepLeftovers stops the servers and bouncers whose owners died and
// removes their directories. It is best effort: what it cannot remove (say,
// another user's directory) it leaves. A directory without an owner mark
// is skipped, as its owner may be about to write it; so are the cached
// cluster and initdb's build directories, which never have one.
func sweepLeftovers() {
	dirs, _ := filepath.Glob(filepath.Join(tempRoot(), "pgtemp-*"))
	for _, dir := range dirs {
		owner, ok := readMark(filepath.Join(dir, ownerMark))
		if !ok || owner.alive() {
			continue
		}
		if child, ok := readMark(filepath.Join(dir, childMark)); ok && child.alive() {
			stop(child.pid)
		}
		os.RemoveAll(dir) //nolint:errcheck // best effort
	}
}

// stop ends a left-over child and its process group. SIGQUIT first: a
// postmaster shuts down at once but still removes its dynamic shared memory
// segments (/dev/shm/PostgreSQL.*), which SIGKILL would leave behind, two
// per server. Then SIGKILL for whatever remains of the group, whose id is
// the child's pid (see owner.command).
func stop(pid int) {
	gone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for groupAlive(pid) {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	syscall.Kill(pid, syscall.SIGQUIT) //nolint:errcheck // best effort
	if gone(5 * time.Second) {
		return
	}
	syscall.Kill(-pid, syscall.SIGKILL) //nolint:errcheck // best effort
	gone(10 * time.Second)
}

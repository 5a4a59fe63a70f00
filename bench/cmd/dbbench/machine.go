package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

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

// clientCPUs are the CPUs this process may run on, nil if unknown.
func clientCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

package pgtemp

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// tempRoot is where servers and the cached cluster live: /dev/shm when it is
// there, as a cluster copies into memory several times faster than onto a
// virtual machine's disk, else the temp directory.
func tempRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && fi.Mode()&0o002 != 0 {
		return "/dev/shm"
	}
	if dir := os.TempDir(); len(dir) <= 60 {
		return dir
	}
	return "/tmp" // a unix socket path must fit in about 100 bytes
}

// socketSafeTempDir makes a directory whose socket path fits the ~100 bytes
// a unix socket address allows, and that the server's user can enter,
// marked as ours (see sweepLeftovers).
func socketSafeTempDir() (string, error) {
	dir, err := os.MkdirTemp(tempRoot(), "pgtemp-")
	if err != nil {
		return "", fmt.Errorf("make server directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("make server directory: %w", err)
	}
	if err := mark(dir, ownerMark, os.Getpid()); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// freePort asks the kernel for a free port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pin restricts process pid to cpus; no cpus, no change.
func pin(pid int, cpus []int) error {
	if len(cpus) == 0 {
		return nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(pid, &set); err != nil {
		return fmt.Errorf("pin process %d to CPUs %v: %w", pid, cpus, err)
	}
	return nil
}

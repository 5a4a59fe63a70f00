package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BinDir returns the directory holding the PostgreSQL server binaries: the
// one initdb on PATH lives in, else pg_config --bindir, else the newest of
// Debian's /usr/lib/postgresql/<version>/bin. Running as root on a machine
// that has none, it installs Debian's postgresql package first.
func BinDir(ctx context.Context) (string, error) {
	dir, err := findBinDir(ctx)
	if err == nil {
		return dir, nil
	}
	if ierr := aptInstall(ctx, "postgresql", func() bool { _, err := findBinDir(ctx); return err == nil }); ierr != nil {
		return "", fmt.Errorf("%w; %w", err, ierr)
	}
	return findBinDir(ctx)
}

func findBinDir(ctx context.Context) (string, error) {
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versioned, func(a, b string) int { return majorOf(b) - majorOf(a) })
	candidates = append(candidates, versioned...)
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH, via pg_config or in /usr/lib/postgresql/*/bin: " +
		"install them with `apt-get install -y postgresql` (Debian, Ubuntu) or put initdb on PATH")
}

// majorOf returns the version in /usr/lib/postgresql/<version>/bin.
func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Program returns the path of a PostgreSQL-related program such as pgbouncer
// or pgbench: on PATH, or beside the server binaries. Running as root on a
// machine without it, it installs debianPackage first.
func Program(ctx context.Context, name, debianPackage string) (string, error) {
	find := func() (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		if dir, err := findBinDir(ctx); err == nil && isExecutable(filepath.Join(dir, name)) {
			return filepath.Join(dir, name), nil
		}
		return "", fmt.Errorf("%s not found: install it with `apt-get install -y %s`", name, debianPackage)
	}
	p, err := find()
	if err == nil {
		return p, nil
	}
	if ierr := aptInstall(ctx, debianPackage, func() bool { _, err := find(); return err == nil }); ierr != nil {
		return "", fmt.Errorf("%w; %w", err, ierr)
	}
	return find()
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// aptInstall installs a Debian package when running as root with apt-get.
// Test binaries of several packages may get here at once, and apt-get refuses
// to run twice, so installs are serialised by a lock file and skipped when
// present() says another process already installed the package.
func aptInstall(ctx context.Context, pkg string, present func() bool) error {
	if os.Geteuid() != 0 {
		return errors.New("not installing it: not running as root")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("not installing it: apt-get not found")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "pgtemp-apt.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open apt lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("take apt lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file releases it too
	if present() {
		return nil
	}
	fmt.Fprintf(os.Stderr, "pgtemp: installing %s with apt-get\n", pkg)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "apt-get update -qq && apt-get install -y -qq "+pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", pkg, err, tail(out, 20))
	}
	return nil
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

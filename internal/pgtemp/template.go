package pgtemp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// initdbFlags are the cluster options; changing them changes the cache key.
const initdbFlags = "--username=postgres --auth-local=trust --auth-host=scram-sha-256 " +
	"--encoding=UTF8 --locale=C --wal-segsize=1 --no-sync --no-instructions"

// cluster is a cached, never-started cluster made by initdb.
type cluster struct {
	dataDir  string
	password string
}

// templateCluster returns the cached cluster for the binaries in binDir and
// this owner, making it first if needed. Concurrent callers in other processes
// may each build one; the first rename wins and the others use it.
func templateCluster(ctx context.Context, binDir string, o owner) (cluster, error) {
	version, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return cluster{}, fmt.Errorf("postgres --version: %w", err)
	}
	key := sha256.Sum256([]byte(fmt.Sprint(binDir, string(version), o.uid, initdbFlags)))
	dir := filepath.Join(tempRoot(), "pgtemp-cluster-"+hex.EncodeToString(key[:6]))
	if c, err := readCluster(dir); err == nil {
		return c, nil
	}

	build, err := os.MkdirTemp(tempRoot(), "pgtemp-build-")
	if err != nil {
		return cluster{}, fmt.Errorf("make initdb directory: %w", err)
	}
	defer os.RemoveAll(build)
	if err := os.Chmod(build, 0o755); err != nil {
		return cluster{}, fmt.Errorf("make initdb directory: %w", err)
	}
	password := rand.Text()
	pwfile := filepath.Join(build, "password")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return cluster{}, fmt.Errorf("write password file: %w", err)
	}
	if err := o.own(build); err != nil {
		return cluster{}, fmt.Errorf("hand initdb directory to the server user: %w", err)
	}
	args := append([]string{"-D", filepath.Join(build, "data"), "--pwfile=" + pwfile}, strings.Fields(initdbFlags)...)
	cmd := o.command(ctx, filepath.Join(binDir, "initdb"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return cluster{}, fmt.Errorf("initdb: %w\n%s", err, tail(out, 20))
	}
	if err := os.Rename(build, dir); err != nil {
		if c, rerr := readCluster(dir); rerr == nil {
			return c, nil // another process won the race
		}
		return cluster{}, fmt.Errorf("store initdb cluster: %w", err)
	}
	return readCluster(dir)
}

func readCluster(dir string) (cluster, error) {
	pw, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return cluster{}, err
	}
	data := filepath.Join(dir, "data")
	for _, f := range []string{"PG_VERSION", "global/pg_control"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			return cluster{}, err
		}
	}
	password := strings.TrimSpace(string(pw))
	if password == "" {
		return cluster{}, errors.New("empty password file")
	}
	return cluster{dataDir: data, password: password}, nil
}

// copyTree copies the cluster at src to dst, preserving modes and owners.
func copyTree(ctx context.Context, src, dst string) error {
	if out, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy cluster: %w: %s", err, out)
	}
	return nil
}

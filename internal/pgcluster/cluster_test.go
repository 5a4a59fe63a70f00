package pgcluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A run killed before Close leaves a directory and processes; the next
// Start's cleanup kills them and removes the directory, and leaves alone the
// directory of a run that is still alive.
func TestCleansUpAfterAnInterruptedRun(t *testing.T) {
	root := t.TempDir()
	dead := filepath.Join(root, dirPrefix+"dead")
	live := filepath.Join(root, dirPrefix+"live")
	for _, d := range []string{dead, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "600")
	sleeper.Env = []string{markerVar + "=" + dead}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleeper.Wait(); close(exited) }() //nolint:errcheck // killed
	defer sleeper.Process.Kill()                  //nolint:errcheck // if the test fails
	lock, err := lockDir(live)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()

	if err := cleanLeftovers(root); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover's process is still running")
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("leftover directory still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live run's directory was removed: %v", err)
	}
}

// The cluster starts with one primary and one standby, the multi-host URLs
// pick each by role, a switchover swaps them, and Close leaves no process
// and no directory behind.
func TestClusterSwitchoverAndClose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a cluster (about 20s)")
	}
	if _, err := exec.LookPath("pg_autoctl"); err != nil {
		// The root module's tests need only PostgreSQL; the reliability
		// module's cluster suite, which make test and CI run with
		// pg_auto_failover installed, builds clusters all the same.
		t.Skip("pg_auto_failover is not installed: " + err.Error())
	}
	ctx := context.Background()
	start := time.Now()
	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %s", time.Since(start).Round(time.Millisecond))
	defer c.Close()
	recovery := func(url string) bool {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var r bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	before, err := c.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if recovery(c.PrimaryURL("postgres")) || !recovery(c.ReadURL("postgres", "standby")) || recovery(before.URL("postgres")) {
		t.Fatal("the URLs do not reach the nodes of their roles")
	}
	start = time.Now()
	if err := c.Switchover(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover and healthy again in %s", time.Since(start).Round(time.Millisecond))
	after, err := c.Primary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after == before || !recovery(before.URL("postgres")) {
		t.Errorf("primary before %s, after %s", before.Name, after.Name)
	}

	dir := c.Dir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if pids := marked([]byte(markerVar + "=" + dir + "\x00")); len(pids) > 0 {
		t.Errorf("processes left after Close: %v", pids)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // cleanup
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory left after Close: %v", err)
	}
}

package pgcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The cluster itself is exercised by the reliability suite's Cluster
// tests, whose TestMain fails when Close leaves a process or a directory
// behind; the root module's tests need no pg_auto_failover.

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

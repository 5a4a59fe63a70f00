// Package cmdtest helps the tests of the commands in cmd/ run them as
// processes, the way users do.
package cmdtest

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles the command in the test's package directory into a
// temporary directory and returns the binary's path.
func Build(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/fxpg/fxpg/internal/cmdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsCommandAgainstThrowawayServer(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql comes with Debian's postgresql package: %v", err)
	}
	script := `test "$DATABASE_URL" = "$DIRECT_URL" && ` + psql + ` "$DATABASE_URL" -Atc 'SELECT 40 + 2' && exit 7`
	cmd := exec.Command(cmdtest.Build(t, "devdb"), "--", "sh", "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit code = %d, want the command's 7\n%s", code, stderr.String())
	}
	if strings.TrimSpace(string(out)) != "42" {
		t.Errorf("the command's query printed %q, want 42", out)
	}

	// devdb names the server without its password, and removes it.
	log := stderr.String()
	if !strings.Contains(log, "postgres://xxxxx@127.0.0.1:") {
		t.Errorf("devdb should print the URL with its password hidden:\n%s", log)
	}
	_, after, ok := strings.Cut(log, "(data in ")
	dir, _, _ := strings.Cut(after, ",")
	if !ok || dir == "" {
		t.Fatalf("devdb did not say where its data is:\n%s", log)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server directory %s left behind", dir)
	}
}

package main_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/cmdtest"
)

var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// running is the command started with env, in dir.
type running struct {
	cmd    *exec.Cmd
	addr   string
	output strings.Builder
	done   chan error
}

var listening = regexp.MustCompile(`"addr":\s?"([^"]+)"`)

func start(t *testing.T, bin, dir string, env ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(bin), done: make(chan error, 1)}
	r.cmd.Dir = dir
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			r.output.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil && strings.Contains(line, "http server listening") {
				addrs <- m[1]
			}
		}
		r.done <- r.cmd.Wait()
	}()
	select {
	case r.addr = <-addrs:
	case err := <-r.done:
		t.Fatalf("app exited before listening: %v\n%s", err, r.output.String())
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		t.Fatalf("app did not start listening:\n%s", r.output.String())
	}
	return r
}

func (r *running) get(t *testing.T, path string) int {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + r.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends sig and returns the exit code.
func (r *running) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Fatal("app did not stop after a signal")
	}
	return r.cmd.ProcessState.ExitCode()
}

func TestGracefulShutdownOnSignals(t *testing.T) {
	bin := cmdtest.Build(t, "app")
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			r := start(t, bin, t.TempDir(), "APP_ENV=production", "HTTP_ADDR=127.0.0.1:0", "DATABASE_URL="+pg.URL(t))
			if code := r.get(t, "/readyz"); code != http.StatusOK {
				t.Errorf("/readyz = %d", code)
			}
			if code := r.stop(t, sig); code != 0 {
				t.Errorf("exit code after %s = %d\n%s", sig, code, r.output.String())
			}
			if !strings.Contains(r.output.String(), `"msg":"database pool closed"`) {
				t.Errorf("no JSON 'database pool closed' line in:\n%s", r.output.String())
			}
		})
	}
}

func TestEnvFileInDevelopment(t *testing.T) {
	bin := cmdtest.Build(t, "app")
	dir := t.TempDir()
	env := "APP_ENV=development\nLOG_LEVEL=debug\nDATABASE_URL=" + pg.URL(t) + "\nHTTP_ADDR=127.0.0.1:1\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	// The real HTTP_ADDR wins over the file's, which would fail to bind.
	r := start(t, bin, dir, "HTTP_ADDR=127.0.0.1:0")
	if code := r.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d", code)
	}
	r.stop(t, syscall.SIGTERM)
	out := r.output.String()
	if !strings.Contains(out, "\tDEBUG\t") || strings.Contains(out, `"msg":`) {
		t.Errorf("want console logs at debug from the .env file, got:\n%s", out)
	}
}

func TestStartFailureExitsNonZero(t *testing.T) {
	bin := cmdtest.Build(t, "app")
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"APP_ENV=production", "HTTP_ADDR=127.0.0.1:0", "DB_MAX_CONNS=many"}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || err == nil {
		t.Fatalf("exit code = %d, want 1", cmd.ProcessState.ExitCode())
	}
	for _, want := range []string{"DB_MAX_CONNS", "DATABASE_URL", "DIRECT_URL"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}

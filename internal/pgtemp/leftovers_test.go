package pgtemp_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/internal/pgtemp"
)

// TestHelperOrphan plays a test binary that is killed: it starts a server
// and exits without closing it.
func TestHelperOrphan(t *testing.T) {
	if os.Getenv("PGTEMP_HELPER") != "orphan" {
		t.Skip("a child process's test")
	}
	srv, err := pgtemp.Start(context.Background(), pgtemp.Options{})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ORPHAN", srv.Dir())
	os.Exit(0)
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// running reports whether pid is a live process, not a zombie: the
// orphan's parent is gone, and whoever adopts it may never reap it.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

func TestServerOfADeadOwnerIsSwept(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOrphan$")
	cmd.Env = append(os.Environ(), "PGTEMP_HELPER=orphan")
	out, err := cmd.Output()
	dir, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "ORPHAN ")
	if err != nil || !ok {
		t.Fatalf("child: %v\n%s", err, out)
	}
	pid := postmasterPID(t, dir)
	if !running(pid) {
		t.Fatalf("the orphaned postmaster %d is not running", pid)
	}
	segments := sharedMemoryOf(t, pid)

	srv, err := pgtemp.Start(context.Background(), pgtemp.Options{}) // sweeps
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the dead owner's directory %s is still there (%v)", dir, err)
	}
	if running(pid) {
		syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // don't leave it
		t.Errorf("the dead owner's postmaster %d still runs", pid)
	}
	if _, err := os.Stat(srv.Dir()); err != nil {
		t.Errorf("the live server's directory: %v", err)
	}
	for _, seg := range segments {
		if _, err := os.Stat(seg); !os.IsNotExist(err) {
			t.Errorf("the dead owner's server left its shared memory segment %s (%v)", seg, err)
		}
	}
}

// sharedMemoryOf lists the dynamic shared memory segments in /dev/shm that
// process pid maps.
func sharedMemoryOf(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(f[5], "/dev/shm/PostgreSQL.") && !slices.Contains(segs, f[5]) {
			segs = append(segs, f[5])
		}
	}
	if len(segs) == 0 {
		t.Fatalf("postmaster %d maps no /dev/shm/PostgreSQL.* segment: %s", pid, b)
	}
	return segs
}

func TestHBALinesComeFirst(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{HBA: []string{"host all trusted 127.0.0.1/32 trust"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	admin := connectOrFail(t, srv.SocketURL("postgres"))
	for _, q := range []string{"CREATE ROLE trusted LOGIN PASSWORD 'right'", "CREATE ROLE checked LOGIN PASSWORD 'right'"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tcp := func(user, password string) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", user, password, srv.Port())
	}
	if err := selectOne(tcp("trusted", "wrong")); err != nil {
		t.Errorf("the trusted role over TCP with a wrong password: %v", err)
	}
	if err := selectOne(tcp("checked", "wrong")); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("another role over TCP with a wrong password = %v, want SCRAM to refuse it", err)
	}
	if err := selectOne(tcp("checked", "right")); err != nil {
		t.Errorf("another role over TCP with its password: %v", err)
	}

	if _, err := pgtemp.Start(ctx, pgtemp.Options{HBA: []string{"host all a 127.0.0.1/32 trust\nhost all all 0.0.0.0/0 trust"}}); err == nil ||
		!strings.Contains(err.Error(), "Options.HBA") {
		t.Errorf("Start with a line break in an HBA line = %v, want an error naming Options.HBA", err)
	}
}

func connectOrFail(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

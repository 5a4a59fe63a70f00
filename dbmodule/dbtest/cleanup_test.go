package dbtest_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

// helperEnv makes this test binary, run again as a child process, play a
// test binary that fails or that is killed.
const helperEnv = "DBTEST_HELPER"

func TestHelperFails(t *testing.T) {
	if os.Getenv(helperEnv) != "fail" {
		t.Skip("a child process's test")
	}
	pg.Database(t)
	t.Error("failing on purpose")
}

func TestHelperHangs(t *testing.T) {
	if os.Getenv(helperEnv) != "hang" {
		t.Skip("a child process's test")
	}
	os.Stdout.WriteString("READY " + databaseName(t, pg.Database(t)) + "\n")
	<-t.Context().Done() // until killed
}

// child starts this test binary as a test binary of its own on pg's server.
func child(t *testing.T, mode, test string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "TEST_DATABASE_URL="+pg.URL(t))
	return cmd
}

// ownedLike lists the databases of the owner of clone name.
func ownedLike(t *testing.T, name string) []string {
	t.Helper()
	prefix := name[:len("dbtest_c_")+8]
	rows, err := connect(t, pg.URL(t)).Query(context.Background(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1", prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// nextRun starts the kit of another test binary on pg's server, as the
// next run would.
func nextRun(t *testing.T) {
	t.Helper()
	s := onServer(t, &dbtest.Server{Migrations: store.Migrations()})
	s.Database(t)
}

func TestFailedTestKeepsItsDatabase(t *testing.T) {
	out, err := child(t, "fail", "TestHelperFails").CombinedOutput()
	if err == nil {
		t.Fatalf("the failing child passed:\n%s", out)
	}
	m := regexp.MustCompile(`dbtest: the failed test's database (dbtest_c_\w+) is kept on TEST_DATABASE_URL's server until the next test run there drops it`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the failed test's log does not name its kept database:\n%s", out)
	}
	kept := string(m[1])
	// The child's Main dropped the clones no test took, not the kept one.
	if left := ownedLike(t, kept); len(left) != 1 || left[0] != kept {
		t.Errorf("after the failed run its databases are %v, want only the kept %s", left, kept)
	}
	nextRun(t)
	if left := ownedLike(t, kept); len(left) != 0 {
		t.Errorf("after the next run the failed run's databases are %v, want none", left)
	}
}

func TestInterruptedRunIsSweptByTheNext(t *testing.T) {
	cmd := child(t, "hang", "TestHelperHangs")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()         //nolint:errcheck // killed
	defer cmd.Process.Kill() //nolint:errcheck // it may have exited
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- name
			}
		}
		close(ready)
	}()
	var name string
	select {
	case name = <-ready:
	case <-time.After(time.Minute):
		t.Fatal("the child never got its database")
	}
	if name == "" {
		t.Fatal("the child exited before it got its database")
	}
	// Its prepared clones are made in the background: wait for the first.
	dbtest.WaitFor(t, "the child to prepare clones", func() bool { return len(ownedLike(t, name)) >= 2 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()        //nolint:errcheck // killed
	for range ready { // let the reader finish
	}
	if left := ownedLike(t, name); len(left) < 2 {
		t.Fatalf("the killed run left %v; want its handed-out and prepared databases", left)
	}
	// The server ends the killed client's sessions, and so releases its
	// lock, when it notices; the next run must not start before that, or it
	// would see the killed run alive.
	admin := connect(t, pg.URL(t))
	dbtest.WaitFor(t, "the killed run's sessions to end", func() bool {
		var held bool
		err := admin.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_locks
			WHERE locktype = 'advisory' AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = 2)`, dbtest.LockOwner, ownerNum(name)).Scan(&held)
		return err == nil && !held
	})
	nextRun(t)
	if left := ownedLike(t, name); len(left) != 0 {
		t.Errorf("after the next run the killed run's databases are %v, want none", left)
	}
}

func ownerNum(name string) int64 {
	n, _ := strconv.ParseInt(name[len("dbtest_c_"):][:8], 16, 64)
	return n
}

func TestCloseDropsWhatNoTestTook(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", pg.URL(t))
	s := dbtest.Server{Migrations: store.Migrations()}
	db, _, err := s.NewDatabase(context.Background()) // never released: kept
	if err != nil {
		t.Fatal(err)
	}
	kept := databaseName(t, db)
	dbtest.WaitFor(t, "clones to be prepared", func() bool { return len(ownedLike(t, kept)) >= 3 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left := ownedLike(t, kept); len(left) != 1 || left[0] != kept {
		t.Errorf("after Close the Server's databases are %v, want only the one handed out, %s", left, kept)
	}
	if _, _, err := s.NewDatabase(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("NewDatabase after Close = %v, want an error saying the Server is closed", err)
	}
	nextRun(t) // drops the kept one
}

package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// warmPool opens a pool of n connections on url, all idle, and returns the
// backend PIDs of its connections.
func warmPool(t *testing.T, url string, n int32) (*pgxpool.Pool, *observer.ObservedLogs, []uint32) {
	t.Helper()
	ctx := context.Background()
	core, logs := observer.New(zapcore.DebugLevel)
	pool, err := dbmodule.Open(ctx, config.DB{URL: url, MaxConns: n}, dbmodule.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	conns := make([]*pgxpool.Conn, n)
	pids := make([]uint32, n)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		pids[i] = conns[i].Conn().PgConn().PID()
	}
	for _, c := range conns {
		c.Release()
	}
	return pool, logs, pids
}

// pidsInUse runs n queries one after another and returns the backend PIDs
// they ran on, and how many failed.
func pidsInUse(pool *pgxpool.Pool, n int) (map[uint32]bool, int) {
	pids := map[uint32]bool{}
	failed := 0
	for range n {
		var pid uint32
		if err := pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			failed++
			continue
		}
		pids[pid] = true
	}
	return pids, failed
}

// A single pg_terminate_backend costs only its connection: the pool's other
// connections stay, checked by a ping rather than dropped.
func TestOneLostConnectionCostsOnlyItself(t *testing.T) {
	ctx := context.Background()
	pool, _, pids := warmPool(t, pg.URL(t), 4)
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := held.Conn().PgConn().PID()
	admin, err := pgx.Connect(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", victim); err != nil {
		t.Fatal(err)
	}
	_, err = held.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("query on the terminated connection: %v, want 57P01", err)
	}
	held.Release()

	_, failed := pidsInUse(pool, 20)
	// Hold three connections at once: they are the three the pool had.
	kept := 0
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		if pid := c.Conn().PgConn().PID(); pid != victim && slices.Contains(pids, pid) {
			kept++
		}
	}
	opened := pool.Stat().NewConnsCount()
	t.Logf("after one of 4 backends was terminated: %d queries failed, %d of the 3 others kept, %d connections opened in all",
		failed, kept, opened)
	if failed > 0 || kept != 3 || opened != 4 {
		t.Errorf("%d queries failed, %d of the other 3 connections kept, %d opened; want 0, 3 and 4", failed, kept, opened)
	}
}

// A server crash (SIGKILL of one backend: the postmaster kills the others
// and restarts) costs one failed query: the dead connections are dropped on
// their way out of the pool, and the ones opened after the crash stay even
// when older connections report the crash later.
func TestCrashCostsOneFailure(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pool, _, _ := warmPool(t, srv.URL("postgres"), 4)
	acquire := func() *pgxpool.Conn {
		t.Helper()
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release) // a no-op once released; lets the pool close after a failure
		return c
	}
	first, late, idle := acquire(), acquire(), acquire()
	victim := idle.Conn().PgConn().PID()
	idle.Release()
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	old := []uint32{first.Conn().PgConn().PID(), late.Conn().PgConn().PID()}
	dbtest.WaitFor(t, "crash recovery", func() bool {
		c, err := pgx.Connect(ctx, srv.URL("postgres"))
		if err != nil {
			return false
		}
		defer c.Close(ctx)
		var gone bool
		err = c.QueryRow(ctx, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY($1))", old).Scan(&gone)
		return err == nil && gone
	})
	if _, err := first.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection from before the crash still works")
	}
	first.Release()
	fresh := acquire()
	freshPID := fresh.Conn().PgConn().PID()
	if _, err := late.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a connection from before the crash still works")
	}
	late.Release()
	fresh.Release()

	used, failed := pidsInUse(pool, 20)
	t.Logf("after a crash: %d more queries failed, the connection opened after it kept: %v", failed, used[freshPID])
	if failed > 0 || !used[freshPID] {
		t.Errorf("%d queries failed, fresh connection kept %v; want 0, true", failed, used[freshPID])
	}
}

// With target_session_attrs=read-write over two servers, a primary that
// turns read-only (default_transaction_read_only, as a fencing or demotion
// does) is left for the other at its first refused write, instead of being
// used for as long as its connections live; the refused write is sent to
// the other.
func TestDemotedPrimaryIsLeft(t *testing.T) {
	ctx := context.Background()
	a, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readOnly := func(srv *pgtemp.Server, on bool) {
		t.Helper()
		c, err := pgx.Connect(ctx, srv.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		for _, sql := range []string{fmt.Sprintf("ALTER SYSTEM SET default_transaction_read_only = %v", on), "SELECT pg_reload_conf()"} {
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, srv := range []*pgtemp.Server{a, b} {
		c, err := pgx.Connect(ctx, srv.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "CREATE TABLE written (port int)"); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	readOnly(b, true)
	url := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		a.Password(), a.Port(), b.Port())
	pool, logs, _ := warmPool(t, url, 4)

	readOnly(b, false)
	readOnly(a, true)
	// Backends take the reload at their own pace: a few writes may still
	// land on the old primary before it refuses them. The Querier sends a
	// refused write again, to the other server.
	q := dbmodule.NewQuerier(pool, nil)
	write := func(n int) (failed int, last error) {
		for range n {
			if _, err := q.Exec(ctx, "INSERT INTO written SELECT current_setting('port')::int"); err != nil {
				failed++
				last = err
			}
		}
		return failed, last
	}
	failed, last := write(50)
	countOnB := func() int {
		t.Helper()
		c, err := pgx.Connect(ctx, b.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM written").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	onB := countOnB()
	laterFailed, _ := write(20)
	later := countOnB() - onB
	t.Logf("after the primary turned read-only: %d of 50 writes failed (last: %v), %d landed on the other server; then %d of 20 on it",
		failed, last, onB, later)
	if failed > 0 || laterFailed > 0 || later != 20 {
		t.Errorf("%d then %d writes failed, %d of the last 20 on the writable server; want none failed, then all 20 there", failed, laterFailed, later)
	}
	if n := logs.FilterMessage("dropping every connection to a database server").Len(); n != 1 {
		t.Errorf("drop logged %d times, want once", n)
	}
}

// An outage is two log lines, however many connects fail in it.
func TestOutageIsLoggedOnce(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pool, logs, _ := warmPool(t, srv.URL("postgres"), 2)
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		pool.Exec(ctx, "SELECT 1") //nolint:errcheck // failing is the point
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "queries to succeed again", func() bool {
		_, err := pool.Exec(ctx, "SELECT 1")
		return err == nil
	})
	down := logs.FilterMessage("database unreachable").All()
	up := logs.FilterMessage("database reachable again").All()
	warns := logs.FilterLevelExact(zapcore.WarnLevel).Len()
	if len(down) != 1 || len(up) != 1 || warns != 1 {
		t.Fatalf("outage logged as %d unreachable, %d reachable, %d warnings; want 1, 1, 1: %v", len(down), len(up), warns, logs.All())
	}
	n, _ := up[0].ContextMap()["failed_connects"].(int64)
	t.Logf("one outage: %q then %q after %d failed connects", down[0].Message, up[0].Message, n)
	// Back to back, the queries meet the pool's backoff (gate.go): the
	// first failed connect holds the next ones back, undialed.
	if n < 1 {
		t.Errorf("failed_connects = %d, want at least the first", n)
	}
}

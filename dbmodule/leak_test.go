package dbmodule_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// guardedPool opens a pool on the test server with cfg's guardrails, logging
// to an observer, and returns its Guard too.
func guardedPool(t *testing.T, cfg config.DB, passwords dbmodule.PasswordProvider) (*pgxpool.Pool, *dbmodule.Guard, *observer.ObservedLogs) {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pg.URL(t)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg, Logger: log, Passwords: passwords})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := dbmodule.Open(context.Background(), cfg, dbmodule.WithLogger(log), dbmodule.WithGuard(guard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dbmodule.Close(ctx, pool); err != nil {
			t.Errorf("close pool: %v", err)
		}
	})
	return pool, guard, logs
}

const leakMessage = "database connection held longer than DB_LEAK_THRESHOLD"

func leakReports(logs *observer.ObservedLogs) []observer.LoggedEntry {
	return logs.FilterMessageSnippet(leakMessage).All()
}

// A Rows never closed, a Tx never ended and an Acquire never released are
// each reported once, within the threshold plus a second, with a stack whose
// first frame is this test, not pgx or the module.
func TestLeaksAreReportedWithTheAcquiringStack(t *testing.T) {
	const threshold = 300 * time.Millisecond
	pool, guard, logs := guardedPool(t, config.DB{LeakThreshold: threshold}, nil)
	ctx := context.Background()

	start := time.Now()
	rows, err := pool.Query(ctx, "SELECT generate_series(1, 3)") // leaked Rows
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	tx, err := pool.Begin(ctx) // leaked Tx
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)         //nolint:errcheck // test cleanup
	conn, err := pool.Acquire(ctx) // leaked Acquire
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	dbtest.WaitFor(t, "three leak reports", func() bool { return len(leakReports(logs)) >= 3 })
	took := time.Since(start)
	t.Logf("three leaks reported %s after the first acquire", took)
	if took > threshold+time.Second {
		t.Errorf("reported after %s, want within the threshold (%s) plus 1s", took, threshold)
	}
	const me = "github.com/fxpg/fxpg/dbmodule_test.TestLeaksAreReportedWithTheAcquiringStack"
	f := leakReports(logs)[0].ContextMap()
	t.Logf("a report: held %v, acquired by %v, stack:\n%v", f["held"], f["acquired_by"], f["stack"])
	for _, e := range leakReports(logs) {
		f := e.ContextMap()
		if e.Level != zapcore.WarnLevel {
			t.Errorf("leak logged at %s, want warn", e.Level)
		}
		if by := f["acquired_by"].(string); !strings.HasPrefix(by, me+" ") || !strings.Contains(by, "leak_test.go:") {
			t.Errorf("acquired_by = %q, want this test's frame", by)
		}
		stack := f["stack"].(string)
		if !strings.HasPrefix(stack, me+"\n") {
			t.Errorf("stack does not start at this test:\n%s", stack)
		}
		if strings.Contains(stack, "jackc/pgx") || strings.Contains(stack, "fxpg/dbmodule.") {
			t.Errorf("stack keeps library frames:\n%s", stack)
		}
		if held := f["held"].(time.Duration); held < threshold {
			t.Errorf("held = %s, below the threshold", held)
		}
		if f["pid"].(uint32) == 0 {
			t.Error("no pid")
		}
	}
	if s := guard.Stats(); s.Leaks != 3 || s.HeldConns != 3 {
		t.Errorf("stats = %v, want 3 leaks and 3 held", s)
	}

	// Reported once per hold, however long it lasts: a later report would
	// come from the same scans as this new leak's.
	conn2, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the fourth leak report", func() bool { return len(leakReports(logs)) >= 4 })
	if n := len(leakReports(logs)); n != 4 {
		t.Errorf("%d leak reports, want 4: each leak once", n)
	}
	conn2.Release()
	rows.Close()
	dbtest.WaitFor(t, "the return to be logged", func() bool {
		return logs.FilterMessageSnippet("reported as leaked came back").Len() == 2
	})
}

// A connection released before the threshold is never reported: the Rows,
// Tx and Acquire here end in time, while one more is held past it, so that
// the scans that would have caught the others do run.
func TestConnectionsReleasedInTimeAreNotReported(t *testing.T) {
	const threshold = 400 * time.Millisecond
	pool, guard, logs := guardedPool(t, config.DB{LeakThreshold: threshold}, nil)
	ctx := context.Background()

	long, err := pool.Acquire(ctx)
	longLine := lineAbove()
	if err != nil {
		t.Fatal(err)
	}
	defer long.Release()
	for range 50 {
		var n int
		if err := pool.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, "SELECT pg_sleep(0.1)")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.1)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Release()

	dbtest.WaitFor(t, "the long hold to be reported", func() bool { return len(leakReports(logs)) >= 1 })
	reports := leakReports(logs)
	if len(reports) != 1 {
		t.Fatalf("%d reports, want only the long hold's: %v", len(reports), reports)
	}
	if by := reports[0].ContextMap()["acquired_by"].(string); !strings.HasSuffix(by, longLine) {
		t.Errorf("reported %q, want the long hold acquired just before line %s", by, longLine)
	}
	if s := guard.Stats(); s.Leaks != 1 {
		t.Errorf("stats = %v, want 1 leak", s)
	}
}

// lineAbove returns "file.go:N" for the line above its caller's.
func lineAbove() string {
	_, file, n, _ := runtime.Caller(1)
	return filepath.Base(file) + ":" + strconv.Itoa(n-1)
}

// The scanner runs only while connections are held: once none is, it ends
// by itself, so a pool without fx leaves no goroutine behind.
func TestLeakScannerStopsWhenNothingIsHeld(t *testing.T) {
	pool, _, _ := guardedPool(t, config.DB{LeakThreshold: 100 * time.Millisecond}, nil)
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the leak scanner to stop", func() bool { return !goroutineRuns("(*leakDetector).scan") })
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the leak scanner to stop again", func() bool { return !goroutineRuns("(*leakDetector).scan") })
}

func goroutineRuns(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// With no guardrail set, pgxpool has no acquire or release tracer to call
// and no BeforeClose hook: nothing on the query path.
func TestGuardsOffInstallNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  config.DB
		on   bool
	}{
		{"off", config.DB{}, false},
		{"leak", config.DB{LeakThreshold: time.Second}, true},
		{"acquire timeout", config.DB{AcquireTimeout: time.Second}, true},
	} {
		tt.cfg.URL = "postgres://app@db/app"
		pc, err := dbmodule.ParseConfig(tt.cfg, dbmodule.WithLogger(zap.NewNop()))
		if err != nil {
			t.Fatal(err)
		}
		_, acquire := pc.ConnConfig.Tracer.(pgxpool.AcquireTracer)
		_, release := pc.ConnConfig.Tracer.(pgxpool.ReleaseTracer)
		if acquire != tt.on || release != tt.on {
			t.Errorf("%s: pool tracers installed: acquire %v, release %v; want %v", tt.name, acquire, release, tt.on)
		}
		if (pc.BeforeClose != nil) != (tt.name == "leak") {
			t.Errorf("%s: BeforeClose installed: %v", tt.name, pc.BeforeClose != nil)
		}
	}
}

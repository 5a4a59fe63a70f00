package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// observed returns a logger that records every entry, for assertions.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// withParams adds query parameters to a URL.
func withParams(t *testing.T, raw string, kv ...string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestModuleLifecycle(t *testing.T) {
	log, logs := observed()
	var (
		pool *pgxpool.Pool
		q    dbmodule.Querier
	)
	db := pg.Database(t)
	app := fxtest.New(t,
		dbmodule.Module,
		fx.Replace(db),
		fx.Supply(log),
		fx.Populate(&pool, &q),
	)
	if n := pool.Stat().TotalConns(); n != 0 {
		t.Fatalf("pool has %d connections before start; construction must do no I/O", n)
	}
	app.RequireStart()

	var one int
	acquires := pool.Stat().AcquireCount()
	if err := q.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query through Querier = %d, %v", one, err)
	}
	if pool.Stat().AcquireCount() != acquires+1 {
		t.Error("Querier does not run on the pool")
	}
	opened := logs.FilterMessage("database pool opened").All()
	if len(opened) != 1 {
		t.Fatalf("want one 'database pool opened' entry, got %d", len(opened))
	}
	fields := opened[0].ContextMap()
	for _, k := range []string{"host", "port", "database", "user", "max_conns"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("'database pool opened' lacks field %q: %v", k, fields)
		}
	}
	if fields["max_conns"] != int32(10) {
		t.Errorf("max_conns = %v, want 10", fields["max_conns"])
	}

	app.RequireStop()
	if _, err := pool.Acquire(context.Background()); !errors.Is(err, puddle.ErrClosedPool) {
		t.Errorf("Acquire after stop = %v, want the closed-pool error", err)
	}
	if n := logs.FilterMessage("database pool closed").Len(); n != 1 {
		t.Errorf("want one 'database pool closed' entry, got %d", n)
	}
	assertNoSecret(t, logs, db.URL)
}

// assertNoSecret fails if any log entry carries the password of url.
func assertNoSecret(t *testing.T, logs *observer.ObservedLogs, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := u.User.Password()
	if !ok {
		return
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), pw) {
			t.Errorf("log entry %q carries the password: %v", e.Message, e.ContextMap())
		}
	}
}

func TestModuleWorksWithoutLogger(t *testing.T) {
	var q dbmodule.Querier
	app := fxtest.New(t, dbmodule.Module, pg.Module(t), fx.Populate(&q))
	app.RequireStart()
	defer app.RequireStop()
	if _, err := q.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}

// Nothing is dialed before the app starts, not even the connections
// DB_MIN_CONNS asks for, which pgxpool starts opening as soon as the pool
// exists (issue 10, item 8).
func TestNothingIsDialedBeforeStart(t *testing.T) {
	name := fmt.Sprintf("lazy-%d", time.Now().UnixNano())
	cfg := config.DB{URL: withParams(t, pg.URL(t), "application_name", name), MinConns: 3}
	var pool *pgxpool.Pool
	app := fxtest.New(t, dbmodule.Module, fx.Replace(cfg), fx.Populate(&pool))

	if _, err := pool.Acquire(context.Background()); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("Acquire before start = %v, want the not-started error", err)
	}
	if n := pool.Stat().TotalConns(); n != 0 {
		t.Fatalf("%d connections before start", n)
	}
	if n := connectionsNamed(t, name); n != 0 {
		t.Fatalf("%d connections opened before start", n)
	}
	app.RequireStart()
	defer app.RequireStop()
	dbtest.WaitFor(t, "MinConns connections after start", func() bool { return pool.Stat().IdleConns() >= 3 })
	if n := connectionsNamed(t, name); n < 3 {
		t.Errorf("server sees %d connections after start, want at least 3", n)
	}
}

// An app built and never started, with DB_MIN_CONNS > 0, closes its pool at
// once: on today's main, pgxpool's held background connects made Close wait
// a minute (issue 10, item 8).
func TestUnstartedPoolClosesAtOnce(t *testing.T) {
	cfg := config.DB{URL: pg.URL(t), MinConns: 3, MinIdleConns: 2}
	var pool *pgxpool.Pool
	fxtest.New(t, dbmodule.Module, fx.Replace(cfg), fx.Populate(&pool))
	done := make(chan struct{})
	go func() {
		pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a pool whose app never started still waits after 5s")
	}
}

// When fx.New fails after the pool's constructor ran, nothing stops the
// app; its pool is closed once the app is garbage, so that pgxpool's
// background goroutine does not outlive it (goleak in TestMain checks).
func TestPoolOfAFailedAppIsClosed(t *testing.T) {
	var pool *pgxpool.Pool
	app := fx.New(dbmodule.Module, fx.Replace(config.DB{URL: pg.URL(t), MinConns: 2}), fx.NopLogger,
		fx.Invoke(func(p *pgxpool.Pool) { pool = p }),
		fx.Invoke(func() error { return errors.New("a later constructor fails") }))
	if app.Err() == nil {
		t.Fatal("fx.New succeeded")
	}
	app = nil //nolint:ineffassign,staticcheck,wastedassign // drop the app
	_ = app
	dbtest.WaitFor(t, "the dropped app's pool to close", func() bool {
		runtime.GC()
		_, err := pool.Acquire(context.Background())
		return errors.Is(err, puddle.ErrClosedPool)
	})
}

// connectionsNamed counts the server's connections with an application_name.
func connectionsNamed(t *testing.T, name string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startErr starts an app on cfg and returns how long Start took and its error.
func startErr(t *testing.T, cfg config.DB, opts ...fx.Option) (time.Duration, error) {
	t.Helper()
	app := fx.New(append([]fx.Option{dbmodule.Module, fx.Replace(cfg), fx.NopLogger, fx.Invoke(func(*pgxpool.Pool) {})}, opts...)...)
	begin := time.Now()
	err := app.Start(context.Background())
	took := time.Since(begin)
	if err == nil {
		app.Stop(context.Background()) //nolint:errcheck // the test fails anyway
	}
	return took, err
}

func TestStartFailsFastWhenNothingListens(t *testing.T) {
	addr := dbtest.ClosedAddr(t)
	took, err := startErr(t, config.DB{URL: "postgres://app:" + secret + "@" + addr + "/app", ConnectTimeout: time.Second})
	if err == nil {
		t.Fatal("Start succeeded against a closed port")
	}
	t.Logf("failed in %s: %v", took, err)
	for _, want := range []string{addr, "DATABASE_URL", "connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password", err)
	}
	if took > time.Second {
		t.Errorf("Start took %s to fail; a refused connection should fail within the 1s connect timeout", took)
	}
}

func TestStartFailsWithinConnectTimeoutWhenServerIsSilent(t *testing.T) {
	addr := dbtest.SilentAddr(t)
	const timeout = 300 * time.Millisecond
	took, err := startErr(t, config.DB{DirectURL: "postgres://app:" + secret + "@" + addr + "/app", ConnectTimeout: timeout})
	if err == nil {
		t.Fatal("Start succeeded against a server that never answers")
	}
	t.Logf("failed in %s: %v", took, err)
	for _, want := range []string{addr, "DIRECT_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password", err)
	}
	// The bound is the connect timeout plus the ping timeout, far below
	// fx's 15 s start budget that would otherwise apply.
	if took < timeout || took > timeout+time.Second+500*time.Millisecond {
		t.Errorf("Start failed after %s; want the connect timeout (%s) plus at most the ping timeout", took, timeout)
	}
}

func TestWrongPasswordIsNotEchoed(t *testing.T) {
	u, _ := url.Parse(pg.URL(t))
	const wrong = "Wr0ng-Passw0rd-77"
	u.User = url.UserPassword(u.User.Username(), wrong)
	log, logs := observed()
	_, err := startErr(t, config.DB{URL: u.String()}, fx.Supply(log))
	if err == nil {
		t.Fatal("Start succeeded with a wrong password")
	}
	if !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("error %q does not say why", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error %q contains the password", err)
	}
	if logs.FilterMessage("database ping failed").Len() != 1 {
		t.Error("ping failure not logged")
	}
	assertNoSecret(t, logs, u.String())
}

func TestStopLetsQueriesInFlightFinish(t *testing.T) {
	var q dbmodule.Querier
	var pool *pgxpool.Pool
	app := fxtest.New(t, dbmodule.Module, pg.Module(t), fx.Populate(&q, &pool))
	app.RequireStart()

	done := make(chan error, 1)
	go func() {
		_, err := q.Exec(context.Background(), "SELECT pg_sleep(0.3) AS in_flight")
		done <- err
	}()
	admin, err := pgx.Connect(context.Background(), pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	dbtest.WaitFor(t, "the query to run on the server", func() bool {
		var n int
		err := admin.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%AS in_flight'").Scan(&n)
		return err == nil && n == 1
	})
	app.RequireStop()
	if err := <-done; err != nil {
		t.Errorf("query in flight during stop failed: %v", err)
	}
	if _, err := q.Exec(context.Background(), "SELECT 1"); !errors.Is(err, puddle.ErrClosedPool) {
		t.Errorf("query after stop = %v, want the closed-pool error", err)
	}
}

func TestStopReturnsWhenRowsAreLeaked(t *testing.T) {
	var q dbmodule.Querier
	log, logs := observed()
	app := fx.New(dbmodule.Module, pg.Module(t), fx.NopLogger, fx.Supply(log), fx.Populate(&q))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := q.Query(context.Background(), "SELECT generate_series(1, 3)")
	if err != nil {
		t.Fatal(err)
	}
	// rows is never read or closed: the pool cannot finish closing.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := app.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop with a leaked Rows = %v, want the stop context's deadline", err)
	}
	dbtest.WaitFor(t, "the hook's error to be logged", func() bool { return logs.FilterMessage("database pool not closed in time").Len() == 1 })
	if err := logs.FilterMessage("database pool not closed in time").All()[0].ContextMap()["error"]; !strings.Contains(fmt.Sprint(err), "1 connections still in use") {
		t.Errorf("logged error %q does not count the connection in use", err)
	}
	rows.Close() // lets the pool finish closing, so no goroutine outlives the test
}

func TestOpenAndCloseWithoutFx(t *testing.T) {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, pg.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	if pool.Config().MaxConns != 10 {
		t.Errorf("MaxConns = %d, want the default 10", pool.Config().MaxConns)
	}
	if err := dbmodule.Close(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := dbmodule.Open(ctx, config.DB{URL: "postgres://u:" + secret + "@" + dbtest.ClosedAddr(t) + "/db"}); err == nil ||
		strings.Contains(err.Error(), secret) {
		t.Errorf("Open against a closed port = %v, want an error without the password", err)
	}
}

func TestExtraTracersJoinThroughTheGroup(t *testing.T) {
	tracer := &countingTracer{}
	var q dbmodule.Querier
	app := fxtest.New(t,
		dbmodule.Module,
		pg.Module(t),
		fx.Provide(dbmodule.AsTracer(func() *countingTracer { return tracer })),
		fx.Populate(&q),
	)
	app.RequireStart()
	defer app.RequireStop()
	for range 3 {
		if _, err := q.Exec(context.Background(), "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	if tracer.queries < 3 {
		t.Errorf("extra tracer saw %d queries, want at least 3", tracer.queries)
	}
}

func TestWarnsWhenServerHasTooFewConnections(t *testing.T) {
	log, logs := observed()
	app := fxtest.New(t, dbmodule.Module, fx.Replace(config.DB{URL: pg.URL(t), MaxConns: 100000}), fx.Supply(log),
		fx.Invoke(func(*pgxpool.Pool) {}))
	app.RequireStart()
	defer app.RequireStop()
	// The check runs after start, in the background.
	warnedAbout := func() []observer.LoggedEntry {
		return logs.FilterMessageSnippet("exceeds the").FilterMessageSnippet("connections the server has free").All()
	}
	dbtest.WaitFor(t, "the headroom warning", func() bool { return len(warnedAbout()) > 0 })
	warned := warnedAbout()
	if len(warned) != 1 {
		t.Fatalf("want one headroom warning, got %d", len(warned))
	}
	var maxConnections int64
	conn, err := pgx.Connect(context.Background(), pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT current_setting('max_connections')::int").Scan(&maxConnections); err != nil {
		t.Fatal(err)
	}
	if f := warned[0].ContextMap(); f["max_conns"] != int32(100000) || f["max_connections"] != maxConnections {
		t.Errorf("warning fields = %v, want max_conns 100000 and the server's max_connections %d", f, maxConnections)
	}
}

// When backends die under the pool (pg_terminate_backend here; a restart or
// crash alike), the first query that meets a dead connection fails and the
// pool drops the rest, so no later query fails.
func TestPoolDropsDeadConnectionsTogether(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("loss-%d", time.Now().UnixNano())
	pool, err := dbmodule.Open(ctx, config.DB{URL: withParams(t, pg.URL(t), "application_name", name), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Fill the pool with four idle connections.
	conns := make([]*pgxpool.Conn, 4)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Release()
	}
	admin, err := pgx.Connect(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", name).Scan(&killed); err != nil || killed != 4 {
		t.Fatalf("terminated %d backends, %v", killed, err)
	}
	failures := 0
	for range 20 {
		if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
			failures++
		}
	}
	if failures > 1 {
		t.Errorf("%d of 20 queries failed after the backends died; want at most the first", failures)
	}
}

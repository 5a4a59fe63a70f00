package dbmodule_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// connectCounter counts the pool's connect attempts.
type connectCounter struct{ n atomic.Int64 }

func (c *connectCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (c *connectCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *connectCounter) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *connectCounter) TraceConnectEnd(context.Context, pgx.TraceConnectEndData) {}

// module is dbmodule started on a test server, with its handles.
type module struct {
	q     dbmodule.Querier
	tx    *dbmodule.Transactor
	pool  *pgxpool.Pool
	dials *connectCounter
}

func moduleOn(t *testing.T, cfg config.DB) module {
	t.Helper()
	m := module{dials: &connectCounter{}}
	app := fx.New(dbmodule.Module, fx.Replace(cfg), fx.Supply(zap.NewNop()), fx.NopLogger,
		fx.Provide(dbmodule.AsTracer(func() *connectCounter { return m.dials })), fx.Populate(&m.q, &m.tx, &m.pool))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop(context.Background()) }) //nolint:errcheck // test cleanup
	return m
}

// stopServer stops srv and closes the pool's idle connections, which the
// shutdown ended: these tests are about connects; what becomes of
// connections a server closed is the reset policy's (reset_test.go).
func stopServer(t *testing.T, srv *pgtemp.Server, m module) {
	t.Helper()
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.pool.Reset()
}

// Calls made while the database is down wait for it, within their
// deadline, and succeed once it is back, with one caller dialing for all.
func TestCallsRideThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := moduleOn(t, config.DB{URL: srv.URL("postgres"), MaxConns: 4})
	q, tx := m.q, m.tx
	if _, err := q.Exec(ctx, "CREATE TABLE rides (n int)"); err != nil {
		t.Fatal(err)
	}
	stopServer(t, srv, m)
	before := m.dials.n.Load()

	const callers = 40
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			switch i % 4 {
			case 0:
				_, errs[i] = q.Exec(ctx, "INSERT INTO rides VALUES ($1)", i)
			case 1:
				var n int
				errs[i] = q.QueryRow(ctx, "SELECT $1::int", i).Scan(&n)
			case 2:
				errs[i] = tx.InTx(ctx, func(q dbmodule.Querier) error {
					_, err := q.Exec(ctx, "INSERT INTO rides VALUES ($1)", i)
					return err
				})
			case 3:
				var rows pgx.Rows
				if rows, errs[i] = q.Query(ctx, "SELECT $1::int", i); errs[i] == nil {
					rows.Close()
					errs[i] = rows.Err()
				}
			}
		}()
	}
	const outage = time.Second
	time.Sleep(outage) // the callers wait this long; nothing to wait on but time
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	n := m.dials.n.Load() - before
	t.Logf("%d calls during a %s outage: %d failed; %d connect attempts", callers, outage, failed, n)
	if failed > 0 {
		t.Errorf("%d of %d calls failed; want none", failed, callers)
	}
	// Each caller's first attempt, then one prober every 25-50ms, and the
	// pool's refill.
	if n > callers+int64(outage/(25*time.Millisecond))+10 {
		t.Errorf("%d connect attempts during a %s outage; the callers dialed on their own", n, outage)
	}
}

// A call waits no longer than its deadline, and its error says both why it
// gave up and what the database answered.
func TestRideThroughHonoursDeadline(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := moduleOn(t, config.DB{URL: srv.URL("postgres")})
	q := m.q
	stopServer(t, srv, m)
	for _, timeout := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		_, err := q.Exec(ctx, "SELECT 1")
		took := time.Since(start)
		cancel()
		var ce *pgconn.ConnectError
		t.Logf("deadline %s: %s, %v", timeout, took.Round(time.Millisecond), err)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ce) || took > timeout+100*time.Millisecond || took < timeout {
			t.Errorf("with a %s deadline: %v after %s; want the deadline and the connect error, at the deadline", timeout, err, took)
		}
	}
}

// What no retry cures fails at once: a wrong password.
func TestRideThroughDoesNotRetryAWrongPassword(t *testing.T) {
	pc, err := dbmodule.ParseConfig(config.DB{URL: withParams(t, pg.URL(t), "password", "wrong-"+secret)})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	q := dbmodule.NewQuerier(pool, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = q.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" || time.Since(start) > time.Second {
		t.Errorf("wrong password: %v after %s; want 28P01 at once", err, time.Since(start))
	}
}

// BEGIN on a pooled connection whose backend died is sent again on
// another: it had begun nothing.
func TestBeginOnADeadConnectionIsSentAgain(t *testing.T) {
	ctx := context.Background()
	m := moduleOn(t, config.DB{URL: withParams(t, pg.URL(t), "application_name", "begin-again"), MaxConns: 2})
	q, tx := m.q, m.tx
	if _, err := q.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'begin-again'"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.InTx(ctx, func(q dbmodule.Querier) error { return q.QueryRow(ctx, "SELECT 1").Scan(&n) }); err != nil {
		t.Errorf("transaction after its connection's backend died: %v", err)
	}
}

// Through the Querier, a query allocates no more than through the pool.
func TestQuerierAddsNoAllocations(t *testing.T) {
	ctx := context.Background()
	q := moduleOn(t, config.DB{URL: pg.URL(t)}).q
	raw, err := pgxpool.New(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	allocs := func(q dbmodule.Querier) float64 {
		var n int
		return testing.AllocsPerRun(500, func() {
			if err := q.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
				t.Fatal(err)
			}
		})
	}
	allocs(raw)
	allocs(q)
	if a, b := allocs(raw), allocs(q); b > a {
		t.Errorf("QueryRow allocates %.1f times through the Querier, %.1f through a raw pgxpool", b, a)
	}
	execs := func(q dbmodule.Querier) float64 {
		return testing.AllocsPerRun(500, func() {
			if _, err := q.Exec(ctx, "SELECT $1::int", 1); err != nil {
				t.Fatal(err)
			}
		})
	}
	execs(raw)
	execs(q)
	if a, b := execs(raw), execs(q); b > a {
		t.Errorf("Exec allocates %.1f times through the Querier, %.1f through a raw pgxpool", b, a)
	}
}

package dbmodule_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// 100 callers on a pool of 2 whose connections are both held: each gives up
// after DB_ACQUIRE_TIMEOUT, within 50 ms of it, with the exhaustion error,
// whichever of the pool's methods it called.
func TestAcquireTimeoutReportsAnExhaustedPool(t *testing.T) {
	const timeout = 200 * time.Millisecond
	pool, guard, _ := guardedPool(t, config.DB{MaxConns: 2, AcquireTimeout: timeout}, nil)
	ctx := context.Background()
	for range 2 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
	}

	calls := []func(context.Context) error{
		func(ctx context.Context) error { var n int; return pool.QueryRow(ctx, "SELECT 1").Scan(&n) },
		func(ctx context.Context) error { _, err := pool.Exec(ctx, "SELECT 1"); return err },
		func(ctx context.Context) error { _, err := pool.Query(ctx, "SELECT 1"); return err },
		func(ctx context.Context) error { _, err := pool.Begin(ctx); return err },
		func(ctx context.Context) error {
			return pool.SendBatch(ctx, &pgx.Batch{QueuedQueries: []*pgx.QueuedQuery{{SQL: "SELECT 1"}}}).Close()
		},
		func(ctx context.Context) error {
			c, err := pool.Acquire(ctx)
			if err == nil {
				c.Release()
			}
			return err
		},
	}
	const callers = 100
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		errs   = make([]error, callers)
		waited = make([]time.Duration, callers)
	)
	// Every caller has a deadline of its own, far away: the pool's runs out first.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := range callers {
		wg.Go(func() {
			<-start
			begin := time.Now()
			errs[i] = calls[i%len(calls)](ctx)
			waited[i] = time.Since(begin)
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		var exhausted *dbmodule.PoolExhaustedError
		switch {
		case !errors.Is(err, dbmodule.ErrPoolExhausted) || !errors.As(err, &exhausted):
			t.Errorf("caller %d: %v, want the exhaustion error", i, err)
			continue
		case !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("caller %d: %v is not a context.DeadlineExceeded", i, err)
		case exhausted.InUse != 2 || exhausted.Max != 2 || exhausted.Waiting < 1 || exhausted.Waiting > callers || exhausted.Timeout != timeout:
			t.Errorf("caller %d: %+v, want 2 of 2 in use and up to %d waiting", i, exhausted, callers)
		}
		if waited[i] < timeout || waited[i] > timeout+50*time.Millisecond {
			t.Errorf("caller %d gave up after %s, want %s to %s", i, waited[i], timeout, timeout+50*time.Millisecond)
		}
	}
	slices.Sort(waited)
	t.Logf("waits: min %s, median %s, max %s; %v", waited[0], waited[callers/2], waited[callers-1], errs[0])
	if !strings.Contains(errs[0].Error(), "2 of 2 in use") || !strings.Contains(errs[0].Error(), "DB_ACQUIRE_TIMEOUT") {
		t.Errorf("error %q does not say what is exhausted", errs[0])
	}
	s := guard.Stats()
	if s.AcquireTimeouts != callers || s.AcquireWaiting != 0 {
		t.Errorf("stats = %v, want %d timeouts and nobody waiting", s, callers)
	}
	if s.AcquireWait.Count < callers+2 || s.AcquireWait.Sum < callers*timeout {
		t.Errorf("wait histogram: %d acquires, %s in all; want at least %d and %s", s.AcquireWait.Count, s.AcquireWait.Sum, callers+2, callers*timeout)
	}
}

// The timeout is the pool's, not the caller's: a caller whose own deadline
// comes first, or who cancels, gets its own context's error; a caller who
// finds a connection free in time is not affected.
func TestAcquireTimeoutLeavesTheCallersContextAlone(t *testing.T) {
	pool, _, _ := guardedPool(t, config.DB{MaxConns: 1, AcquireTimeout: time.Second}, nil)
	bg := context.Background()
	held, err := pool.Acquire(bg)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	_, err = pool.Exec(ctx, "SELECT 1")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, dbmodule.ErrPoolExhausted) {
		t.Errorf("caller's deadline first: %v, want its own DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(bg)
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := pool.Exec(ctx, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Errorf("caller canceled: %v, want context.Canceled", err)
	}

	// Released while the next caller waits: it gets the connection.
	time.AfterFunc(100*time.Millisecond, held.Release)
	var n int
	if err := pool.QueryRow(bg, "SELECT 1").Scan(&n); err != nil {
		t.Errorf("a connection came free within the timeout, yet: %v", err)
	}
	// The timeout bounds the acquire only, never the statement.
	if _, err := pool.Exec(bg, "SELECT pg_sleep(1.5)"); err != nil {
		t.Errorf("a statement longer than DB_ACQUIRE_TIMEOUT failed: %v", err)
	}
}

// "The pool is exhausted" is told apart from "the database is unreachable"
// and "the server refused": those are other errors, and a database too slow
// to accept a connection within the acquire timeout is not called exhausted
// either: the connect has its own timeout.
func TestAcquireTimeoutToldApartFromConnectFailures(t *testing.T) {
	withAddr := func(addr string) string {
		u, _ := url.Parse(pg.URL(t))
		u.Host = addr
		return u.String()
	}
	u, _ := url.Parse(pg.URL(t))
	u.User = url.UserPassword(u.User.Username(), "wrong-password")
	for _, tt := range []struct {
		name string
		url  string
		want func(error) bool
	}{
		{"unreachable", withAddr(dbtest.ClosedAddr(t)), func(err error) bool {
			var ce *pgconn.ConnectError
			return errors.As(err, &ce) && strings.Contains(err.Error(), "connection refused")
		}},
		{"refused", u.String(), func(err error) bool {
			var pgErr *pgconn.PgError
			return errors.As(err, &pgErr) && pgErr.Code == "28P01"
		}},
		// Opening a connection is DB_CONNECT_TIMEOUT's to bound, even
		// when it is longer than the acquire timeout.
		{"silent", withAddr(dbtest.SilentAddr(t)), func(err error) bool {
			var ce *pgconn.ConnectError
			return errors.As(err, &ce) && strings.Contains(err.Error(), "timeout")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			connectTimeout := 5 * time.Second
			if tt.name == "silent" {
				connectTimeout = 400 * time.Millisecond
			}
			cfg := config.DB{URL: tt.url, MaxConns: 2, AcquireTimeout: 100 * time.Millisecond, ConnectTimeout: connectTimeout}
			guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			pc, err := dbmodule.ParseConfig(cfg, dbmodule.WithGuard(guard))
			if err != nil {
				t.Fatal(err)
			}
			pool, err := pgxpool.NewWithConfig(context.Background(), pc)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			begin := time.Now()
			_, err = pool.Exec(context.Background(), "SELECT 1")
			took := time.Since(begin)
			t.Logf("after %s: %v", took.Round(time.Millisecond), err)
			if tt.name == "silent" && took < 400*time.Millisecond {
				t.Errorf("gave up after %s, before the connect timeout", took)
			}
			if errors.Is(err, dbmodule.ErrPoolExhausted) {
				t.Errorf("%v is called an exhausted pool", err)
			}
			if !tt.want(err) {
				t.Errorf("unexpected error %v", err)
			}
		})
	}
}

// A connect slower than the acquire timeout is not cut short: a caller with
// a free slot waits for its new connection, which the connect timeout bounds.
func TestAcquireTimeoutSparesASlowConnect(t *testing.T) {
	cfg := config.DB{URL: pg.URL(t), MaxConns: 2, AcquireTimeout: 50 * time.Millisecond}
	core, _ := observed()
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg, Logger: core})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := dbmodule.ParseConfig(cfg, dbmodule.WithGuard(guard))
	if err != nil {
		t.Fatal(err)
	}
	dial := pc.ConnConfig.DialFunc
	pc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		time.Sleep(150 * time.Millisecond) // a slow network, three timeouts long
		return dial(ctx, network, addr)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Errorf("an acquire that opens a connection slower than DB_ACQUIRE_TIMEOUT failed: %v", err)
	}
}

package reliability_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// Stopping the app under load: queries that hold a connection finish, later
// ones fail at once with pgx's closed-pool error, and Stop returns promptly.
func TestStopUnderLoad(t *testing.T) {
	var pool *pgxpool.Pool
	s := startServiceNoCleanup(t, fx.Replace(config.DB{URL: pg.URL(t), MaxConns: 10}), fx.Populate(&pool))

	type result struct {
		acquired, done time.Time
		err            error
	}
	var (
		mu       sync.Mutex
		results  []result
		stopping atomic.Bool
		wg       sync.WaitGroup
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				start := time.Now()
				conn, err := pool.Acquire(context.Background())
				r := result{acquired: time.Now()}
				if err == nil {
					_, err = conn.Exec(context.Background(), "SELECT pg_sleep(0.02)")
					conn.Release()
				}
				r.done, r.err = time.Now(), err
				if err != nil {
					r.acquired = start // it never held a connection
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if err != nil && stopping.Load() {
					return
				}
			}
		}()
	}
	dbtest.WaitFor(t, "the pool to be busy", func() bool { return pool.Stat().AcquiredConns() == 10 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopping.Store(true)
	stopAt := time.Now()
	if err := s.app.Stop(ctx); err != nil {
		t.Fatalf("Stop under load: %v", err)
	}
	stopTook := time.Since(stopAt)
	wg.Wait()

	var inFlight, finished, refused int
	var slowestRefusal time.Duration
	for _, r := range results {
		switch {
		case r.err == nil && r.acquired.Before(stopAt) && r.done.After(stopAt):
			inFlight++
			finished++
		case r.err == nil:
			finished++
		case errors.Is(r.err, puddle.ErrClosedPool):
			refused++
			if !r.acquired.Before(stopAt) {
				slowestRefusal = max(slowestRefusal, r.done.Sub(r.acquired))
			}
		default:
			if r.acquired.Before(stopAt) {
				t.Errorf("a query holding a connection when Stop began failed: %v", r.err)
			}
		}
	}
	t.Logf("Stop took %s; %d queries in flight finished; %d later calls refused, the slowest in %s",
		stopTook.Round(time.Millisecond), inFlight, refused, slowestRefusal)
	if inFlight == 0 {
		t.Error("no query was in flight when Stop began")
	}
	if refused < 32 {
		t.Errorf("%d calls refused after Stop, want one per worker at least", refused)
	}
	if slowestRefusal > 50*time.Millisecond {
		t.Errorf("a call after Stop took %s to fail; want fast failure", slowestRefusal)
	}
	if stopTook > time.Second {
		t.Errorf("Stop took %s with 20ms queries in flight", stopTook)
	}
}

// Stop returns when its context ends even though a caller leaked a Rows
// that pins a connection, while other queries are still running.
func TestStopUnderLoadWithLeakedRows(t *testing.T) {
	var pool *pgxpool.Pool
	s := startServiceNoCleanup(t, fx.Replace(config.DB{URL: pg.URL(t), MaxConns: 10}), fx.Populate(&pool))
	l := startLoad(16, time.Second, func(ctx context.Context) error {
		_, err := pool.Exec(ctx, "SELECT pg_sleep(0.01)")
		return err
	})
	rows, err := pool.Query(context.Background(), "SELECT generate_series(1, 10)")
	if err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the load to run", func() bool { return succeededAfter(l.snapshot(), time.Time{}) >= 100 })

	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err = s.app.Stop(ctx)
	took := time.Since(start)
	l.finish()
	rows.Close() // the pool can finish closing now
	t.Logf("Stop with a leaked Rows returned after %s: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) || took > budget+deadlineSlack {
		t.Errorf("Stop = %v after %s; want the stop context's deadline after %s", err, took, budget)
	}
	dbtest.WaitFor(t, "the pool to close once the Rows is closed", func() bool { return pool.Stat().TotalConns() == 0 })
}

// startServiceNoCleanup is startService for tests that stop the app themselves.
func startServiceNoCleanup(t *testing.T, opts ...fx.Option) *service {
	t.Helper()
	s := &service{}
	s.app = fx.New(append([]fx.Option{dbmodule.Module, fx.NopLogger, fx.Populate(&s.q)}, opts...)...)
	if err := s.app.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	return s
}

// 1,000 goroutines on 10 connections all finish; the pool never holds more
// than 10, and an acquire on the exhausted pool waits no longer than its
// context allows.
func TestPoolExhaustion(t *testing.T) {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, config.DB{URL: pg.URL(t), MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var maxSeen atomic.Int32
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			s := pool.Stat()
			maxSeen.Store(max(maxSeen.Load(), s.TotalConns(), s.AcquiredConns()))
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
		}
	}()

	const goroutines = 1000
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := time.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if _, err := pool.Exec(ctx, "SELECT pg_sleep(0.002)"); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)

	// Hold every connection, then ask for one more with a short deadline.
	held := make([]*pgxpool.Conn, 10)
	for i := range held {
		if held[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const wait = 100 * time.Millisecond
	short, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	acquireStart := time.Now()
	_, err = pool.Acquire(short)
	acquireTook := time.Since(acquireStart)
	for _, c := range held {
		c.Release()
	}
	close(sampling)
	<-sampled

	s := pool.Stat()
	t.Logf("%d goroutines on 10 connections finished in %s, %d failed; most connections seen %d; "+
		"acquire on the exhausted pool gave up after %s (deadline %s); %d acquires waited",
		goroutines, took.Round(time.Millisecond), failed.Load(), maxSeen.Load(), acquireTook.Round(time.Millisecond), wait, s.EmptyAcquireCount())
	if failed.Load() != 0 {
		t.Errorf("%d of %d queries failed", failed.Load(), goroutines)
	}
	if maxSeen.Load() > 10 {
		t.Errorf("the pool held %d connections, above its maximum of 10", maxSeen.Load())
	}
	if !errors.Is(err, context.DeadlineExceeded) || acquireTook > wait+deadlineSlack {
		t.Errorf("acquire on an exhausted pool = %v after %s; want the deadline after %s", err, acquireTook, wait)
	}
}

package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// While the server refuses every connection (a role at its connection
// limit: 53300, a real server's refusal), the pool backs off instead of
// dialing as fast as callers ask: on today's main, 8 callers made it dial
// about 400 times a second. Every caller still fails within its deadline,
// saying the server refuses, the outage is logged once, and the pool serves
// again within a second of the server accepting (issue 10, item 10).
func TestDialBackoffWhileTheServerRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := fmt.Sprintf("refused_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'pw' CONNECTION LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, "DROP ROLE "+role) //nolint:errcheck // test cleanup
	u, err := url.Parse(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "pw")

	counter := new(probeTracer)
	core, logs := observer.New(zapcore.InfoLevel)
	pc, err := dbmodule.ParseConfig(config.DB{URL: u.String()}, dbmodule.WithTracers(counter), dbmodule.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	const (
		outage   = 10 * time.Second
		deadline = 200 * time.Millisecond
		callers  = 8
	)
	var (
		wg       sync.WaitGroup
		calls    atomic.Int64
		late     atomic.Int64
		unclear  atomic.Int64
		lastErr  atomic.Value
		stopLoad = time.Now().Add(outage)
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(time.Millisecond) // a busy app, not a spinning one
			defer pace.Stop()
			for time.Now().Before(stopLoad) {
				<-pace.C
				ctx, cancel := context.WithTimeout(ctx, deadline)
				begin := time.Now()
				_, err := pool.Exec(ctx, "SELECT 1")
				took := time.Since(begin)
				cancel()
				calls.Add(1)
				if err == nil {
					t.Error("a query succeeded while the role is refused")
					return
				}
				// pgx honours the deadline; the slack is for a busy 2-core machine's scheduler.
				if took > 2*deadline {
					late.Add(1)
				}
				var pgErr *pgconn.PgError
				if !errors.Is(err, dbmodule.ErrRefusing) && !(errors.As(err, &pgErr) && pgErr.Code == "53300") &&
					!errors.Is(err, context.DeadlineExceeded) {
					unclear.Add(1)
					lastErr.Store(err.Error())
				}
				if kind, _ := dbmodule.Classify(err); kind != dbmodule.FailureRefusing && !errors.Is(err, context.DeadlineExceeded) {
					unclear.Add(1)
					lastErr.Store(fmt.Sprintf("classified %v: %v", kind, err))
				}
			}
		}()
	}
	wg.Wait()
	attempts := counter.connects.Load()
	t.Logf("%d calls in %s of refusal made %d connect attempts (%.1f/s)", calls.Load(), outage, attempts, float64(attempts)/outage.Seconds())
	if perSecond := float64(attempts) / outage.Seconds(); perSecond > 5 {
		t.Errorf("%.1f connect attempts a second while refused, want at most 5", perSecond)
	}
	if n := late.Load(); n > 0 {
		t.Errorf("%d calls returned later than twice their %s deadline", n, deadline)
	}
	if n := unclear.Load(); n > 0 {
		t.Errorf("%d errors did not say the server refuses, e.g. %v", n, lastErr.Load())
	}
	if n := logs.FilterMessageSnippet("database unreachable").Len(); n != 1 {
		t.Errorf("outage logged %d times, want once", n)
	}

	// The server accepts again: the pool follows within a second.
	if _, err := admin.Exec(ctx, "ALTER ROLE "+role+" CONNECTION LIMIT -1"); err != nil {
		t.Fatal(err)
	}
	accepted := time.Now()
	for {
		ctx, cancel := context.WithTimeout(ctx, deadline)
		_, err := pool.Exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			break
		}
		if time.Since(accepted) > 3*time.Second {
			t.Fatalf("still failing %s after the server accepts: %v", time.Since(accepted), err)
		}
	}
	recovered := time.Since(accepted)
	t.Logf("serving again %s after the server accepts", recovered.Round(time.Millisecond))
	if recovered > time.Second {
		t.Errorf("serving again after %s, want within 1s", recovered)
	}
	back := logs.FilterMessage("database reachable again").All()
	if len(back) != 1 || back[0].ContextMap()["failed_connects"].(int64) < 2 {
		t.Errorf("recovery logged as %v, want once with the count of failed connects", back)
	}
}

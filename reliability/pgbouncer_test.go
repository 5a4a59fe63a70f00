package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/internal/pgtemp"
	"github.com/fxpg/fxpg/store"
)

// bouncedServer is a PostgreSQL with a PgBouncer (1.18 on Debian 12: no
// prepared statements) in transaction mode in front, 4 server connections.
func bouncedServer(t *testing.T) (*pgtemp.Server, *pgtemp.Bouncer) {
	t.Helper()
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	b, err := pgtemp.StartBouncer(ctx, srv, pgtemp.BouncerOptions{PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return srv, b
}

// pooledApp starts dbmodule on cfg with an observed logger.
func pooledApp(t *testing.T, cfg config.DB) (dbmodule.Querier, *dbmodule.Transactor, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	var (
		q  dbmodule.Querier
		tx *dbmodule.Transactor
	)
	app := fx.New(dbmodule.Module, fx.Replace(cfg), fx.Supply(zap.New(core)), fx.NopLogger, fx.Populate(&q, &tx))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop(context.Background()) }) //nolint:errcheck // test cleanup
	return q, tx, logs
}

// hammer runs n queries from 32 goroutines, each a parameterised query or,
// every tenth, a transaction, and returns the errors.
func hammer(q dbmodule.Querier, tx *dbmodule.Transactor, n int) []error {
	const workers = 32
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var err error
				if i%10 == 0 {
					err = tx.InTx(ctx, func(q dbmodule.Querier) error {
						var s int64
						return q.QueryRow(ctx, "SELECT $1::bigint * 2", i).Scan(&s)
					})
				} else {
					var sum int64
					err = q.QueryRow(ctx, "SELECT $1::bigint + $2::bigint", i, int64(1)).Scan(&sum)
					if err == nil && sum != i+1 {
						err = fmt.Errorf("%d + 1 = %d", i, sum)
					}
				}
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func TestThroughPgBouncer(t *testing.T) {
	srv, bouncer := bouncedServer(t)

	t.Run("exec mode: 10,000 queries without an error", func(t *testing.T) {
		q, tx, logs := pooledApp(t, config.DB{URL: bouncer.URL("postgres"), DirectURL: srv.URL("postgres"), QueryExecMode: "exec"})
		start := time.Now()
		errs := hammer(q, tx, 10000)
		took := time.Since(start)
		t.Logf("10,000 queries (1,000 in transactions) from 32 goroutines through PgBouncer in transaction mode: %d errors, %s (%.0f/s)",
			len(errs), took.Round(time.Millisecond), 10000/took.Seconds())
		if len(errs) > 0 {
			t.Errorf("%d errors, the first: %v", len(errs), errs[0])
		}
		if logs.FilterMessageSnippet("pooler").Len() != 0 {
			t.Error("warned about the pooler although the exec mode suits it")
		}
		assertNoSecret(t, srv.Password(), "a log entry", logTexts(logs)...)
	})

	t.Run("cache_statement: statements lost, and the log says the fix", func(t *testing.T) {
		q, tx, logs := pooledApp(t, config.DB{URL: bouncer.URL("postgres"), DirectURL: srv.URL("postgres")})
		dbtest.WaitFor(t, "the start-up check", func() bool { return logs.FilterMessageSnippet("connected through a pooler").Len() > 0 })
		warned := logs.FilterMessageSnippet("connected through a pooler").All()
		if len(warned) != 1 || !strings.Contains(warned[0].Message, "DB_QUERY_EXEC_MODE=exec") {
			t.Errorf("no start-up warning naming the fix: %v", logTexts(logs))
		}
		errs := hammer(q, tx, 2000)
		lost := 0
		for _, err := range errs {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (pgErr.Code == "26000" || pgErr.Code == "42P05") {
				lost++
			}
		}
		t.Logf("pgx's default exec mode through PgBouncer 1.18: %d of 2000 queries failed, %d with lost or duplicate prepared statements; the first: %v",
			len(errs), lost, first(errs))
		if lost == 0 {
			t.Fatal("the wrong exec mode caused no prepared-statement error; the test no longer shows the failure")
		}
		hinted := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("DB_QUERY_EXEC_MODE=exec").Len()
		if hinted == 0 {
			t.Error("no error log entry tells the user the fix")
		}
		assertNoSecret(t, srv.Password(), "a query error", errorStrings(errs)...)
	})

	t.Run("statement timeout: refused by PgBouncer, with advice", func(t *testing.T) {
		_, err := dbmodule.Open(context.Background(), config.DB{URL: bouncer.URL("postgres"), QueryExecMode: "exec", StatementTimeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), "unsupported startup parameter: statement_timeout") ||
			!strings.Contains(err.Error(), "ALTER ROLE") {
			t.Errorf("DB_STATEMENT_TIMEOUT through PgBouncer = %v; want its refusal and what to do instead", err)
		}
	})

	t.Run("migrations go to DIRECT_URL", func(t *testing.T) {
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, srv.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "CREATE DATABASE shop"); err != nil {
			t.Fatal(err)
		}
		cfg := config.DB{URL: bouncer.URL("shop"), DirectURL: srv.URL("shop"), QueryExecMode: "exec"}

		// Migrating on start, the app ends up with the schema, through PgBouncer.
		var shop store.Querier
		app := fx.New(dbmodule.Module, migrate.Module, store.Module, fx.Supply(migrate.Files{FS: store.Migrations()}),
			fx.Replace(cfg, migrate.Config{OnStart: true}), fx.NopLogger, fx.Populate(&shop))
		if err := app.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := shop.CreateCustomer(ctx, store.CreateCustomerParams{Email: "ops@example.com", Name: "Ops"}); err != nil {
			t.Errorf("typed query through PgBouncer after migrating: %v", err)
		}
		if err := app.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		// With PgBouncer gone, migrating still works: it never went through it.
		if err := bouncer.Close(); err != nil {
			t.Fatal(err)
		}
		m, err := migrate.New(cfg, store.Migrations(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if v, err := m.Version(ctx); err != nil || v != 2 {
			t.Errorf("schema version over DIRECT_URL with PgBouncer down = %d, %v", v, err)
		}
		only, err := migrate.New(config.DB{URL: cfg.URL}, store.Migrations(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer only.Close()
		if _, err := only.Version(ctx); err == nil {
			t.Error("migrating over DATABASE_URL worked with PgBouncer down; the test proves nothing")
		}
	})
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

func errorStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, err := range errs {
		out[i] = err.Error()
	}
	return out
}

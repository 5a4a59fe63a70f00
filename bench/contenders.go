package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "github.com/lib/pq"              // the "postgres" database/sql driver
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// PoolSize is every contender's pool size: the module's default.
const PoolSize = config.DefaultMaxConns

// The contenders, by name.
const (
	Module    = "module"     // the module's Querier in a started app.New
	RawPgx    = "pgxpool"    // a raw pgxpool, no tracer
	PgxStdlib = "pgx-stdlib" // database/sql over pgx's stdlib driver
	LibPQ     = "lib/pq"     // database/sql over lib/pq
	PgBench   = "pgbench"    // pgbench -M prepared, C and libpq: a client, so a server connection, per goroutine
	// PgBenchPool is pgbench with as many clients as the pools have
	// connections, PoolSize, where there are more goroutines than that;
	// below, it would be pgbench's very run, so it is not run.
	PgBenchPool = "pgbench-pool"
)

// Contenders are all of them, in the order runs take them.
func Contenders() []string { return []string{Module, RawPgx, PgxStdlib, LibPQ, PgBench, PgBenchPool} }

// pgbenchClients is how many clients the pgbench contender name runs at
// concurrency conc, and whether it runs there at all.
func pgbenchClients(name string, conc int) (int, bool) {
	if name == PgBenchPool {
		return PoolSize, conc > PoolSize
	}
	return conc, true
}

// SameConns names the pgbench contender whose server connections match the
// Go pools' at concurrency conc, the one to compare the Go clients with:
// pgbench itself up to PoolSize goroutines, PgBenchPool above. pgbench with
// a connection per goroutine above PoolSize measures pooling (10 server
// connections against 32 or 64 on the same server CPU), not the client.
func SameConns(conc int) string {
	if conc > PoolSize {
		return PgBenchPool
	}
	return PgBench
}

// isPgbench says whether the contender name is pgbench, which needs no Go
// client.
func isPgbench(name string) bool { return name == PgBench || name == PgBenchPool }

// A client runs the workloads through one Go database API.
type client interface {
	op(w Workload) op
	io.Closer
}

// newClient connects the Go contender name to url; execMode, if not empty,
// is the module's DB_QUERY_EXEC_MODE.
func newClient(ctx context.Context, name, url, execMode string) (client, error) {
	switch name {
	case Module:
		return newModuleClient(ctx, config.DB{URL: url, MaxConns: PoolSize, QueryExecMode: execMode})
	case RawPgx:
		pc, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		pc.MaxConns = PoolSize
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return rawClient{pool}, nil
	case PgxStdlib, LibPQ:
		driver := map[string]string{PgxStdlib: "pgx", LibPQ: "postgres"}[name]
		db, err := sql.Open(driver, url)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		db.SetMaxOpenConns(PoolSize)
		db.SetMaxIdleConns(PoolSize)
		return sqlClient{db}, nil
	}
	return nil, fmt.Errorf("no Go client for %q", name)
}

// moduleClient is the module as an app ships it: app.New, started, its
// Tracer logging at info (so no per-query log line), metrics and all.
type moduleClient struct {
	app *fx.App
	q   dbmodule.Querier
	tx  *dbmodule.Transactor
}

func newModuleClient(ctx context.Context, cfg config.DB) (*moduleClient, error) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	c := &moduleClient{}
	c.app = app.New(
		fx.Replace(cfg, config.App{HTTPAddr: "127.0.0.1:0"}, logger),
		fx.NopLogger,
		fx.Populate(&c.q, &c.tx),
	)
	if err := c.app.Start(ctx); err != nil {
		return nil, fmt.Errorf("start the app: %w", err)
	}
	return c, nil
}

func (c *moduleClient) Close() error { return c.app.Stop(context.Background()) }

func (c *moduleClient) op(w Workload) op {
	switch w.Name {
	case execWorkload:
		return func(ctx context.Context, _ *rand.Rand) error {
			_, err := c.q.Exec(ctx, selectOne)
			return err
		}
	case "select1":
		return func(ctx context.Context, _ *rand.Rand) error {
			var n int32
			return c.q.QueryRow(ctx, selectOne).Scan(&n)
		}
	case "point":
		return func(ctx context.Context, r *rand.Rand) error {
			var balance int32
			return c.q.QueryRow(ctx, pointLookup, randomAID(r)).Scan(&balance)
		}
	}
	return func(ctx context.Context, r *rand.Rand) error {
		u := randomUpdate(r)
		return c.tx.InTx(ctx, func(q dbmodule.Querier) error {
			if _, err := q.Exec(ctx, updateOne, u.delta, u.aid); err != nil {
				return err
			}
			var balance int32
			if err := q.QueryRow(ctx, pointLookup, u.aid).Scan(&balance); err != nil {
				return err
			}
			_, err := q.Exec(ctx, insertOne, u.tid, u.bid, u.aid, u.delta)
			return err
		})
	}
}

// rawClient is a pgxpool used directly, as a hand-wired app would.
type rawClient struct{ pool *pgxpool.Pool }

func (c rawClient) Close() error {
	c.pool.Close()
	return nil
}

func (c rawClient) op(w Workload) op {
	switch w.Name {
	case execWorkload:
		return func(ctx context.Context, _ *rand.Rand) error {
			_, err := c.pool.Exec(ctx, selectOne)
			return err
		}
	case "select1":
		return func(ctx context.Context, _ *rand.Rand) error {
			var n int32
			return c.pool.QueryRow(ctx, selectOne).Scan(&n)
		}
	case "point":
		return func(ctx context.Context, r *rand.Rand) error {
			var balance int32
			return c.pool.QueryRow(ctx, pointLookup, randomAID(r)).Scan(&balance)
		}
	}
	return func(ctx context.Context, r *rand.Rand) error {
		u := randomUpdate(r)
		tx, err := c.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
		if _, err := tx.Exec(ctx, updateOne, u.delta, u.aid); err != nil {
			return err
		}
		var balance int32
		if err := tx.QueryRow(ctx, pointLookup, u.aid).Scan(&balance); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertOne, u.tid, u.bid, u.aid, u.delta); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
}

// sqlClient is database/sql, over whichever driver.
type sqlClient struct{ db *sql.DB }

func (c sqlClient) Close() error { return c.db.Close() }

func (c sqlClient) op(w Workload) op {
	switch w.Name {
	case execWorkload:
		return func(ctx context.Context, _ *rand.Rand) error {
			_, err := c.db.ExecContext(ctx, selectOne)
			return err
		}
	case "select1":
		return func(ctx context.Context, _ *rand.Rand) error {
			var n int32
			return c.db.QueryRowContext(ctx, selectOne).Scan(&n)
		}
	case "point":
		return func(ctx context.Context, r *rand.Rand) error {
			var balance int32
			return c.db.QueryRowContext(ctx, pointLookup, randomAID(r)).Scan(&balance)
		}
	}
	return func(ctx context.Context, r *rand.Rand) error {
		u := randomUpdate(r)
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		if _, err := tx.ExecContext(ctx, updateOne, u.delta, u.aid); err != nil {
			return err
		}
		var balance int32
		if err := tx.QueryRowContext(ctx, pointLookup, u.aid).Scan(&balance); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertOne, u.tid, u.bid, u.aid, u.delta); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// execWorkload is SELECT 1 through Exec rather than QueryRow, for counting
// allocations; runs do not time it.
const execWorkload = "exec"

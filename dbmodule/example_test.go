package dbmodule_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// databaseURL stands for the URL of a database; here, the test server's.
func databaseURL() string {
	url, err := pg.Start()
	if err != nil {
		panic(err)
	}
	return url
}

// An fx app gets a pool and a Querier from dbmodule.Module. In production the
// module reads DATABASE_URL; here fx.Replace points the app at a test database
// without touching the environment.
func Example() {
	app := fx.New(
		dbmodule.Module,
		fx.Replace(config.DB{URL: databaseURL()}),
		fx.NopLogger,
		fx.Invoke(func(lc fx.Lifecycle, q dbmodule.Querier) {
			lc.Append(fx.StartHook(func(ctx context.Context) error {
				var answer int
				if err := q.QueryRow(ctx, "SELECT 6 * $1::int", 7).Scan(&answer); err != nil {
					return err
				}
				fmt.Println("answer:", answer)
				return nil
			}))
		}),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	if err := app.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: answer: 42
}

// fakeQuerier answers every query with an error; Exec succeeds.
type fakeQuerier struct{ dbmodule.Querier }

func (fakeQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.NewCommandTag("SELECT 1"), nil
}

// Replacing the Querier runs an app with no database at all: no DATABASE_URL
// is read and nothing connects. Annotate the fake with fx.As, or fx.Replace
// would replace a *fakeQuerier that nothing asks for.
func Example_fakeQuerier() {
	app := fx.New(
		dbmodule.Module,
		fx.Replace(fx.Annotate(fakeQuerier{}, fx.As(new(dbmodule.Querier)))),
		fx.NopLogger,
		fx.Invoke(func(q dbmodule.Querier) {
			tag, err := q.Exec(context.Background(), "DELETE FROM carts")
			fmt.Println(tag, err)
		}),
	)
	fmt.Println(app.Err())
	// Output:
	// SELECT 1 <nil>
	// <nil>
}

// Open and Close use the same configuration without fx.
func ExampleOpen() {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, config.DB{URL: databaseURL(), MaxConns: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	var version int
	if err := pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&version); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("max conns:", pool.Config().MaxConns, "server major version:", version >= 13)
	// Output: max conns: 4 server major version: true
}

// lastQuery is a pgx tracer that remembers the last statement it saw.
type lastQuery struct{ sql string }

func (l *lastQuery) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.sql = d.SQL
	return ctx
}
func (*lastQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// An app adds pgx tracers, such as an OpenTelemetry one, with AsTracer.
func ExampleAsTracer() {
	traced := &lastQuery{}
	app := fx.New(
		dbmodule.Module,
		fx.Replace(config.DB{URL: databaseURL()}),
		fx.Provide(dbmodule.AsTracer(func() *lastQuery { return traced })),
		fx.NopLogger,
		fx.Invoke(func(lc fx.Lifecycle, q dbmodule.Querier) {
			lc.Append(fx.StartHook(func(ctx context.Context) error {
				_, err := q.Exec(ctx, "SELECT 'traced'")
				fmt.Println("tracer saw:", traced.sql)
				return err
			}))
		}),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	_ = app.Stop(context.Background())
	// Output: tracer saw: SELECT 'traced'
}

package dbmetrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
)

// withRegisterer gives an app reg as its prometheus.Registerer.
func withRegisterer(reg prometheus.Registerer) fx.Option {
	return fx.Supply(fx.Annotate(reg, fx.As(new(prometheus.Registerer))))
}

// primary ends the labels of the primary pool's series.
const primary = `replica="",role="primary"}`

// dbSeries returns the series of s that this package exports.
func dbSeries(s map[string]float64) []string {
	var names []string
	for name := range s {
		if strings.HasPrefix(name, "pgxpool_") || strings.HasPrefix(name, "db_client_") {
			names = append(names, name)
		}
	}
	return names
}

// valueOf returns the value of the one series of s named name, whatever its labels.
func valueOf(t *testing.T, s map[string]float64, name string) float64 {
	t.Helper()
	var found []float64
	for series, v := range s {
		if series == name || strings.HasPrefix(series, name+"{") {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d series named %s, want 1: %v", len(found), name, dbSeries(s))
	}
	return found[0]
}

func TestModuleExportsTheAppsPool(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	var q dbmodule.Querier
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, pg.Module(t), withRegisterer(reg), fx.Populate(&q))
	app.RequireStart()
	if _, err := q.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, reg)
	if got := valueOf(t, s, "pgxpool_acquires_total"); got < 2 { // the start ping and the query
		t.Errorf("pgxpool_acquires_total = %v, want at least 2", got)
	}
	labelled := false
	for series := range s {
		labelled = labelled || strings.HasPrefix(series, "db_client_connection_max{") && strings.HasSuffix(series, primary)
	}
	if !labelled {
		t.Errorf("no db_client_connection_max series labelled as the primary's: %v", dbSeries(s))
	}
	if got := valueOf(t, s, "db_client_connection_max"); got != config.DefaultMaxConns {
		t.Errorf("db_client_connection_max = %v, want %d", got, config.DefaultMaxConns)
	}
	if got := s[statements("SELECT", "")]; got < 1 {
		t.Errorf("%s = %v, want at least 1", statements("SELECT", ""), got)
	}
	app.RequireStop()
	if left := dbSeries(scrape(t, reg)); len(left) > 0 {
		t.Errorf("still registered after stop: %v", left)
	}
}

// The module asks for the pool, so an app that decorates its Querier (with
// a wrapper that is no pool) keeps the pool's metrics.
func TestModuleExportsThePoolBehindADecoratedQuerier(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	var q dbmodule.Querier
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, pg.Module(t), withRegisterer(reg),
		fx.Decorate(func(q dbmodule.Querier) dbmodule.Querier { return wrappedQuerier{q} }), fx.Populate(&q))
	app.RequireStart()
	defer app.RequireStop()
	if _, ok := q.(wrappedQuerier); !ok {
		t.Fatalf("the Querier is a %T, not the wrapper", q)
	}
	if got := valueOf(t, scrape(t, reg), "db_client_connection_max"); got != config.DefaultMaxConns {
		t.Errorf("db_client_connection_max = %v, want %d", got, config.DefaultMaxConns)
	}
}

// wrappedQuerier is what an app might decorate its Querier with.
type wrappedQuerier struct{ dbmodule.Querier }

// There is no default registry: metrics go where the app says, or the app
// does not start.
func TestModuleNeedsARegisterer(t *testing.T) {
	t.Parallel()
	app := fx.New(dbmodule.Module, dbmetrics.Module, pg.Module(t), fx.NopLogger, fx.Invoke(func(dbmodule.Querier) {}))
	if err := app.Err(); !errors.Is(err, dbmetrics.ErrNoRegisterer) || !strings.Contains(err.Error(), "prometheus.Registerer") {
		t.Errorf("app without a Registerer: %v; want ErrNoRegisterer", err)
	}
	if left := dbSeries(scrape(t, prometheus.DefaultGatherer)); len(left) > 0 {
		t.Errorf("registered with Prometheus's default registry: %v", left)
	}
}

func TestTwoAppsCannotShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	usePool := fx.Invoke(func(dbmodule.Querier) {})
	first := fxtest.New(t, dbmodule.Module, dbmetrics.Module, pg.Module(t), withRegisterer(reg), usePool)
	defer first.RequireStart().RequireStop()
	second := fx.New(dbmodule.Module, dbmetrics.Module, pg.Module(t), withRegisterer(reg), usePool, fx.NopLogger)
	if err := second.Err(); err == nil || !strings.Contains(err.Error(), "prometheus.Registry of its own") {
		t.Errorf("second app on one registry: %v; want an error that says what to do", err)
	}
}

// fakeQuerier stands in for the database; it has no pool statistics.
type fakeQuerier struct{ dbmodule.Querier }

func (fakeQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.NewCommandTag("SELECT 1"), nil
}

func TestModuleWithAFakeQuerierBuildsNoPool(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	// No config.DB is replaced: building the pool would fail for want of
	// DATABASE_URL (unless the environment has one, which no test relies on).
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, withRegisterer(reg),
		fx.Replace(fx.Annotate(fakeQuerier{}, fx.As(new(dbmodule.Querier)))),
		fx.Decorate(func(config.DB) config.DB { t.Error("the database config was read"); return config.DB{} }))
	app.RequireStart().RequireStop()
	if got := dbSeries(scrape(t, reg)); len(got) > 0 {
		t.Errorf("metrics registered without a pool: %v", got)
	}
}

// Module in a module of its own, away from where the pool is used, cannot
// see the pool being built: starting says so rather than export half the
// metrics.
func TestModuleOutOfPlaceFailsStart(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var pool *pgxpool.Pool
	app := fx.New(dbmodule.Module, fx.Module("observability", dbmetrics.Module), pg.Module(t), withRegisterer(reg),
		fx.NopLogger, fx.Populate(&pool))
	err := app.Start(context.Background())
	if pool != nil {
		// The pool's own start hook, which would close it on failure, never ran.
		defer pool.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "beside dbmodule.Module") {
		t.Errorf("start with dbmetrics.Module out of place: %v; want an error that says where it goes", err)
	}
}

// Both in one module of the app's is as good as both at the top.
func TestModuleBesideDBModuleInAModule(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	app := fxtest.New(t, fx.Module("database", dbmodule.Module, dbmetrics.Module), pg.Module(t), withRegisterer(reg),
		fx.Invoke(func(dbmodule.Querier) {}))
	app.RequireStart()
	defer app.RequireStop()
	if got := valueOf(t, scrape(t, reg), "db_client_connection_max"); got != config.DefaultMaxConns {
		t.Errorf("db_client_connection_max = %v, want %d", got, config.DefaultMaxConns)
	}
}

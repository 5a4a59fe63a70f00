package dbmetrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
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

// primary is the labels of the primary pool's series.
const primary = `{replica="",role="primary"}`

// dbSeries returns the series of s that this package exports.
func dbSeries(s map[string]float64) []string {
	var names []string
	for name := range s {
		if strings.HasPrefix(name, "pgxpool_") || strings.HasPrefix(name, "pgx_") {
			names = append(names, name)
		}
	}
	return names
}

func TestModuleExportsTheAppsPool(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	var q dbmodule.Querier
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, fx.Replace(pg.Config(t)), withRegisterer(reg), fx.Populate(&q))
	app.RequireStart()
	if _, err := q.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, reg)
	if got := s["pgxpool_acquires_total"+primary]; got < 2 { // the start ping and the query
		t.Errorf("pgxpool_acquires_total = %v, want at least 2", got)
	}
	if got := s["pgxpool_max_connections"+primary]; got != config.DefaultMaxConns {
		t.Errorf("pgxpool_max_connections = %v, want %d", got, config.DefaultMaxConns)
	}
	if got := s[statements("query", "ok")]; got < 1 {
		t.Errorf("%s = %v, want at least 1", statements("query", "ok"), got)
	}
	app.RequireStop()
	if left := dbSeries(scrape(t, reg)); len(left) > 0 {
		t.Errorf("still registered after stop: %v", left)
	}
}

// Without a Registerer of its own, an app registers with Prometheus's
// default registry, which promhttp.Handler serves.
func TestModuleDefaultsToTheDefaultRegisterer(t *testing.T) {
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, fx.Replace(pg.Config(t)))
	app.RequireStart()
	s := scrape(t, prometheus.DefaultGatherer)
	if _, ok := s["pgxpool_total_connections"+primary]; !ok {
		t.Errorf("no pool metrics in the default registry: %v", dbSeries(s))
	}
	app.RequireStop()
	if left := dbSeries(scrape(t, prometheus.DefaultGatherer)); len(left) > 0 {
		t.Errorf("still in the default registry after stop: %v", left)
	}
}

func TestTwoAppsCannotShareARegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	first := fxtest.New(t, dbmodule.Module, dbmetrics.Module, fx.Replace(pg.Config(t)), withRegisterer(reg))
	defer first.RequireStart().RequireStop()
	second := fx.New(dbmodule.Module, dbmetrics.Module, fx.Replace(pg.Config(t)), withRegisterer(reg), fx.NopLogger)
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

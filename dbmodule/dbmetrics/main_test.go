package dbmetrics_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

// pg is this package's PostgreSQL server, started on first use; its
// databases have the example store's schema.
var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// openPool opens a pool on the test server with opts, closed when the test ends.
func openPool(t *testing.T, cfg config.DB, opts ...dbmodule.Option) *pgxpool.Pool {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pg.URL(t)
	}
	pool, err := dbmodule.Open(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbmodule.Close(context.Background(), pool) }) //nolint:errcheck // test cleanup
	return pool
}

// scrape gathers g into a map from series, written `name{label="value",...}`
// with labels in order, to its value: a counter's or gauge's value, or a
// histogram's sample count.
func scrape(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	series := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				series[name] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				series[name] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				series[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return series
}

// statements is the series name of the statement duration histogram for a
// summary and an error type ("" for success).
func statements(summary, errorType string) string {
	return fmt.Sprintf("%s{%s=%q,db_system_name=\"postgresql\",%s=%q}",
		dbmetrics.StatementDurationName, dbmetrics.LabelQuerySummary, summary, dbmetrics.LabelErrorType, errorType)
}

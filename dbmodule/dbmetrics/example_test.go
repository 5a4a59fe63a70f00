package dbmetrics_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
)

// databaseURL stands for the URL of a database; here, the test server's.
func databaseURL() string {
	url, err := pg.Start()
	if err != nil {
		panic(err)
	}
	return url
}

// labelsOf writes a series' labels as Prometheus does.
func labelsOf(m *dto.Metric) string {
	var pairs []string
	for _, l := range m.GetLabel() {
		pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(pairs, ",") + "}"
}

// An fx app adds Module and gives it the registry its /metrics serves.
func Example() {
	reg := prometheus.NewRegistry()
	app := fx.New(
		dbmodule.Module,
		dbmetrics.Module,
		fx.Supply(fx.Annotate(reg, fx.As(new(prometheus.Registerer)))),
		fx.Replace(config.DB{URL: databaseURL(), MaxConns: 4}),
		fx.NopLogger,
		fx.Invoke(func(lc fx.Lifecycle, q dbmodule.Querier) {
			lc.Append(fx.StartHook(func(ctx context.Context) error {
				_, err := q.Exec(ctx, "-- name: Answer :one\nSELECT 42")
				return err
			}))
		}),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(context.Background()) //nolint:errcheck // example
	families, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range families {
		switch f.GetName() {
		case "db_client_connection_max":
			fmt.Println(f.GetName(), f.GetMetric()[0].GetGauge().GetValue())
		case dbmetrics.StatementDurationName:
			for _, m := range f.GetMetric() {
				if n := m.GetHistogram().GetSampleCount(); n > 0 {
					fmt.Println(f.GetName(), labelsOf(m))
				}
			}
		}
	}
	// Output:
	// db_client_connection_max 4
	// db_client_operation_duration_seconds {db_query_summary="Answer",db_system_name="postgresql",error_type=""}
}

// Without fx, register a PoolCollector and a StatementMetrics yourself; labels
// tell the pools of one process apart.
func ExampleNewStatementMetrics() {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"pool": "reports"}
	metrics, err := dbmetrics.NewStatementMetrics(labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := dbmodule.Open(ctx, config.DB{URL: databaseURL()}, dbmodule.WithObservers(metrics))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	collector, err := dbmetrics.NewPoolCollector(pool, labels)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg.MustRegister(metrics, collector)

	_, err = pool.Exec(ctx, "-- name: Divide :one\nSELECT 1/0")
	fmt.Println("query failed:", err != nil)
	families, _ := reg.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if f.GetName() == dbmetrics.StatementDurationName && m.GetHistogram().GetSampleCount() > 0 {
				fmt.Println(f.GetName(), labelsOf(m), m.GetHistogram().GetSampleCount())
			}
		}
	}
	// Output:
	// query failed: true
	// db_client_operation_duration_seconds {db_query_summary="Divide",db_system_name="postgresql",error_type="22012",pool="reports"} 1
}

// Without fx, make the Guard, open the pool with it, and register a
// GuardCollector beside the PoolCollector; only the guardrails that are on
// have metrics.
func ExampleNewGuardCollector() {
	ctx := context.Background()
	cfg := config.DB{URL: databaseURL(), AcquireTimeout: 2 * time.Second, LeakThreshold: time.Minute}
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg})
	if err != nil {
		fmt.Println(err)
		return
	}
	pool, err := dbmodule.Open(ctx, cfg, dbmodule.WithGuard(guard))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	collector, err := dbmetrics.NewGuardCollector(guard, pool, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector)

	families, _ := reg.Gather()
	for _, f := range families {
		fmt.Println(f.GetName(), f.GetType())
	}
	// Output:
	// db_client_connection_pending_requests GAUGE
	// db_client_connection_timeouts_total COUNTER
	// db_client_connection_wait_time_seconds HISTOGRAM
	// dbmodule_connection_leaks_total COUNTER
	// dbmodule_held_connections GAUGE
}

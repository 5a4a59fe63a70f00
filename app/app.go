package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/httpserver"
	"github.com/fxpg/fxpg/store"
)

// Module is the whole service as one fx option.
var Module = fx.Options(
	fx.Provide(config.LoadApp, NewLogger),
	fx.WithLogger(func(log *zap.Logger) fxevent.Logger {
		// fx's errors carry their own chain; a stack trace of fx internals adds nothing.
		l := &fxevent.ZapLogger{Logger: log.Named("fx").WithOptions(zap.AddStacktrace(zapcore.FatalLevel))}
		l.UseLogLevel(zapcore.DebugLevel) // fx's wiring is noise at info; its errors still log at error
		return l
	}),
	dbmodule.Module,
	migrate.Module,
	fx.Supply(migrate.Files{FS: store.Migrations()}),
	store.Module,
	dbmetrics.Module,
	// The service has no trace exporter, so it leaves dbtrace out, and with
	// it OpenTelemetry's weight; asked to trace, it says so rather than
	// ignore the setting.
	fx.Provide(dbmodule.AsTracers(refuseTracing)),
	fx.Provide(
		NewMetricsRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		func(r *prometheus.Registry) prometheus.Gatherer { return r },
	),
	httpserver.Module,
	fx.Provide(httpserver.AsCheck(databaseCheck), httpserver.AsCheck(replicaCheck), httpserver.AsRoute(metricsRoute)),
)

// New builds the service; opts come last, so they can replace any part of it.
func New(opts ...fx.Option) *fx.App {
	return fx.New(append([]fx.Option{Module}, opts...)...)
}

// databaseCheck makes /readyz ping the database through the Querier, so that
// an app whose Querier is a fake is ready without one.
func databaseCheck(q dbmodule.Querier) httpserver.Check {
	return httpserver.Check{Name: "database", Check: func(ctx context.Context) error { return dbmodule.Ping(ctx, q) }}
}

// replicaCheck reports on /readyz the read replicas out of rotation, by
// index, without making the service unready: reads go to the others, or to
// the primary, meanwhile. It asks for dbmodule.Roles, which makes nothing,
// so that an app whose Querier is a fake needs no database for it.
func replicaCheck(roles *dbmodule.Roles) httpserver.Check {
	return httpserver.Check{Name: "database replicas", Optional: true, Check: func(ctx context.Context) error {
		if r := roles.Replicas(); r != nil {
			return r.Check(ctx)
		}
		return nil
	}}
}

// refuseTracing stands where dbtrace.Module would, among the pool's
// tracers: it adds none, and fails start when DB_TRACING asks for spans,
// which this service has nowhere to send.
func refuseTracing() ([]pgx.QueryTracer, error) {
	cfg, err := config.Parse[tracingConfig](config.Environ())
	if err != nil {
		return nil, fmt.Errorf("tracing config: %w", err)
	}
	if cfg.Enabled {
		return nil, &config.VarError{Var: "DB_TRACING", Err: errors.New("is true, but this service has no trace exporter: " +
			"compose dbtrace.Module and a trace.TracerProvider into your own app, or set DB_TRACING=false")}
	}
	return nil, nil
}

// tracingConfig is the variable of dbtrace.Config that the service reads to
// refuse it; importing dbtrace, a module of its own, would bring
// OpenTelemetry into the service's build.
type tracingConfig struct {
	Enabled bool `env:"DB_TRACING"`
}

// NewMetricsRegistry makes the service's Prometheus registry, with the Go
// runtime's and the process's metrics; the database's join it through
// dbmetrics.Module. Each app has its own, so two apps in one process (as in
// tests) do not collide. Replace it with fx.Replace(yourRegistry); the
// Registerer and Gatherer the app provides follow it.
func NewMetricsRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// metricsRoute serves the registry at GET /metrics in Prometheus's formats.
func metricsRoute(g prometheus.Gatherer, log *zap.Logger) httpserver.Route {
	return httpserver.Route{Pattern: "GET /metrics", Handler: promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError, // serve what was gathered; a broken collector is logged
	})}
}

// NewLogger makes the service's logger: console output in development, JSON
// in production, at LOG_LEVEL.
func NewLogger(cfg config.App, lc fx.Lifecycle) (*zap.Logger, error) {
	cfg = cfg.WithDefaults()
	zc := zap.NewProductionConfig()
	if cfg.Development() {
		zc = zap.NewDevelopmentConfig()
	}
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, &config.VarError{Var: "LOG_LEVEL", Err: err}
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	lc.Append(fx.StopHook(func() { _ = log.Sync() }))
	return log, nil
}

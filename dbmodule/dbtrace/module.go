package dbtrace

import (
	"errors"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Module adds an OpenTelemetry tracer to the pool's tracers when DB_TRACING
// is true, and nothing otherwise. It reads its Config from the process
// environment (LoadConfig); replace it with fx.Replace to decide in code. It is made only
// when the pool is, so an app with a fake Querier needs no provider.
var Module = fx.Module("dbtrace",
	fx.Provide(LoadConfig, dbmodule.AsTracers(NewTracers)),
)

// Params are NewTracers' dependencies.
type Params struct {
	fx.In

	Config Config
	// TracerProvider receives the spans; required when DB_TRACING is true.
	TracerProvider trace.TracerProvider `optional:"true"`
	// MeterProvider receives otelpgx's own metrics; without one they are
	// dropped.
	MeterProvider metric.MeterProvider `optional:"true"`
}

// NewTracers returns the pool's OpenTelemetry tracer when p.Config.Enabled
// is set, and none otherwise. Tracing with no TracerProvider is an error
// naming DB_TRACING.
func NewTracers(p Params) ([]pgx.QueryTracer, error) {
	if !p.Config.Enabled {
		return nil, nil
	}
	if p.TracerProvider == nil {
		return nil, &config.VarError{Var: "DB_TRACING", Err: errors.New("is true, but the app provides no trace.TracerProvider to send spans to: " +
			"provide one through fx, e.g. fx.Provide(otel.GetTracerProvider) for OpenTelemetry's global one, or set DB_TRACING=false")}
	}
	var opts []otelpgx.Option
	if p.MeterProvider != nil {
		// Only then: otelpgx names every statement for its metrics, sampled
		// or not.
		opts = append(opts, otelpgx.WithMeterProvider(p.MeterProvider), otelpgx.WithMetricOperationName(metricOperationName))
	}
	t, err := NewTracer(p.TracerProvider, p.Config, opts...)
	if err != nil {
		return nil, err
	}
	return []pgx.QueryTracer{t}, nil
}

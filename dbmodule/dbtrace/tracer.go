package dbtrace

import (
	"errors"

	"github.com/exaring/otelpgx"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/fxpg/fxpg/config"
)

// NewTracer returns a pgx tracer that sends spans to tp, with argument values
// only when cfg.TraceQueryArgs is set. It ignores cfg.Tracing: the caller
// decided to trace. opts go to otelpgx after this package's own, so they win;
// without otelpgx.WithMeterProvider, otelpgx's metrics are dropped. Add the
// tracer to a pool with dbmodule.WithTracers.
func NewTracer(tp trace.TracerProvider, cfg config.DB, opts ...otelpgx.Option) (*otelpgx.Tracer, error) {
	if tp == nil {
		// otelpgx would fall back to OpenTelemetry's global provider.
		return nil, errors.New("trace database statements: no trace.TracerProvider")
	}
	own := []otelpgx.Option{
		otelpgx.WithTracerProvider(tp),
		// Not the global provider: two apps in one process keep apart.
		otelpgx.WithMeterProvider(noop.NewMeterProvider()),
	}
	if cfg.TraceQueryArgs {
		own = append(own, otelpgx.WithIncludeQueryParameters())
	}
	return otelpgx.NewTracer(append(own, opts...)...), nil
}

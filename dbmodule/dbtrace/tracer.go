package dbtrace

import (
	"context"
	"errors"

	"github.com/exaring/otelpgx"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/fxpg/fxpg/dbmodule"
)

// NewTracer returns a pgx tracer that sends spans to tp, with argument values
// only when c.QueryArgs is set. It ignores c.Enabled: the caller decided to
// trace. Spans are named by SpanName. opts go to otelpgx after this
// package's own, so they win; without otelpgx.WithMeterProvider, otelpgx's
// metrics are dropped. Add the tracer to a pool with dbmodule.WithTracers.
func NewTracer(tp trace.TracerProvider, c Config, opts ...otelpgx.Option) (*otelpgx.Tracer, error) {
	if tp == nil {
		// otelpgx would fall back to OpenTelemetry's global provider.
		return nil, errors.New("trace database statements: no trace.TracerProvider")
	}
	own := []otelpgx.Option{
		otelpgx.WithTracerProvider(tp),
		// Not the global provider: two apps in one process keep apart.
		otelpgx.WithMeterProvider(noop.NewMeterProvider()),
		otelpgx.WithSpanNameFunc(SpanName),
	}
	if c.QueryArgs {
		own = append(own, otelpgx.WithIncludeQueryParameters())
	}
	return otelpgx.NewTracer(append(own, opts...)...), nil
}

// SpanName names the span of a statement, its prepare and its part of a
// batch: by the name sqlc or the app declares in it (-- name: GetAuthor
// :one), else by its SQL command (SELECT, BEGIN, ...), as dbmodule.StatementName
// reads them, else UNKNOWN, as otelpgx says. So sqlc's queries each have a
// span name of their own instead of all being SELECT, and no span name holds
// other SQL text. otelpgx gives db.operation.name the same value; the SQL
// itself is in db.query.text.
func SpanName(sql string) string {
	if name := dbmodule.StatementName(sql); name != "" {
		return name
	}
	return unknown
}

// unknown is otelpgx's span name for a statement it cannot name.
const unknown = "UNKNOWN"

// metricOperationName gives otelpgx's own metrics, when the app provides a
// metric.MeterProvider, the statement's name as db.operation.name, as its
// span has.
func metricOperationName(_ context.Context, sql string) string { return dbmodule.StatementName(sql) }

// Package dbtrace adds OpenTelemetry spans for the pool's statements, with
// github.com/exaring/otelpgx, to an app that asks for them:
//
//	fx.New(
//		dbmodule.Module,
//		dbtrace.Module, // spans only with DB_TRACING=true
//		fx.Supply(fx.Annotate(tracerProvider, fx.As(new(trace.TracerProvider)))),
//	)
//
// # What a span holds
//
// A span per statement (named by its operation: SELECT, BEGIN, COMMIT, ...),
// per batch, copy, prepare and connect, and per pool acquire, each with the
// server's address, the database and the user. Statements carry their SQL
// text (db.query.text), never argument values unless DB_TRACE_QUERY_ARGS is
// true (pgx.query.parameters), as they may hold personal data or secrets.
// Statements are traced only inside a trace: a query with no recording span
// in its context starts no trace of its own.
//
// # Off by default
//
// With DB_TRACING unset or false, Module adds nothing to the pool: no tracer
// runs and nothing is allocated per statement.
//
// # Providers
//
// Spans go to the trace.TracerProvider the app provides through fx. There is
// no default: with DB_TRACING=true and no provider, the app fails to start
// with an error that says so, rather than trace into nothing. An app that
// sets OpenTelemetry's global provider can hand it over with
// fx.Provide(otel.GetTracerProvider). otelpgx also records its own metrics
// (db.client.operation.duration); they go to the metric.MeterProvider the app
// provides, or nowhere (package dbmetrics exports Prometheus metrics).
package dbtrace

// Package dbtrace adds OpenTelemetry spans for the pool's statements, with
// github.com/exaring/otelpgx, to an app that asks for them:
//
//	fx.New(
//		dbmodule.Module,
//		dbtrace.Module, // spans only with DB_TRACING=true
//		fx.Supply(fx.Annotate(tracerProvider, fx.As(new(trace.TracerProvider)))),
//	)
//
// It is a module of its own (github.com/fxpg/fxpg/dbmodule/dbtrace, in this
// repository), so that otelpgx and OpenTelemetry stay out of the build and
// the module graph of apps that do not trace.
//
// # Config
//
// Its settings are its own (Config), read from the environment by
// LoadConfig, not part of config.DB:
//
//	DB_TRACING           spans for statements; default false
//	DB_TRACE_QUERY_ARGS  argument values in spans; default false
//
// # What a span holds
//
// A span per statement, per batch, copy, prepare and connect, and per pool
// acquire, each with the server's address, the database and the user. A
// statement's span, its prepare's and its part of a batch's are named by
// SpanName: the name sqlc writes into each statement it generates
// (-- name: GetAuthor :one), or an app into its own SQL, else the SQL command
// (SELECT, BEGIN, COMMIT, ...), never other SQL text; otelpgx alone would
// name all of sqlc's spans SELECT, INSERT or UPDATE. otelpgx sets
// db.operation.name to the same value. Statements carry their SQL text
// (db.query.text), never argument values unless DB_TRACE_QUERY_ARGS is true
// (pgx.query.parameters), as they may hold personal data or secrets.
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
// (db.client.operation.duration, with the statement's name as
// db.operation.name); they go to the metric.MeterProvider the app provides,
// or nowhere (package dbmetrics exports Prometheus metrics).
package dbtrace

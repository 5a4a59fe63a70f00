// Package dbmetrics exports a pgx pool to Prometheus: how long each
// statement takes, by the name sqlc or the app gave it, and the pool's
// connections. Names and labels follow OpenTelemetry's semantic conventions
// for database clients where they have one, spelled as Prometheus spells an
// OpenTelemetry metric (dots become underscores; a unit of seconds adds
// _seconds, a counter _total); what pgxpool counts beyond them keeps a
// pgxpool_ name. There is no OpenTelemetry SDK in it: it is
// prometheus/client_golang only.
//
//	fx.New(
//		dbmodule.Module,
//		dbmetrics.Module,
//		fx.Supply(fx.Annotate(registry, fx.As(new(prometheus.Registerer)))),
//	)
//
// # Statements
//
// StatementMetrics, told of every statement by the pool's Tracer, observes it
// in one histogram:
//
//	OpenTelemetry                   Prometheus
//	db.client.operation.duration    db_client_operation_duration_seconds   histogram
//	  db.system.name                  db_system_name="postgresql"
//	  db.query.summary                db_query_summary
//	  error.type                      error_type
//
// db_query_summary is the statement's dbmodule.StatementName: the name sqlc
// writes into each statement it generates (-- name: GetAuthor :one), which
// an app can write into its own SQL the same way, or else the SQL command
// (SELECT, BEGIN, COMMIT, ...), or else empty. A batch is "BATCH GetAuthor"
// when all its statements are GetAuthor and "BATCH" otherwise, a CopyFrom
// "COPY". error_type is empty for success, the SQLSTATE code of a server's
// error ("23505", "57014" for statement_timeout), context.Canceled or
// context.DeadlineExceeded when the caller's context ended, and _OTHER for
// the rest (a lost connection, say).
//
// No label carries SQL text or argument values, and the number of series is
// bounded: summaries are the names the app declares plus the commands, at
// most MaxSummaries of them (the rest count as _OTHER), each with at most 64
// error types. db.operation.name is left out: PostgreSQL runs several
// commands in one statement, and the conventions advise against reading it
// from the SQL in that case.
//
// # Pool
//
// PoolCollector reads pgxpool.Stat when Prometheus scrapes, so it costs
// nothing between scrapes. Every metric carries db_client_connection_pool_name
// (db.client.connection.pool.name): host:port/database unless set.
//
//	OpenTelemetry                   Prometheus
//	db.client.connection.count      db_client_connection_count             gauge, db_client_connection_state="idle" or "used"
//	db.client.connection.max        db_client_connection_max               gauge
//	db.client.connection.idle.min   db_client_connection_idle_min          gauge
//	                                pgxpool_constructing_connections       gauge
//	                                pgxpool_acquires_total                 counter
//	                                pgxpool_acquire_seconds_total          counter, waits included
//	                                pgxpool_empty_acquires_total           counter, acquires that found no idle connection
//	                                pgxpool_empty_acquire_wait_seconds_total counter
//	                                pgxpool_canceled_acquires_total        counter
//	                                pgxpool_connections_opened_total       counter
//	                                pgxpool_connections_closed_total       counter, reason="max_lifetime" or "max_idle_time"
//
// The conventions' histograms of each acquire's wait and each connection's
// use (db.client.connection.wait_time, .use_time), and the counts of waiting
// callers and of acquires that timed out (.pending_requests, .timeouts),
// need more than pgxpool.Stat, which reports totals only; pgxpool has no
// idle.max to report.
//
// # Registerer
//
// Module registers with the prometheus.Registerer the app provides through
// fx, and fails with ErrNoRegisterer when there is none, rather than fall
// back to prometheus.DefaultRegisterer: the same policy as package dbtrace,
// which needs the app's trace provider. Two apps in one process each need a
// registry of their own (package app provides one). Stopping the app
// unregisters the metrics.
//
// Module takes the pool as it is built, so decorating the app's
// dbmodule.Querier changes nothing, and an app whose Querier is a fake
// builds no pool and exports no database metrics.
package dbmetrics

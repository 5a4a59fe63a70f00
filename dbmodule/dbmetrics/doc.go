// Package dbmetrics exports a pgx pool to Prometheus: the pool's statistics
// (connections acquired, idle, being opened; acquires, their time and their
// waits; connections opened and closed) and a histogram of statement
// durations by outcome.
//
//	fx.New(
//		dbmodule.Module,
//		dbmetrics.Module, // registers with the app's prometheus.Registerer
//	)
//
// # Metrics
//
// PoolCollector reads pgxpool.Stat when Prometheus scrapes, so it costs
// nothing between scrapes:
//
//	pgxpool_acquired_connections            gauge
//	pgxpool_idle_connections                gauge
//	pgxpool_constructing_connections        gauge
//	pgxpool_total_connections               gauge
//	pgxpool_max_connections                 gauge
//	pgxpool_acquires_total                  counter
//	pgxpool_acquire_seconds_total           counter
//	pgxpool_empty_acquires_total            counter
//	pgxpool_empty_acquire_wait_seconds_total counter
//	pgxpool_canceled_acquires_total         counter
//	pgxpool_connections_opened_total        counter
//	pgxpool_connections_closed_total        counter, reason="max_lifetime" or "max_idle_time"
//
// StatementMetrics, told of every statement by the pool's Tracer, observes it in
//
//	pgx_statement_duration_seconds          histogram, operation="query", "batch" or "copy_from",
//	                                        outcome="ok", "error" or "canceled"
//
// Its labels have a fixed, small set of values: never the SQL text, which
// would make a series per statement and could carry literals.
//
// # Registerer
//
// Module registers with the prometheus.Registerer the app provides, or
// prometheus.DefaultRegisterer, the one promhttp.Handler serves, when it
// provides none. Two apps in one process each need a registry of their own
// (package app provides one). Stopping the app unregisters the metrics.
//
// Module finds the pool through the app's dbmodule.Querier, so an app whose
// Querier is replaced by a fake builds no pool and exports no pool metrics.
package dbmetrics

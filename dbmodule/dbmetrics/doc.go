// Package dbmetrics exports a pgx pool to Prometheus: how long each
// statement takes, by the name sqlc or the app gave it, the pool's
// connections, and the counters of its guardrails. Names and labels follow OpenTelemetry's semantic conventions
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
// pgxpool has no idle.max to report.
//
// # Guardrails
//
// GuardCollector reads the counters of the pool's dbmodule.Guard
// (Guard.Stats) when Prometheus scrapes, with the same labels as the pool's
// metrics. The Guard counts with the atomic adds its guardrails make anyway,
// so the collector adds nothing to the query path (a scrape of it takes
// about 4 µs). It exports the metrics of the guardrails that are on, and
// none of those that are off, which count nothing:
//
//	OpenTelemetry                          Prometheus
//	DB_ACQUIRE_TIMEOUT
//	db.client.connection.wait_time         db_client_connection_wait_time_seconds   histogram, 50 µs to 10 s
//	db.client.connection.pending_requests  db_client_connection_pending_requests    gauge, callers in Acquire now
//	db.client.connection.timeouts          db_client_connection_timeouts_total      counter
//	DB_LEAK_THRESHOLD
//	                                       dbmodule_connection_leaks_total          counter, each leak once
//	                                       dbmodule_held_connections                gauge, hijacked ones included
//	DB_PASSWORD_FILE or a PasswordProvider
//	                                       dbmodule_password_fetches_total          counter, file reads or provider calls
//	                                       dbmodule_password_failures_total         counter
//	                                       dbmodule_credential_retries_total        counter, calls the Querier tried again
//
// The wait histogram times every acquire, from its call to its connection
// or its error: the wait for a free connection, the opening of a new one
// when the pool had room (or the health ping of an idle one), and those
// that timed out or were canceled too. An acquire counts in timeouts_total
// when DB_ACQUIRE_TIMEOUT, not its caller's context, ended it.
//
// Module registers a GuardCollector of the app's *dbmodule.Guard. A program
// without fx makes the Guard (dbmodule.NewGuard), opens the pool with
// dbmodule.WithGuard, and registers NewGuardCollector(guard, pool, labels).
//
// db.client.connection.use_time, how long each connection is held, is not
// exported: pgxpool's release tracer is told of the connection but not of
// when it was acquired, so it takes a clock read at every acquire and
// release and a histogram observation per release, on every query, where
// the module otherwise installs no tracer at all. (With DB_LEAK_THRESHOLD
// the acquire's clock read is made already; the release's would remain.)
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

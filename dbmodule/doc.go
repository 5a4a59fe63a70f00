// Package dbmodule gives an fx app a PostgreSQL connection pool: configured
// from the environment, pinged when the app starts, closed when it stops,
// logged through the app's zap logger, and replaceable in tests.
//
//	fx.New(
//		dbmodule.Module,
//		fx.Provide(NewUserStore), // takes a dbmodule.Querier
//	)
//
// # What it provides
//
// Module provides config.DB (from config.LoadDB), *Guard (NewGuard), *pgxpool.Pool (NewPool),
// Querier (the pool, as an interface that pgx.Tx and *pgx.Conn satisfy
// too), ReadQuerier (the read handle) and *Roles. It uses the app's
// *zap.Logger when there is one and never provides one. Nothing is global:
// two apps in one process have two pools.
//
// # Roles: the primary and read replicas
//
// Querier is the primary's: writes, and reads that must be fresh. ReadQuerier
// is a type of its own with the same methods, for reads that a replica may
// serve. Without DATABASE_READ_URL it is the Querier itself, so code written
// against it runs unchanged on one server. With it, it is a *Replicas: one
// pool per host the URL lists, made like the primary's from the same DB_*
// settings, started and stopped with the app. Reads go round robin to the
// replicas in rotation: standbys that answer their checks (every
// ReplicaCheckPeriod) and lag by no more than DB_REPLICA_MAX_LAG, measured
// by WAL position; with none, to the primary, logged once per change.
// WithReadYourWrites makes a request's reads see its own commits. A second
// pool is thus a role of the same module, not a second module: nothing is
// named or tagged, and Roles tells readiness checks and metrics of the
// replicas without making them. Replace both handles with one fake:
//
//	fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Querier)), fx.As(new(dbmodule.ReadQuerier))))
//
// # Failover
//
// A call through Querier that fails before it reaches a server (no
// connection could be opened, the server refused the startup, a URL's
// target_session_attrs turned every host down) waits and tries again while
// one caller probes for all, within the caller's deadline and
// RideThroughLimit; a call whose statement may have run is never retried.
// With a URL listing every node and target_session_attrs=read-write, a
// server that turns read-only is left for the new primary. A lost
// connection costs only itself (the pool pings its server's others before
// their next use); a crash or demotion drops every connection to that
// server, once. An outage is logged in two lines, not one per dial.
//
// # Which URL
//
// The pool connects to DATABASE_URL, or DIRECT_URL when DATABASE_URL is
// unset. Migrations connect to DIRECT_URL, or DATABASE_URL when DIRECT_URL is
// unset, because a direct connection bypasses poolers such as PgBouncer,
// whose transaction mode breaks the session locks migrations take. Neither
// set is an error naming both.
//
// # Lifecycle
//
// Making the pool does no I/O; the connections pgxpool opens in the
// background for DB_MIN_CONNS are held until the app starts. OnStart pings
// the database and fails within DB_CONNECT_TIMEOUT (plus DB_PING_TIMEOUT)
// when it cannot be reached, with an error that names the host, port and
// variable, never the password; it also warns when DB_MAX_CONNS exceeds what
// the server's max_connections leaves free (a check that runs right after
// start, in the background, as the app need not wait for advice). OnStop closes the pool, letting
// queries in flight finish, but returns when the stop context ends even if a
// caller never released a connection.
//
// Broken connections are the pool's to replace: after a database restart or
// a failover the next acquire connects anew, so the app needs no restart.
//
// # Guardrails
//
// Off by default, each installing nothing until set: DB_LEAK_THRESHOLD logs
// once, with the acquiring stack, a connection held longer than it;
// DB_ACQUIRE_TIMEOUT bounds the wait for a free connection, then returns a
// *PoolExhaustedError (errors.Is ErrPoolExhausted); DB_PASSWORD_FILE, or a
// PasswordProvider the app provides with AsPasswordProvider, gives every new
// connection the current password, and the Querier retries a connect that a
// rotation's gap refuses. RetireConnections closes connections opened with
// old credentials at once. The module's *Guard holds them; its Stats are for
// metrics.
//
// # Replacing it in tests
//
// Point an app at a test database without touching the environment:
//
//	fx.Replace(config.DB{URL: testURL})
//
// Or run it with no database at all; nothing is parsed and nothing connects:
//
//	fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Querier))))
//
// Package dbmodule/dbtest starts a real PostgreSQL for tests.
//
// # LISTEN/NOTIFY
//
// ListenerModule (opt-in; not part of Module) provides a *Listener and the
// Notifications handle. The Listener has a connection of its own, to
// DIRECT_URL (else DATABASE_URL), since a pooler in transaction mode loses
// LISTEN. Apps subscribe with Listen(ctx, channel, handler), before or after
// start; start (after the pool's) connects and fails, like the pool's ping,
// when the database cannot be reached. After a lost connection it reconnects (at once, then
// with jittered backoff from 50 ms to 5 s), LISTENs to every channel again,
// and then calls each handler's HandleGap, as notifications sent in between
// are gone; the first LISTEN has no gap. Each subscription's handler runs on
// a goroutine of its own; one more than MaxPendingNotifications behind gets
// a gap instead of stalling the connection. Replace Notifications with a
// fake (annotated with fx.As) to test an app's handlers with no database.
//
// # Logging and tracing
//
// The pool's Tracer times each statement once: it logs statements at debug,
// slow ones (DB_SLOW_QUERY_THRESHOLD) at warn, argument values only with
// DB_LOG_QUERY_ARGS=true; it tells the StatementObservers apps add with
// AsStatementObserver (metrics, say); and it applies the reset policy when
// a connection is lost. Logs carry role=primary or role=replica. Apps add
// pgx tracers, such as OpenTelemetry's, with AsTracer; they run after it
// through pgx's multitracer, on every pool.
package dbmodule

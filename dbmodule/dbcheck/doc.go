// Package dbcheck looks at the database an app is configured for, the way an
// operator asks "what is it doing?": the server's version, where the pool
// connects (never the password), how long a connection and a round trip
// take, the pool's effective settings and where each came from, the server's
// connection headroom, and whether migrations are pending. cmd/dbcheck
// prints its Report; Settings alone needs no database.
//
// # Where a setting comes from
//
// dbmodule.ParseConfig gives a setting the value of the runtime URL's
// parameter (pool_max_conns, connect_timeout, default_query_exec_mode,
// statement_timeout, ...) when the URL has it, else of its DB_* variable when
// that is set, else the default. Settings reports each setting with its
// Source: url, env or default.
//
// # Healthy or not
//
// Run's report is unhealthy, with a one-line Problem, when the settings are
// invalid, the server cannot be reached or refuses the login, a query fails,
// or migrations are pending: this build's queries expect a schema the
// database does not have yet. Options.AllowPending turns pending migrations
// into a warning, for checks that run before `migrate up`. A pool larger than
// the server's free connections is a warning.
package dbcheck

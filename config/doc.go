// Package config reads the service's settings from environment variables.
//
// It knows the environment and nothing else: no pgx, no fx, no zap. Each
// settings type ([DB], [App]) has a Parse function that reads an explicit map,
// which is what tests use, and a Load function that reads the process
// environment, which is what binaries use:
//
//	db, err := config.ParseDB(map[string]string{"DATABASE_URL": url})
//	db, err := config.LoadDB()
//
// # Empty variables
//
// A variable set to the empty string counts as unset (this is how
// github.com/caarlos0/env treats it): DATABASE_URL= falls back to DIRECT_URL,
// and DB_MAX_CONNS= takes its default. Deployment tools often export empty
// variables for settings they do not manage, and treating those as "use the
// default" is the behaviour that surprises least.
//
// # Errors
//
// Every bad variable yields a [*VarError] naming it; ParseDB reports all of them
// at once, joined. A database URL is never echoed, in whole or in part, in an
// error: the reason names the part that is wrong (port, escape, scheme) instead.
package config

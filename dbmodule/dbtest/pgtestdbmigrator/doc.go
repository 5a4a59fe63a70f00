// Package pgtestdbmigrator builds dbtest's templates with any of pgtestdb's
// migrators, for schemas kept with golang-migrate, atlas, sql-migrate or any
// other tool pgtestdb supports:
//
//	var pg = dbtest.Server{Migrator: pgtestdbmigrator.New(
//		golangmigrator.New(".", golangmigrator.WithFS(migrations)),
//	)}
//
// It is a module of its own, so that only programs that use it have pgtestdb
// (and lib/pq, which pgtestdb requires) in their module graph. Of pgtestdb's
// migrator modules, golangmigrator, goosemigrator, atlasmigrator and
// sqlmigrator resolve from the Go module proxy at v0.1.1 (request that exact
// version: they publish no version list); dbmatemigrator, ternmigrator,
// bunmigrator and pgmigrator did not resolve there (checked 2026-12-01).
//
// The migrator runs as dbtest's unprivileged role on the new template. It
// gets a *sql.DB over pgx's database/sql driver and a pgtestdb.Config of
// that database, whose URL method most of pgtestdb's migrators connect with.
package pgtestdbmigrator

// Package migrate applies SQL migrations with pressly/goose: from an fs.FS
// (usually embedded), over the migration URL (DIRECT_URL, else DATABASE_URL),
// on connections of its own, one migrator at a time per database.
//
// In an fx app, Module provides a *Migrator for the Files the app supplies,
// and with DB_MIGRATE_ON_START=true it migrates when the app starts, before
// anything uses the pool:
//
//	fx.New(
//		dbmodule.Module,
//		migrate.Module,
//		fx.Supply(migrate.Files{FS: store.Migrations()}),
//	)
//
// Migrating on start counts against fx's start timeout, 15 s by default, as
// does every OnStart hook; raise it with fx.StartTimeout when migrations take
// longer, or run them before the app with cmd/migrate.
package migrate

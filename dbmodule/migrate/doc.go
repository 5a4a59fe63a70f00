// Package migrate applies goose-format SQL migrations with pgx, from an
// fs.FS (usually embedded), over the migration URL (DIRECT_URL, else
// DATABASE_URL), on a connection of its own, one migrator at a time per
// database. It needs no goose: it reads goose's files and keeps goose's
// version table, so a database goose migrated carries on here, and back.
//
// # Files
//
// A migration is a file at the root of the file system named
// VERSION_NAME.sql, VERSION a positive integer (00001, or a timestamp such
// as 20260101120000); other files are ignored. It holds:
//
//	-- +goose Up
//	CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);
//	CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
//	BEGIN NEW.body := trim(NEW.body); RETURN NEW; END;
//	$$;
//	-- +goose Down
//	DROP TABLE notes;
//	DROP FUNCTION touch();
//
// Each migration runs in a transaction, its section sent as one query that
// the server splits with its own lexer, so function bodies need no
// "-- +goose StatementBegin"/"StatementEnd" (they are accepted, and end a
// statement as in goose). "-- +goose NO TRANSACTION" runs it outside one,
// statement by statement, for CREATE INDEX CONCURRENTLY and the like; if
// a statement fails, those before it stay done. New reads and parses every
// file: one that does not parse is a *ParseError with the file and line. A
// statement that fails names its file and line too.
//
// # Versions
//
// The version table is goose's goose_db_version: a row per migration
// applied, deleted when it is rolled back. The schema version is the
// highest version applied. Up applies the files above it in order; an
// unapplied file below it is ErrOutOfOrder, as in goose. Versions applied
// that no file has (a newer build's) show in Status as StateNoFile. Status
// and Version only read.
//
// # Concurrency
//
// Up and Down hold the session-level advisory lock LockKey (goose's key)
// throughout, so replicas starting together migrate once: the others wait
// on the server, then find nothing to do. The context bounds the wait and
// the migrations; when it ends, the running statement is cancelled on the
// server, and closing the connection rolls back and releases the lock.
//
// # fx
//
// In an fx app, Module provides Config and a *Migrator for the Files the app
// supplies, and with DB_MIGRATE_ON_START=true it migrates when the app
// starts, before anything uses the pool:
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

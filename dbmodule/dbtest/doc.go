// Package dbtest is the test kit: it gives a test package a real PostgreSQL
// server (the one TEST_DATABASE_URL names, else a throwaway one started from
// the machine's binaries on first use), a migrated database of each test's
// own, and a check that no goroutine outlives the tests.
//
//	var pg = dbtest.Server{Migrations: store.Migrations()}
//
//	func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
//
//	func TestCheckout(t *testing.T) {
//		t.Parallel()
//		db := pg.Database(t) // config.DB of a database of this test's own
//		app := fxtest.New(t, myapp.Module, fx.Replace(db))
//		// ...
//	}
//
// # The schema
//
// A Server builds one template database per schema and server, and clones
// it for every test. The schema comes from goose-format migrations
// (Migrations, applied with dbmodule/migrate), from plain SQL files such as
// sqlc's schema.sql (Schema), or from any other tool through a Migrator;
// the nested module dbmodule/dbtest/pgtestdbmigrator adapts pgtestdb's
// migrators (golang-migrate, atlas, sql-migrate, goose) without adding
// pgtestdb to this module's dependencies.
//
// # Speed
//
// Clones are prepared ahead of demand, in the background, on connections
// the kit keeps: more of them (up to 8) when tests ask fast, 2 when they ask
// slowly. A clone is made with CREATE DATABASE ... TEMPLATE, with the
// strategy that is cheaper for the template's size on that server, and
// connected to once so that its caches are warm. On the throwaway server the
// test role needs no password over loopback. A test thus waits for its own
// connections only, a few milliseconds.
//
// # Cleanup
//
// Every database is handed out once. It is dropped when its test passes and
// kept, with its name in the test's log, when the test fails. Main drops the
// clones no test took. Test databases carry their process's marker (an
// advisory lock it holds), so those of a test binary that was killed, and
// the kept ones, are dropped by the next test binary that starts on the
// server; the pgtemp package does the same for a killed binary's throwaway
// server.
//
// # Sharing a server
//
// Databases, not servers, isolate tests: tests that each use their own
// database can run in parallel, and test binaries of several packages
// (go test ./...) can share one TEST_DATABASE_URL server. It must be
// PostgreSQL 13 or later; the URL's user must be a superuser, and the kit's
// role, dbtest, must be able to log in with its password over the URL's
// route (pg_hba.conf's md5 or scram-sha-256; its password, derived from the
// superuser's, is stored as a SCRAM verifier). Such a server is used as it
// is configured. The postgres database that URL returns is shared by all of
// them: never keep a test's data there.
package dbtest

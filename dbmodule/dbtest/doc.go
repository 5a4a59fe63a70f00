// Package dbtest is the test kit: it gives a test package a real PostgreSQL
// server, the one TEST_DATABASE_URL names or else a throwaway one started
// from the machine's binaries on first use, and checks that no goroutine
// outlives the tests.
//
//	var db dbtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(db.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		app := fxtest.New(t, dbmodule.Module, fx.Replace(db.Config(t)), ...)
//	}
package dbtest

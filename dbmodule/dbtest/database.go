package dbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
)

// Bounds of starting the server and building the template, and of a
// test's wait for its database (which may include those).
const (
	setupTimeout = 2 * time.Minute
	waitTimeout  = 2 * time.Minute
)

// Database returns settings for a database of the test's own, a clone of a
// template that holds the Server's schema. The template is built once per
// schema and server; clones are prepared in the background ahead of demand,
// so a test usually gets one at once. Each database is handed out once,
// owned by an unprivileged role, as an app's would be; it is dropped after
// the test passes and kept, and named in the test's log, when it fails.
// Tests that each use their own database can run in parallel.
//
// The server's superuser URL (TEST_DATABASE_URL when set) must allow
// creating roles and databases.
func (s *Server) Database(t testing.TB) config.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	k, name, err := s.take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url, err := k.roleURL(name)
	if err != nil {
		k.clones.release(name)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dbtest: the failed test's database %s is kept %s", name, k.keptFor())
			return
		}
		k.clones.release(name)
	})
	return config.DB{URL: url}
}

// Module replaces config.DB so that a whole app runs on a Database of the
// test's own:
//
//	app := fxtest.New(t, app.Module, pg.Module(t))
func (s *Server) Module(t testing.TB) fx.Option {
	t.Helper()
	return fx.Replace(s.Database(t))
}

// NewDatabase is Database for code without a testing.TB, such as Example
// functions and benchmarks that hand databases back as they go. release
// drops the database (in the background; Close waits for it). A database
// never released is left as a failed test's is.
func (s *Server) NewDatabase(ctx context.Context) (db config.DB, release func(), err error) {
	k, name, err := s.take(ctx)
	if err != nil {
		return config.DB{}, nil, err
	}
	url, err := k.roleURL(name)
	if err != nil {
		k.clones.release(name)
		return config.DB{}, nil, err
	}
	return config.DB{URL: url}, func() { k.clones.release(name) }, nil
}

func (s *Server) take(ctx context.Context) (*kit, string, error) {
	k, err := s.kitFor(ctx)
	if err != nil {
		return nil, "", err
	}
	name, err := k.clones.take(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("dbtest: %w", err)
	}
	return k, name, nil
}

// keptFor says how long a kept database lives.
func (k *kit) keptFor() string {
	if k.external {
		return "on TEST_DATABASE_URL's server until the next test run there drops it"
	}
	return "until the tests end and the throwaway server goes; set TEST_DATABASE_URL to a server of your own to keep it longer"
}

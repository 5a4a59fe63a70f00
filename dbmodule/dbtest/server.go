package dbtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// Server is the PostgreSQL server of one test binary and the schema of
// its test databases. The zero value is ready to use and hands out empty
// databases; the server starts on first use, and Main (or Close) stops it.
//
// Set at most one of Migrations, Schema and Migrator.
type Server struct {
	// Migrations are goose-format SQL migration files at the root of the
	// file system, applied with dbmodule/migrate as an app applies them.
	Migrations fs.FS
	// Schema holds plain SQL files, such as sqlc's schema.sql: each .sql
	// file at its root, in name order, runs as one script (any number of
	// statements, dollar quotes and all). *.down.sql files are skipped.
	Schema fs.FS
	// Migrator builds the schema with any other tool (see Migrator).
	Migrator Migrator

	// Extensions are created (by the superuser, with CASCADE) in the
	// template before the schema is built, for extensions that an
	// unprivileged role may not create.
	Extensions []string
	// Settings are server settings of the throwaway server (e.g.
	// "max_connections": "300", "shared_preload_libraries":
	// "pg_stat_statements"), over its defaults, which favour speed over
	// durability (fsync=off). A TEST_DATABASE_URL server is used as it is
	// configured: Settings do not apply to it.
	Settings map[string]string

	startOnce sync.Once
	srv       *pgtemp.Server // nil when TEST_DATABASE_URL is used
	url       string
	err       error

	mu     sync.Mutex // guards what follows; held while the kit is set up
	kit    *kit
	kitErr error
	closed bool
}

// URL returns a superuser URL of the server's postgres database, or
// TEST_DATABASE_URL as it is when set. It fails the test if the server cannot
// start.
//
// The postgres database is shared by every test of the binary, and of other
// binaries on a TEST_DATABASE_URL server: use it to administer the server,
// not to hold a test's data. Database gives a test a database of its own.
func (s *Server) URL(t testing.TB) string {
	t.Helper()
	url, err := s.Start()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return url
}

// Start starts the server unless it runs already, and returns the URL that
// URL returns. It is for code without a testing.TB, such as Example
// functions.
func (s *Server) Start() (string, error) {
	s.startOnce.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			// Checked now, with an error that names the variable and hides
			// the password, rather than at the first connect.
			if _, err := dbmodule.MigrationConnConfig(config.DB{URL: u}); err != nil {
				s.err = testURLError(err)
				return
			}
			s.url = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		settings := map[string]string{}
		maps.Copy(settings, s.Settings)
		s.srv, s.err = pgtemp.Start(ctx, pgtemp.Options{
			Settings: settings,
			// Loopback only, and the role may touch only test databases:
			// no password check for it. SCRAM costs a test about 2.4 ms per
			// connection (4.8 ms against 2.4 with trust, measured here;
			// md5 2.9 ms). The superuser keeps SCRAM over TCP.
			HBA: []string{"host all " + roleName + " 127.0.0.1/32 trust"},
		})
		if s.err != nil {
			s.err = fmt.Errorf("start test PostgreSQL (set TEST_DATABASE_URL to use your own): %w", s.err)
			return
		}
		s.url = s.srv.URL("postgres")
	})
	return s.url, s.err
}

// Main runs the tests, drops the test databases not in use, stops the
// server if one was started, and fails the run if any goroutine outlives the
// tests. Call it from TestMain.
func (s *Server) Main(m *testing.M) int {
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: goroutines outlived the tests:", err)
			code = 1
		}
	}
	return code
}

// Close drops the databases that were prepared and not handed out and those
// released, stops the kit's goroutines and the throwaway server if one was
// started. Main calls it; call it yourself only where there is no Main, such
// as an Example with a Server of its own. Afterwards the Server hands out
// nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.kit != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.kit.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Start after Close would start a server no one stops.
	s.startOnce.Do(func() { s.err = errClosed })
	if s.srv != nil {
		if err := s.srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("dbtest: stop PostgreSQL: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// kitFor returns the kit, setting it up on first use. A failed setup is not
// retried: every later test gets the same error at once.
func (s *Server) kitFor(ctx context.Context) (*kit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if s.kit != nil || s.kitErr != nil {
		return s.kit, s.kitErr
	}
	s.kit, s.kitErr = s.newKit(ctx)
	return s.kit, s.kitErr
}

func (s *Server) newKit(ctx context.Context) (*kit, error) {
	m, err := s.migrator()
	if err != nil {
		return nil, err
	}
	adminURL, err := s.Start()
	if err != nil {
		return nil, fmt.Errorf("dbtest: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	kc := kitConfig{migrator: m, extensions: s.Extensions, external: s.srv == nil}
	var superPassword string
	if s.srv != nil {
		// Over the socket, where the superuser needs no password.
		if kc.admin, err = pgx.ParseConfig(s.srv.SocketURL("postgres")); err != nil {
			return nil, fmt.Errorf("socket URL: %w", pgconnError(err))
		}
		superPassword = s.srv.Password()
	} else {
		if kc.admin, err = dbmodule.MigrationConnConfig(config.DB{URL: adminURL}); err != nil {
			return nil, testURLError(err)
		}
		superPassword = kc.admin.Password
	}
	kc.password = rolePassword(superPassword)
	kc.roleURL = func(db string) (string, error) { return databaseURL(adminURL, roleName, kc.password, db) }
	k, err := newKit(ctx, kc)
	if err != nil {
		return nil, fmt.Errorf("dbtest: set up test databases: %w", err)
	}
	return k, nil
}

// testURLError says what is wrong with TEST_DATABASE_URL, as config says it
// of DATABASE_URL, which the URL is checked as.
func testURLError(err error) error {
	var ve *config.VarError
	if errors.As(err, &ve) {
		return &config.VarError{Var: "TEST_DATABASE_URL", Err: ve.Err}
	}
	return fmt.Errorf("TEST_DATABASE_URL: %w", err)
}

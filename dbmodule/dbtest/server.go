package dbtest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/internal/pgtemp"
)

// Server is the PostgreSQL server of one test binary. The zero value is
// ready to use; the server starts on first use and stops in Main.
type Server struct {
	// Migrations, when set, are applied to the template that Database
	// clones: goose SQL files at the root of the file system.
	Migrations fs.FS

	once sync.Once
	srv  *pgtemp.Server // nil when TEST_DATABASE_URL is used
	url  string
	err  error
}

// URL returns a superuser URL of the server's postgres database, or
// TEST_DATABASE_URL as it is when set. It fails the test if the server cannot
// start.
func (s *Server) URL(t testing.TB) string {
	t.Helper()
	url, err := s.Start()
	if err != nil {
		t.Fatalf("start test PostgreSQL (set TEST_DATABASE_URL to use your own): %v", err)
	}
	return url
}

// Start starts the server unless it runs already, and returns URL's URL. It
// is for code without a testing.TB, such as Example functions.
func (s *Server) Start() (string, error) {
	s.once.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			s.url = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s.srv, s.err = pgtemp.Start(ctx, pgtemp.Options{})
		if s.err == nil {
			s.url = s.srv.URL("postgres")
		}
	})
	return s.url, s.err
}

// Config returns database settings that point at the server.
func (s *Server) Config(t testing.TB) config.DB {
	return config.DB{URL: s.URL(t)}
}

// Main runs the tests, stops the server if one was started, and fails the
// run if any goroutine outlives the tests. Call it from TestMain.
func (s *Server) Main(m *testing.M) int {
	code := m.Run()
	if s.srv != nil {
		if err := s.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: stop PostgreSQL:", err)
			code = max(code, 1)
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest: goroutines outlived the tests:", err)
			code = 1
		}
	}
	return code
}

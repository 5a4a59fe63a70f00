package dbtest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"io/fs"
	"net/url"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"
	"go.uber.org/fx"
	"go.uber.org/zap/zaptest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// Database returns settings for a database of the test's own, cloned from a
// template database that has every migration in s.Migrations applied. The
// template is built once per migration set and server, and reused; cloning
// it is a CREATE DATABASE ... TEMPLATE. The database is dropped when the test
// passes and kept, for a look, when it fails. Tests that each use their own
// database can run in parallel.
//
// The database belongs to an unprivileged role, as an app's would; the
// server's URL (TEST_DATABASE_URL when set) must allow creating roles and
// databases.
func (s *Server) Database(t testing.TB) config.DB {
	t.Helper()
	base, err := url.Parse(s.URL(t))
	if err != nil {
		t.Fatalf("dbtest: server URL: %v", dbmodule.RedactError(err, s.URL(t)))
	}
	password, _ := base.User.Password()
	start := time.Now()
	db := pgtestdb.Custom(t, pgtestdb.Config{
		DriverName:                "pgx",
		Host:                      base.Hostname(),
		Port:                      base.Port(),
		User:                      base.User.Username(),
		Password:                  password,
		Database:                  base.Path[1:],
		Options:                   base.RawQuery,
		ForceTerminateConnections: true,
	}, templateMigrator{t: t, fsys: s.Migrations})
	t.Logf("dbtest: database %s ready in %s (the first also builds the template)", db.Database, time.Since(start).Round(time.Millisecond))
	return config.DB{URL: db.URL()}
}

// Module replaces config.DB so that a whole app runs on a Database of the
// test's own:
//
//	app := fxtest.New(t, app.Module, pg.Module(t))
func (s *Server) Module(t testing.TB) fx.Option {
	t.Helper()
	return fx.Replace(s.Database(t))
}

// templateMigrator builds templates with this module's own Migrator, so that
// every test database is made the way production databases are.
type templateMigrator struct {
	t    testing.TB
	fsys fs.FS
}

// Hash identifies the migration set by the names and contents of its files.
func (m templateMigrator) Hash() (string, error) {
	h := sha256.New()
	if m.fsys == nil {
		return "none", nil
	}
	err := fs.WalkDir(m.fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(m.fsys, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// Migrate applies the migrations to the new template database.
func (m templateMigrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	if m.fsys == nil {
		return nil
	}
	mig, err := migrate.New(config.DB{URL: conf.URL()}, m.fsys, zaptest.NewLogger(m.t))
	if err != nil {
		return err
	}
	defer mig.Close()
	_, err = mig.Up(ctx)
	return err
}

package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// A Migrator builds the schema of a template database, for schema tools
// that Server's Migrations and Schema do not cover; the nested module
// dbmodule/dbtest/pgtestdbmigrator adapts pgtestdb's migrators
// (golang-migrate, atlas, sql-migrate, goose) to it.
//
// Hash identifies the schema that Migrate makes: the same hash means the
// same schema, so the template built for it is reused (on a
// TEST_DATABASE_URL server, by later runs too), and a new hash gets a new
// template. Hash the migration files' names and contents.
//
// Migrate runs once per hash and server, on a new empty database that then
// becomes the template. conn is connected to it as the unprivileged role
// that owns it and every test database, as an app's role would be, and
// stays open until Migrate returns. Tools that open connections of their
// own can use conn.Config().ConnString(), a URL of that database as that
// role.
type Migrator interface {
	Hash() (string, error)
	Migrate(ctx context.Context, conn *pgx.Conn) error
}

// migrator returns the one schema source that s names, nil for none.
func (s *Server) migrator() (Migrator, error) {
	var set []string
	var m Migrator
	if s.Migrations != nil {
		set, m = append(set, "Migrations"), gooseMigrations{s.Migrations}
	}
	if s.Schema != nil {
		set, m = append(set, "Schema"), sqlSchema{s.Schema}
	}
	if s.Migrator != nil {
		set, m = append(set, "Migrator"), s.Migrator
	}
	if len(set) > 1 {
		return nil, fmt.Errorf("dbtest.Server sets %s: set at most one", strings.Join(set, " and "))
	}
	return m, nil
}

// gooseMigrations applies goose-format migration files with this module's
// own migrate package, so that test databases are made the way production
// databases are.
type gooseMigrations struct{ fsys fs.FS }

func (m gooseMigrations) Hash() (string, error) {
	var names []string
	err := fs.WalkDir(m.fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dbtest.Server.Migrations: %w", err)
	}
	return hashFiles("goose", m.fsys, names)
}

func (m gooseMigrations) Migrate(ctx context.Context, conn *pgx.Conn) error {
	mig, err := migrate.New(config.DB{URL: conn.Config().ConnString()}, m.fsys, nil)
	if err != nil {
		return err
	}
	defer mig.Close()
	_, err = mig.Up(ctx)
	return err
}

// sqlSchema runs plain SQL files, such as sqlc's schema.sql: every .sql
// file at the root of fsys, in name order, each as one script over the
// simple query protocol, so that it may hold any number of statements,
// dollar-quoted function bodies and all. Files named *.down.sql, the undo
// half of golang-migrate's pairs, are skipped.
type sqlSchema struct{ fsys fs.FS }

func (m sqlSchema) files() ([]string, error) {
	all, err := fs.Glob(m.fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("dbtest.Server.Schema: %w", err)
	}
	var names []string
	for _, n := range all {
		if !strings.HasSuffix(n, ".down.sql") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("dbtest.Server.Schema has no .sql file at its root")
	}
	return names, nil
}

func (m sqlSchema) Hash() (string, error) {
	names, err := m.files()
	if err != nil {
		return "", err
	}
	return hashFiles("sql", m.fsys, names)
}

func (m sqlSchema) Migrate(ctx context.Context, conn *pgx.Conn) error {
	names, err := m.files()
	if err != nil {
		return err
	}
	for _, name := range names {
		script, err := fs.ReadFile(m.fsys, name)
		if err != nil {
			return fmt.Errorf("dbtest.Server.Schema: %w", err)
		}
		// One Query message: the server runs the whole file as one
		// implicit transaction, statements split by its own parser.
		if _, err := conn.PgConn().Exec(ctx, string(script)).ReadAll(); err != nil {
			return fmt.Errorf("%s%s: %w", name, lineOf(string(script), err), err)
		}
	}
	return nil
}

// lineOf names the line of script that a server error points at.
func lineOf(script string, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return ""
	}
	// Position counts characters, from 1.
	runes := []rune(script)
	if int(pgErr.Position) > len(runes) {
		return ""
	}
	return fmt.Sprintf(" line %d", strings.Count(string(runes[:pgErr.Position-1]), "\n")+1)
}

// hashFiles hashes a kind of schema source and its files' names and contents.
func hashFiles(kind string, fsys fs.FS, names []string) (string, error) {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", path.Clean(name), err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

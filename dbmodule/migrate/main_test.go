package migrate_test

import (
	"context"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap/zaptest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
)

// pg hands each test an empty database: these tests migrate it themselves.
// Main fails the run if a goroutine outlives the tests (goleak).
var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// newMigrator makes a Migrator of fsys that the test closes.
func newMigrator(t *testing.T, cfg config.DB, fsys fs.FS) *migrate.Migrator {
	t.Helper()
	m, err := migrate.New(cfg, fsys, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// connect opens a connection of the test's own, closed when it ends.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// tables lists the tables of the database at url, but the version table.
func tables(t *testing.T, url string) string {
	t.Helper()
	rows, _ := connect(t, url).Query(context.Background(),
		"SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, ",")
}

// versionRows returns the version table's rows, oldest first, as
// "version:applied".
func versionRows(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	rows, _ := conn.Query(context.Background(), "SELECT version_id::text || ':' || is_applied::text FROM goose_db_version ORDER BY id")
	r, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(r, " ")
}

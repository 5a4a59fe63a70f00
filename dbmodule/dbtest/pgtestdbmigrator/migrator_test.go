package pgtestdbmigrator_test

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/peterldowns/pgtestdb/migrators/golangmigrator"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/dbtest/pgtestdbmigrator"
)

//go:embed testdata/golangmigrate/*.sql
var files embed.FS

func migrations() fs.FS {
	sub, err := fs.Sub(files, "testdata/golangmigrate")
	if err != nil {
		panic(err) // unreachable: embedded above
	}
	return sub
}

// A golang-migrate directory: up and down files, a plpgsql function and a
// trigger with no annotations.
var pg = dbtest.Server{Migrator: pgtestdbmigrator.New(golangmigrator.New(".", golangmigrator.WithFS(migrations())))}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func TestGolangMigrateDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.Database(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var id int64
	if err := conn.QueryRow(ctx, "INSERT INTO accounts (name) VALUES ('cash') RETURNING id").Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, amount := range []int{100, -30, 7} {
		if _, err := conn.Exec(ctx, "INSERT INTO entries (account_id, amount) VALUES ($1, $2)", id, amount); err != nil {
			t.Fatal(err)
		}
	}
	var balance int
	if err := conn.QueryRow(ctx, "SELECT balance FROM accounts WHERE id = $1", id).Scan(&balance); err != nil || balance != 77 {
		t.Errorf("balance = %d, %v; want 77 from the trigger", balance, err)
	}
	// golang-migrate's own bookkeeping came along in the clone.
	var version int
	var dirty bool
	if err := conn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil || version != 1 || dirty {
		t.Errorf("schema_migrations = %d (dirty %v), %v; want version 1, clean", version, dirty, err)
	}
}

func TestHashFollowsTheFiles(t *testing.T) {
	a, err := pgtestdbmigrator.New(golangmigrator.New(".", golangmigrator.WithFS(migrations()))).Hash()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pgtestdbmigrator.New(golangmigrator.New("testdata/golangmigrate", golangmigrator.WithFS(files))).Hash()
	if err != nil {
		t.Fatal(err)
	}
	if a == "" || a != b {
		t.Errorf("hashes of the same files: %q and %q", a, b)
	}
}

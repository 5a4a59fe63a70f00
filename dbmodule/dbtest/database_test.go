package dbtest_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Parallel tests each get a migrated database of their own: the same email,
// unique in the schema, goes into every one of them.
func TestParallelTestsShareNoRows(t *testing.T) {
	names := make(chan string, 8)
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				db := pg.Database(t)
				conn := connect(t, db.URL)
				var n int
				if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM customers").Scan(&n); err != nil || n != 0 {
					t.Fatalf("a new database has %d customers, %v", n, err)
				}
				if _, err := conn.Exec(context.Background(), "INSERT INTO customers (email, name) VALUES ('same@example.com', $1)", fmt.Sprint(i)); err != nil {
					t.Fatalf("insert into a database of one's own: %v", err)
				}
				u, _ := url.Parse(db.URL)
				names <- strings.TrimPrefix(u.Path, "/")
			})
		}
	})
	close(names)
	// The subtests passed, so their databases are dropped.
	admin := connect(t, pg.URL(t))
	var seen []string
	for name := range names {
		seen = append(seen, name)
		var exists bool
		if err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
			t.Errorf("database %s still exists after its test passed (%v)", name, err)
		}
	}
	if len(seen) != 8 {
		t.Fatalf("%d databases, want 8", len(seen))
	}
	var templates int
	if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datistemplate AND datname LIKE 'testdb_tpl_%'").Scan(&templates); err != nil || templates != 1 {
		t.Errorf("%d templates, want the one migration set's", templates)
	}
}

func TestDatabaseIsNotSuperuser(t *testing.T) {
	conn := connect(t, pg.Database(t).URL)
	var super bool
	if err := conn.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
		t.Errorf("test database user is superuser: %v %v", super, err)
	}
}

package dbtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/store"
)

var pg = dbtest.Server{Migrations: store.Migrations()}

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// databaseName returns the database a config points at.
func databaseName(t testing.TB, db config.DB) string {
	t.Helper()
	cc, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	return cc.Database
}

// exists reports whether the server has a database of that name.
func exists(t testing.TB, admin *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// Parallel tests each get a migrated database of their own: the same email,
// unique in the schema, goes into every one of them.
func TestParallelTestsShareNoRows(t *testing.T) {
	admin := connect(t, pg.URL(t))
	pg.Database(t) // the template is built by now
	templates := func() (n int) {
		t.Helper()
		if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datistemplate AND datname LIKE 'dbtest\\_t\\_%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := templates()
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
				names <- databaseName(t, db)
			})
		}
	})
	close(names)
	// The subtests passed, so their databases go, in the background.
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("database %s handed out twice", name)
		}
		seen[name] = true
		dbtest.WaitFor(t, "database "+name+" to be dropped after its test passed", func() bool { return !exists(t, admin, name) })
	}
	if len(seen) != 8 {
		t.Fatalf("%d databases, want 8", len(seen))
	}
	if after := templates(); after != before {
		t.Errorf("%d templates after 8 databases of one schema, %d before; want the one template reused", after, before)
	}
}

func TestDatabaseIsNotSuperuser(t *testing.T) {
	db := pg.Database(t)
	conn := connect(t, db.URL)
	var super, createdb, owner bool
	err := conn.QueryRow(context.Background(), `SELECT rolsuper, rolcreatedb, pg_catalog.pg_get_userbyid(datdba) = current_user
		FROM pg_roles, pg_database WHERE rolname = current_user AND datname = current_database()`).Scan(&super, &createdb, &owner)
	if err != nil || super || createdb || !owner {
		t.Errorf("test role: superuser %v, createdb %v, owns its database %v (%v); want an unprivileged owner", super, createdb, owner, err)
	}
	su, err := pgx.ParseConfig(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if su.Password != "" && strings.Contains(db.URL, su.Password) {
		t.Error("a test database's URL carries the superuser's password")
	}
}

// Many requests at once, more than the pool holds: each gets a database of
// its own.
func TestNoDatabaseIsHandedOutTwice(t *testing.T) {
	const n = 40
	var (
		mu    sync.Mutex
		names = map[string]int{}
		wg    sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			db, release, err := pg.NewDatabase(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			mu.Lock()
			names[databaseName(t, db)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, k := range names {
		if k > 1 {
			t.Errorf("%s handed out %d times", name, k)
		}
	}
	if len(names) != n {
		t.Errorf("%d distinct databases for %d requests", len(names), n)
	}
}

func TestReleaseDropsTheDatabase(t *testing.T) {
	db, release, err := pg.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	admin := connect(t, pg.URL(t))
	name := databaseName(t, db)
	conn := connect(t, db.URL) // left open: the drop disconnects it
	if !exists(t, admin, name) {
		t.Fatalf("database %s does not exist while handed out", name)
	}
	release()
	dbtest.WaitFor(t, "the released database to be dropped", func() bool { return !exists(t, admin, name) })
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("a connection to the dropped database still works")
	}
}

func TestNewDatabaseHonoursItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := pg.NewDatabase(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("NewDatabase with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestModuleReplacesTheConfig(t *testing.T) {
	var db config.DB
	app := fxtest.New(t, fx.Provide(func() config.DB { return config.DB{URL: "postgres://app@prod.example/app"} }), pg.Module(t), fx.Populate(&db))
	defer app.RequireStart().RequireStop()
	if name := databaseName(t, db); !strings.HasPrefix(name, "dbtest_c_") {
		t.Errorf("config.DB after Module(t) points at %q, want a test database", name)
	}
}

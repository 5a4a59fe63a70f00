package migrate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

// pg hands each test an empty database: these tests migrate it themselves.
var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

func newMigrator(t *testing.T, cfg config.DB) *migrate.Migrator {
	t.Helper()
	m, err := migrate.New(cfg, store.Migrations(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// tables lists the tables of the database at url.
func tables(t *testing.T, url string) []string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(context.Background(),
		"SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestUpStatusDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pg.Database(t)
	m := newMigrator(t, db)

	if pending, err := m.Pending(ctx); err != nil || !pending {
		t.Fatalf("Pending on an empty database = %v, %v", pending, err)
	}
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0].Source.Version != 1 || applied[1].Source.Version != 2 {
		t.Fatalf("Up applied %v, want versions 1 and 2", applied)
	}
	if got := strings.Join(tables(t, db.URL), ","); got != "customers,orders,products" {
		t.Errorf("tables after Up = %s", got)
	}
	statuses, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if s.State != goose.StateApplied || s.AppliedAt.IsZero() {
			t.Errorf("status of %s = %s at %v", s.Source.Path, s.State, s.AppliedAt)
		}
	}
	if again, err := m.Up(ctx); err != nil || len(again) != 0 {
		t.Errorf("second Up = %v, %v; want nothing to do", again, err)
	}

	r, err := m.Down(ctx)
	if err != nil || r.Source.Version != 2 {
		t.Fatalf("Down = %v, %v; want version 2 rolled back", r, err)
	}
	if v, err := m.Version(ctx); err != nil || v != 1 {
		t.Errorf("Version after Down = %d, %v; want 1", v, err)
	}
	if got := strings.Join(tables(t, db.URL), ","); got != "customers,products" {
		t.Errorf("tables after Down = %s", got)
	}
	if _, err := m.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(ctx); err == nil {
		t.Error("Down with nothing applied succeeded")
	}
}

// Replicas of an app that start together each run Up: every migration is
// applied exactly once, and none of them fails.
func TestConcurrentMigratorsApplyEachMigrationOnce(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	const replicas = 8
	results := make([][]*goose.MigrationResult, replicas)
	errs := make([]error, replicas)
	migrators := make([]*migrate.Migrator, replicas)
	for i := range migrators {
		migrators[i] = newMigrator(t, db)
	}
	var wg sync.WaitGroup
	for i, m := range migrators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = m.Up(context.Background())
		}()
	}
	wg.Wait()
	applied := map[int64]int{}
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		for _, r := range results[i] {
			applied[r.Source.Version]++
		}
	}
	if len(applied) != 2 || applied[1] != 1 || applied[2] != 1 {
		t.Errorf("applications per version = %v, want each of 1 and 2 once", applied)
	}
	conn, err := pgx.Connect(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM goose_db_version WHERE version_id > 0").Scan(&rows); err != nil || rows != 2 {
		t.Errorf("goose_db_version has %d rows, %v; want 2", rows, err)
	}
}

func TestMigrationsUseTheDirectURL(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	closed := "postgres://app:pw@" + dbtest.ClosedAddr(t) + "/app"
	// DATABASE_URL goes nowhere: only DIRECT_URL can have been used.
	m := newMigrator(t, config.DB{URL: closed, DirectURL: db.URL})
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatalf("Up over DIRECT_URL: %v", err)
	}
	// Without DIRECT_URL, DATABASE_URL is used.
	m = newMigrator(t, config.DB{URL: db.URL})
	if v, err := m.Version(context.Background()); err != nil || v != 2 {
		t.Errorf("Version over DATABASE_URL = %d, %v", v, err)
	}
}

// One URL often serves as both DATABASE_URL and DIRECT_URL, with pool
// settings in it; they must not reach the server as settings.
func TestMigrationsIgnorePoolParameters(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	m := newMigrator(t, config.DB{DirectURL: db.URL + "&pool_max_conns=5&pool_max_conn_lifetime=10m"})
	if _, err := m.Up(context.Background()); err != nil {
		t.Errorf("Up over a URL with pool parameters: %v", err)
	}
	if _, err := migrate.New(config.DB{DirectURL: db.URL + "&pool_max_connz=5"}, store.Migrations(), nil); err == nil ||
		!strings.Contains(err.Error(), "DIRECT_URL") {
		t.Errorf("New with an unknown pool parameter = %v, want an error naming DIRECT_URL", err)
	}
}

func TestMigratorErrors(t *testing.T) {
	t.Parallel()
	if _, err := migrate.New(config.DB{}, store.Migrations(), nil); err == nil ||
		!strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "DIRECT_URL") {
		t.Errorf("New without URLs = %v, want an error naming both variables", err)
	}
	const secret = "m1gr4te-s3cret"
	m := newMigrator(t, config.DB{DirectURL: "postgres://app:" + secret + "@" + dbtest.ClosedAddr(t) + "/app"})
	_, err := m.Up(context.Background())
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Up against a closed port = %v, want a refusal without the password", err)
	}
}

// A failing migration stops Up; the migrations before it stay applied and
// the failing one leaves nothing behind, as each runs in a transaction.
func TestFailingMigration(t *testing.T) {
	t.Parallel()
	db := pg.Database(t)
	fsys := fstest.MapFS{
		"00001_good.sql": {Data: []byte("-- +goose Up\nCREATE TABLE good (id int);\n-- +goose Down\nDROP TABLE good;\n")},
		"00002_bad.sql":  {Data: []byte("-- +goose Up\nCREATE TABLE half (id int);\nCREATE TABLE broken (id nosuchtype);\n-- +goose Down\n")},
	}
	m, err := migrate.New(db, fsys, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	applied, err := m.Up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "00002_bad.sql") || !strings.Contains(err.Error(), "nosuchtype") {
		t.Errorf("Up = %v, want an error naming the file and the cause", err)
	}
	if len(applied) != 1 {
		t.Errorf("applied %d migrations, want the good one", len(applied))
	}
	if got := strings.Join(tables(t, db.URL), ","); got != "good" {
		t.Errorf("tables = %s, want only the good migration's", got)
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"00001_a.sql", "00007_b.sql", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, err := migrate.Create(dir, "Add Order Notes!")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "00008_add_order_notes.sql" {
		t.Errorf("Create made %s, want 00008_add_order_notes.sql", filepath.Base(path))
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "-- +goose Up") || !strings.Contains(string(b), "-- +goose Down") {
		t.Errorf("new migration lacks goose annotations:\n%s", b)
	}
	if _, err := migrate.Create(dir, "!!!"); err == nil {
		t.Error("Create with an empty name succeeded")
	}
	if _, err := migrate.Create(filepath.Join(dir, "missing"), "x"); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}

// With DB_MIGRATE_ON_START, the app migrates before anything that uses the
// pool starts: this OnStart hook of a pool user finds the tables there.
func TestMigrateOnStart(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		cfg := pg.Database(t)
		cfg.MigrateOnStart = on
		var found bool
		app := fxtest.New(t,
			dbmodule.Module,
			migrate.Module,
			fx.Supply(migrate.Files{FS: store.Migrations()}),
			fx.Replace(cfg),
			fx.Invoke(func(lc fx.Lifecycle, pool *pgxpool.Pool) {
				lc.Append(fx.StartHook(func(ctx context.Context) error {
					return pool.QueryRow(ctx, "SELECT to_regclass('orders') IS NOT NULL").Scan(&found)
				}))
			}),
		)
		app.RequireStart()
		app.RequireStop()
		if found != on {
			t.Errorf("DB_MIGRATE_ON_START=%v: orders table there when pool users start: %v", on, found)
		}
	}
}

func TestMigrateOnStartFailureStopsStart(t *testing.T) {
	t.Parallel()
	cfg := pg.Database(t)
	cfg.MigrateOnStart = true
	broken := fstest.MapFS{"00001_bad.sql": {Data: []byte("-- +goose Up\nSELECT nosuchfunction();\n")}}
	app := fx.New(dbmodule.Module, migrate.Module, fx.Supply(migrate.Files{FS: broken}), fx.Replace(cfg), fx.NopLogger,
		fx.Invoke(func(*pgxpool.Pool) {}))
	err := app.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "migrations") || !strings.Contains(err.Error(), "nosuchfunction") {
		t.Errorf("Start = %v, want the migration's error", err)
	}
	if err == nil {
		app.Stop(context.Background()) //nolint:errcheck // failing anyway
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("start timed out instead of failing")
	}
}

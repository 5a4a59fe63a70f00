package migrate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		environ map[string]string
		want    bool
	}{
		{nil, false},
		{map[string]string{}, false},
		{map[string]string{"DB_MIGRATE_ON_START": ""}, false}, // empty is unset
		{map[string]string{"DB_MIGRATE_ON_START": "true"}, true},
		{map[string]string{"DB_MIGRATE_ON_START": "false"}, false},
		{map[string]string{"DB_MIGRATE_ON_START": "1"}, true},
		{map[string]string{"DB_MIGRATE_ON_START_X": "true"}, false},
	} {
		c, err := migrate.ParseConfig(tt.environ)
		if err != nil || c.OnStart != tt.want {
			t.Errorf("ParseConfig(%v) = %+v, %v; want OnStart %v", tt.environ, c, err, tt.want)
		}
	}
	_, err := migrate.ParseConfig(map[string]string{"DB_MIGRATE_ON_START": "on"})
	var ve *config.VarError
	if !errors.As(err, &ve) || ve.Var != "DB_MIGRATE_ON_START" || !strings.Contains(err.Error(), `"on" is not a boolean`) {
		t.Errorf("ParseConfig of a bad boolean = %v, want a VarError naming DB_MIGRATE_ON_START", err)
	}
}

// With DB_MIGRATE_ON_START, the app migrates before anything that uses the
// pool starts: this OnStart hook of a pool user finds the tables there.
func TestMigrateOnStart(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		var found bool
		app := fxtest.New(t,
			dbmodule.Module,
			migrate.Module,
			fx.Supply(migrate.Files{FS: store.Migrations()}),
			fx.Replace(pg.Database(t), migrate.Config{OnStart: on}),
			fx.Invoke(func(lc fx.Lifecycle, pool *pgxpool.Pool) {
				lc.Append(fx.StartHook(func(ctx context.Context) error {
					return pool.QueryRow(ctx, "SELECT to_regclass('orders') IS NOT NULL").Scan(&found)
				}))
			}),
		)
		app.RequireStart()
		app.RequireStop()
		if found != on {
			t.Errorf("OnStart %v: orders table there when pool users start: %v", on, found)
		}
	}
}

// Module reads DB_MIGRATE_ON_START from the process environment.
func TestModuleReadsTheEnvironment(t *testing.T) {
	db := pg.Database(t)
	t.Setenv("DB_MIGRATE_ON_START", "true")
	var m *migrate.Migrator
	app := fxtest.New(t, dbmodule.Module, migrate.Module, fx.Supply(migrate.Files{FS: store.Migrations()}), fx.Replace(db),
		fx.Invoke(func(*pgxpool.Pool) {}), fx.Populate(&m))
	app.RequireStart()
	defer app.RequireStop()
	if v, err := m.Version(context.Background()); err != nil || v != 2 {
		t.Errorf("Version after start = %d, %v; want 2", v, err)
	}

	t.Setenv("DB_MIGRATE_ON_START", "on")
	err := fx.New(dbmodule.Module, migrate.Module, fx.Supply(migrate.Files{FS: store.Migrations()}), fx.Replace(db), fx.NopLogger,
		fx.Invoke(func(*pgxpool.Pool) {})).Err()
	if err == nil || !strings.Contains(err.Error(), "DB_MIGRATE_ON_START") {
		t.Errorf("fx.New with DB_MIGRATE_ON_START=on: %v", err)
	}
}

func TestMigrateOnStartFailureStopsStart(t *testing.T) {
	t.Parallel()
	broken := fstest.MapFS{"00001_bad.sql": {Data: []byte("-- +goose Up\nSELECT nosuchfunction();\n")}}
	app := fx.New(dbmodule.Module, migrate.Module, fx.Supply(migrate.Files{FS: broken}),
		fx.Replace(pg.Database(t), migrate.Config{OnStart: true}), fx.NopLogger, fx.Invoke(func(*pgxpool.Pool) {}))
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

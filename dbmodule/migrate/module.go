package migrate

import (
	"context"
	"io/fs"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Module provides Config, read from the process environment by LoadConfig,
// and a *Migrator for the app's Files; when Config.OnStart
// (DB_MIGRATE_ON_START) is true, it migrates on start, before anything uses
// the pool. Replace Config with fx.Replace to decide in code.
var Module = fx.Module("migrate",
	fx.Provide(
		LoadConfig,
		NewMigrator,
		dbmodule.AsStartTask(migrateOnStart),
	),
)

// Files are the migrations an app supplies to Module:
//
//	fx.Supply(migrate.Files{FS: store.Migrations()})
type Files struct{ FS fs.FS }

// Params are NewMigrator's dependencies.
type Params struct {
	fx.In

	Config    config.DB
	Files     Files
	Lifecycle fx.Lifecycle
	Logger    *zap.Logger `optional:"true"`
}

// NewMigrator is New for fx: the app's lifecycle closes the Migrator.
func NewMigrator(p Params) (*Migrator, error) {
	m, err := New(p.Config, p.Files.FS, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(m.Close))
	return m, nil
}

// migrateOnStart makes the start task, which reads the migrations only
// when there is work for it: most starts have none, and need not pay for
// parsing them.
func migrateOnStart(p taskParams) dbmodule.StartTask {
	if !p.Settings.OnStart {
		return dbmodule.StartTask{Name: "migrations"}
	}
	return dbmodule.StartTask{Name: "migrations", Run: func(ctx context.Context) error {
		m, err := New(p.DB, p.Files.FS, p.Logger)
		if err != nil {
			return err
		}
		defer m.Close()
		_, err = m.Up(ctx)
		return err
	}}
}

type taskParams struct {
	fx.In

	DB       config.DB
	Settings Config
	Files    Files
	Logger   *zap.Logger `optional:"true"`
}

package migrate

import (
	"context"
	"io/fs"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Module provides a *Migrator for the app's Files and, when
// DB_MIGRATE_ON_START is true, migrates on start.
var Module = fx.Module("migrate",
	fx.Provide(
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

// migrateOnStart makes the start task, which opens a Migrator of its own
// only when there is work for it: most starts have none, and need not pay
// for one.
func migrateOnStart(p taskParams) dbmodule.StartTask {
	if !p.Config.MigrateOnStart {
		return dbmodule.StartTask{Name: "migrations"}
	}
	return dbmodule.StartTask{Name: "migrations", Run: func(ctx context.Context) error {
		m, err := New(p.Config, p.Files.FS, p.Logger)
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

	Config config.DB
	Files  Files
	Logger *zap.Logger `optional:"true"`
}

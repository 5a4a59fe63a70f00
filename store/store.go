package store

import (
	"embed"
	"io/fs"

	"go.uber.org/fx"

	"github.com/fxpg/fxpg/dbmodule"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the schema's goose migrations, for migrate.Files and
// dbtest.Server.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // unreachable: the directory is embedded above
	}
	return sub
}

// Module provides a Querier over the app's dbmodule.Querier.
var Module = fx.Module("store", fx.Provide(NewQuerier))

// NewQuerier returns the typed queries over q, as the Querier interface so
// that tests can replace them with a fake.
func NewQuerier(q dbmodule.Querier) Querier { return New(q) }

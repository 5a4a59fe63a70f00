package dbmodule_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// Reads take a dbmodule.ReadQuerier. Without DATABASE_READ_URL it is the
// Querier itself; with it, reads go to the replicas the URL lists.
// WithReadYourWrites makes a request's reads see its own commits, wherever
// they go.
func ExampleReadQuerier() {
	app := fx.New(
		dbmodule.Module,
		fx.Replace(config.DB{URL: databaseURL()}), // no ReadURL: one server
		fx.NopLogger,
		fx.Invoke(func(lc fx.Lifecycle, q dbmodule.Querier, tx *dbmodule.Transactor, reads dbmodule.ReadQuerier) {
			lc.Append(fx.StartHook(func(ctx context.Context) error {
				ctx = dbmodule.WithReadYourWrites(ctx)
				if err := tx.InTx(ctx, func(q dbmodule.Querier) error {
					_, err := q.Exec(ctx, "CREATE TEMP TABLE IF NOT EXISTS notes (body text)")
					return err
				}); err != nil {
					return err
				}
				var replica bool
				if err := reads.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&replica); err != nil {
					return err
				}
				fmt.Println("same handle:", reads == dbmodule.ReadQuerier(q), "read on a replica:", replica)
				return nil
			}))
		}),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	if err := app.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: same handle: true read on a replica: false
}

package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"

	"github.com/jackc/pgx/v5"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

// exampleDatabase makes a migrated database on the test server, for code
// without a testing.TB; drop removes it.
func exampleDatabase() (db config.DB, drop func()) {
	ctx := context.Background()
	raw, err := pg.Start()
	if err != nil {
		panic(err)
	}
	admin, err := pgx.Connect(ctx, raw)
	if err != nil {
		panic(err)
	}
	name := fmt.Sprintf("store_example_%d", rand.Uint32())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		panic(err)
	}
	u, err := url.Parse(raw) // the test server's own URL
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	db = config.DB{URL: u.String()}
	m, err := migrate.New(db, store.Migrations(), nil)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		panic(err)
	}
	return db, func() {
		admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)") //nolint:errcheck // best effort
		admin.Close(ctx)
	}
}

// Inside InTx, store.New(q) gives the typed queries on the transaction:
// sqlc's DBTX is part of dbmodule.Querier, so sqlc's WithTx, which wants a
// pgx.Tx, is not needed. Queries made outside, such as the store.Querier that
// store.Module provides, run on the pool, outside the transaction.
func Example_inTx() {
	db, drop := exampleDatabase()
	defer drop()
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // example
	shop := store.New(pool)

	err = dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
		s := store.New(q) // what shop.WithTx(tx) would be
		c, err := s.CreateCustomer(ctx, store.CreateCustomerParams{Email: "ada@example.com", Name: "Ada"})
		if err != nil {
			return err
		}
		_, err = shop.GetCustomer(ctx, c.ID)
		fmt.Println("outside, before the commit:", err)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := shop.GetCustomerByEmail(ctx, "ada@example.com")
	fmt.Println("after the commit:", c.Name, err)
	// Output:
	// outside, before the commit: no rows in result set
	// after the commit: Ada <nil>
}

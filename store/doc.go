// Package store is the example schema and its typed queries: customers,
// products and their orders. The migrations in migrations/ are the schema,
// the queries in queries/ are compiled by sqlc (`make generate`) into the
// *.sql.go files, and Module gives an fx app a Querier over the app's
// dbmodule.Querier, replaceable by a fake that implements Querier.
//
// Queries run inside a transaction through the same code:
//
//	tx.InTx(ctx, func(q dbmodule.Querier) error {
//		s := store.New(q)
//		...
//	})
package store

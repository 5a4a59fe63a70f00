package dbmodule

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier runs queries. It has pgx's own signatures, so *pgxpool.Pool,
// *pgxpool.Conn, *pgx.Conn and pgx.Tx all satisfy it, and code written
// against it runs unchanged inside or outside a transaction. It is also the
// DBTX that sqlc generates for pgx/v5.
//
// Depend on Querier rather than on *pgxpool.Pool wherever a query is all you
// need: a test can then replace it with a fake, and nothing connects.
//
// A Querier that wraps another should have a method Unwrap() Querier, so
// that InTx sees a transaction through it (see InTx).
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
	// Begin starts a transaction; on a pgx.Tx it starts a savepoint.
	Begin(ctx context.Context) (pgx.Tx, error)
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (*pgxpool.Conn)(nil)
	_ Querier = (*pgx.Conn)(nil)
	_ Querier = pgx.Tx(nil)
)

// NewQuerier provides the pool as the app's Querier, which rides out a
// failover or restart: a call that fails before it reaches a server (no
// connection could be opened, the server refused it at startup, or, with
// passwords from DB_PASSWORD_FILE or a PasswordProvider, refused a password
// that was rotated meanwhile) waits and tries again, within its deadline
// and RideThroughLimit, while one caller probes for all; a call whose
// statement may have run is never retried. A query through it costs what it
// costs through pgxpool, with no more allocations. guard may be nil.
func NewQuerier(pool *pgxpool.Pool, guard *Guard) Querier { return newRideThrough(pool, guard) }

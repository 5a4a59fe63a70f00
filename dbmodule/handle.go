package dbmodule

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// credentialRetry is the module's Querier when new connections take their
// password from DB_PASSWORD_FILE or a PasswordProvider. During a rotation,
// the server and the secret the app reads change one after the other, and a
// connection opened in between is refused (28P01); so is one opened while a
// provider fails. Either way the call failed while acquiring a connection,
// before any statement was sent, so it is safe to try again: this Querier
// waits a little (10 ms, doubling, with jitter) and tries again with the
// password read anew, within the caller's context and for at most the
// pool's connect timeout in all. Any other error is returned as it is.
//
// Exec, Query, Begin and CopyFrom cost nothing more than the pool's.
// QueryRow acquires the connection itself, so that a failure shows before a
// Row is returned, and allocates one small value for releasing it. SendBatch
// is the pool's, not retried: a batch may begin a transaction whose
// connection only pgxpool can hand over.
type credentialRetry struct {
	pool  *pgxpool.Pool
	guard *Guard
}

var _ Querier = (*credentialRetry)(nil)

// guardedQuerier is the pool, or, when guard takes passwords from
// DB_PASSWORD_FILE or a PasswordProvider, the pool behind credentialRetry.
func guardedQuerier(pool *pgxpool.Pool, guard *Guard) Querier {
	if guard == nil || guard.credentials == nil {
		return pool
	}
	return &credentialRetry{pool: pool, guard: guard}
}

// Unwrap returns the pool.
func (q *credentialRetry) Unwrap() Querier { return q.pool }

// Exec implements Querier.
func (q *credentialRetry) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var r retrier
	for {
		tag, err := q.pool.Exec(ctx, sql, args...)
		if !r.again(ctx, err, q.guard) {
			return tag, err
		}
	}
}

// Query implements Querier.
func (q *credentialRetry) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	var r retrier
	for {
		rows, err := q.pool.Query(ctx, sql, args...)
		if !r.again(ctx, err, q.guard) {
			return rows, err
		}
	}
}

// QueryRow implements Querier.
func (q *credentialRetry) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := q.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &releasingRow{row: c.QueryRow(ctx, sql, args...), conn: c}
}

// SendBatch implements Querier, with no retry.
func (q *credentialRetry) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return q.pool.SendBatch(ctx, b)
}

// CopyFrom implements Querier.
func (q *credentialRetry) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	var r retrier
	for {
		n, err := q.pool.CopyFrom(ctx, table, columns, rows)
		if !r.again(ctx, err, q.guard) {
			return n, err
		}
	}
}

// Begin implements Querier.
func (q *credentialRetry) Begin(ctx context.Context) (pgx.Tx, error) {
	var r retrier
	for {
		tx, err := q.pool.Begin(ctx)
		if !r.again(ctx, err, q.guard) {
			return tx, err
		}
	}
}

func (q *credentialRetry) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	var r retrier
	for {
		c, err := q.pool.Acquire(ctx)
		if !r.again(ctx, err, q.guard) {
			return c, err
		}
	}
}

// retrier paces the retries of one call; its zero value is ready, and costs
// nothing until a call fails.
type retrier struct {
	first time.Time
	wait  time.Duration
}

// again reports whether to retry after err, having waited first.
func (r *retrier) again(ctx context.Context, err error, g *Guard) bool {
	if err == nil || !credentialsRefused(err) {
		return false
	}
	now := time.Now()
	if r.first.IsZero() {
		r.first, r.wait = now, 10*time.Millisecond
	} else {
		r.wait = min(2*r.wait, 250*time.Millisecond)
	}
	wait := r.wait/2 + rand.N(r.wait) // jitter, so that callers refused together retry apart
	if now.Add(wait).Sub(r.first) > time.Duration(g.retryBudget.Load()) {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		g.retries.Add(1)
		return true
	case <-ctx.Done():
		return false
	}
}

// credentialsRefused reports whether err is a new connection refused for
// its password, or one that got none: failures of the acquire, before any
// statement was sent.
func credentialsRefused(err error) bool {
	if errors.Is(err, ErrPasswordUnavailable) {
		return true
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) && passwordRejected(err)
}

// releasingRow releases its connection once scanned, as pgxpool's own Row.
type releasingRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
}

func (r *releasingRow) Scan(dest ...any) error {
	defer r.conn.Release() // even if Scan panics
	return r.row.Scan(dest...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

package dbmodule

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// rideThrough is the Querier the module provides: the pool, with the calls
// that never reached a server tried again through an outage instead of
// failing at once (see rideOut), and nothing else retried behind the
// caller's back:
//
//   - every call whose connection could not be opened (see neverSent);
//   - Begin, also when its pooled connection turns out dead: BEGIN that
//     fails has begun nothing;
//   - Exec and QueryRow, also when a server the reset policy has just found
//     demoted refused the statement (25006): it ran nothing there.
//
// A statement that may have run (its connection died while it was out) is
// never retried; nor is a commit, whose outcome may then be unknown.
//
// Without an outage a call costs what it costs on the pool, plus an atomic
// load: QueryRow's release-after-Scan row is cut from a slab kept on the
// connection, as pgxpool does, so it allocates no more.
type rideThrough struct {
	pool  *pgxpool.Pool
	gate  gate
	guard *Guard // nil: no guardrails
}

var (
	_ Querier = (*rideThrough)(nil)
	_ interface {
		BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
		Ping(context.Context) error
		Stat() *pgxpool.Stat
	} = (*rideThrough)(nil)
)

func newRideThrough(pool *pgxpool.Pool, guard *Guard) *rideThrough {
	r := &rideThrough{pool: pool, guard: guard}
	if guard.dynamicPasswords() {
		r.gate.unsent = r.neverSent
	}
	return r
}

// neverSent is the package's neverSent, and, when passwords come from
// DB_PASSWORD_FILE or a PasswordProvider, a login refused for its password
// too: during a rotation the server and the secret change one after the
// other, and a connection opened in between is refused (28P01) before any
// statement was sent; trying again reads the secret anew.
func (r *rideThrough) neverSent(err error) bool {
	if neverSent(err) {
		return true
	}
	if r.gate.unsent != nil && credentialsRefused(err) {
		r.guard.retries.Add(1)
		return true
	}
	return false
}

// acquire acquires a connection, riding out an outage.
func (r *rideThrough) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	var err error
	if !r.gate.down.Load() {
		var c *pgxpool.Conn
		if c, err = r.pool.Acquire(ctx); err == nil || !r.neverSent(err) {
			return c, err
		}
	}
	var c *pgxpool.Conn
	err = rideOut(ctx, &r.gate, err, func() (err error) { c, err = r.pool.Acquire(ctx); return err }, nil)
	return c, err
}

// refusedByDemoted reports whether a statement on c failed because its
// server turned read-only, as the reset policy judged (reset.go): nothing
// ran, and another server may take it.
func refusedByDemoted(c *pgxpool.Conn, err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006" && !serverStillUsable(c.Conn())
}

// maxRefusals bounds how often one call is sent again after demoted
// servers refused it.
const maxRefusals = 3

func (r *rideThrough) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	for refusals := 0; ; refusals++ {
		c, err := r.acquire(ctx)
		if err != nil {
			return pgconn.CommandTag{}, err
		}
		tag, err := c.Exec(ctx, sql, args...)
		again := err != nil && refusals < maxRefusals && refusedByDemoted(c, err)
		c.Release()
		if !again {
			return tag, err
		}
	}
}

func (r *rideThrough) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	var err error
	if !r.gate.down.Load() {
		var rows pgx.Rows
		if rows, err = r.pool.Query(ctx, sql, args...); err == nil || !r.neverSent(err) {
			return rows, err
		}
	}
	var rows pgx.Rows
	err = rideOut(ctx, &r.gate, err, func() (err error) { rows, err = r.pool.Query(ctx, sql, args...); return err }, nil)
	return rows, err
}

func (r *rideThrough) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := r.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	row := inFlightOn(c.Conn()).newRow()
	*row = rideRow{r: r, ctx: ctx, sql: sql, args: args, c: c, row: c.QueryRow(ctx, sql, args...)}
	return row
}

func (r *rideThrough) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	// A batch's results release their connection on Close, which only
	// pgxpool can arrange: make sure a connection can be had, then let the
	// pool send it (most likely on that very connection).
	c, err := r.acquire(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	c.Release()
	return r.pool.SendBatch(ctx, b)
}

func (r *rideThrough) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error) {
	c, err := r.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	return c.CopyFrom(ctx, table, columns, rows)
}

func (r *rideThrough) Begin(ctx context.Context) (pgx.Tx, error) {
	return r.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx starts a transaction; InTx uses it for its options.
func (r *rideThrough) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	var err error
	if !r.gate.down.Load() {
		var tx pgx.Tx
		if tx, err = r.pool.BeginTx(ctx, opts); err == nil || !(r.neverSent(err) || connLost(err)) {
			return tx, err
		}
	}
	var tx pgx.Tx
	err = rideOut(ctx, &r.gate, err, func() (err error) { tx, err = r.pool.BeginTx(ctx, opts); return err }, connLost)
	return tx, err
}

// Ping pings the pool at once, outage or not: readiness must say what is.
func (r *rideThrough) Ping(ctx context.Context) error { return r.pool.Ping(ctx) }

// Stat is the pool's statistics, for metrics.
func (r *rideThrough) Stat() *pgxpool.Stat { return r.pool.Stat() }

// rideRow is QueryRow's row: Scan reads it and releases its connection, and
// sends the query again when a demoted server refused it.
type rideRow struct {
	r    *rideThrough
	ctx  context.Context
	sql  string
	args []any
	c    *pgxpool.Conn
	row  pgx.Row
}

func (row *rideRow) Scan(dest ...any) error {
	for refusals := 0; ; refusals++ {
		again, err := scanAndRelease(row.c, row.row, dest, refusals < maxRefusals)
		if !again {
			row.ctx, row.args, row.c, row.row = nil, nil, nil, nil // let them be collected
			return err
		}
		if row.c, err = row.r.acquire(row.ctx); err != nil {
			return err
		}
		row.row = row.c.QueryRow(row.ctx, row.sql, row.args...)
	}
}

// scanAndRelease scans row and releases c, also when Scan panics.
func scanAndRelease(c *pgxpool.Conn, row pgx.Row, dest []any, mayRetry bool) (again bool, err error) {
	if c == nil {
		return false, errScannedTwice
	}
	defer c.Release()
	err = row.Scan(dest...)
	return err != nil && mayRetry && refusedByDemoted(c, err), err
}

var errScannedTwice = errors.New("dbmodule: Scan called twice on one row")

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// newRow cuts a rideRow from the connection's slab. Rows are never reused
// (a caller may hold one after Scan), only allocated many at a time.
func (f *inFlight) newRow() *rideRow {
	if len(f.rows) == 0 {
		f.rows = make([]rideRow, 64)
	}
	row := &f.rows[len(f.rows)-1]
	f.rows = f.rows[:len(f.rows)-1]
	return row
}

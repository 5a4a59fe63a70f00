package dbmodule

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// resetOnConnLoss is a pgx tracer that resets the pool when a query fails
// because its connection was lost: the server shut down or crashed, or the
// network broke. The pool's idle connections most likely went down with it,
// and without a reset each would fail one caller once the server is back;
// pgxpool only pings connections idle for over a second. Reset closes the
// idle connections at once and the busy ones when they are released.
type resetOnConnLoss struct {
	pool atomic.Pointer[pgxpool.Pool]
}

// attach starts resetting pool; until then the tracer does nothing.
func (r *resetOnConnLoss) attach(pool *pgxpool.Pool) { r.pool.Store(pool) }

// TraceQueryStart implements pgx.QueryTracer.
func (r *resetOnConnLoss) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (r *resetOnConnLoss) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err == nil || !connLost(conn, data.Err) {
		return
	}
	if pool := r.pool.Load(); pool != nil {
		pool.Reset()
	}
}

// connLost reports whether err means conn's server went away, as opposed to
// the query failing or its caller giving up.
func connLost(conn *pgx.Conn, err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false // pgx closes a connection whose query was interrupted; the server is fine
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return false
	}
	return conn.IsClosed()
}

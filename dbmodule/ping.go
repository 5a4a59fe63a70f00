package dbmodule

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// A PingError says why the database did not answer. Its message (Reason) is
// safe to show anyone, as in a readiness probe's response: it never names
// hosts, users or databases. Err keeps the driver's full error for logs.
type PingError struct {
	Reason string
	Err    error
}

func (e *PingError) Error() string { return "database " + e.Reason }
func (e *PingError) Unwrap() error { return e.Err }

// Ping checks that q's database answers, or returns a *PingError. A pool is
// pinged the way pgx pings; any other Querier runs an empty statement, so a
// fake answers as its Exec does.
func Ping(ctx context.Context, q Querier) error {
	var err error
	if p, ok := q.(interface{ Ping(context.Context) error }); ok {
		err = p.Ping(ctx)
	} else {
		_, err = q.Exec(ctx, "-- ping")
	}
	if err == nil {
		return nil
	}
	return &PingError{Reason: pingReason(err), Err: err}
}

func pingReason(err error) string {
	var pgErr *pgconn.PgError
	var errno syscall.Errno
	switch {
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return "did not answer in time"
	case errors.Is(err, context.Canceled):
		return "ping canceled"
	case errors.Is(err, puddle.ErrClosedPool):
		return "pool is closed"
	case errors.As(err, &pgErr):
		// The server's own words only where they name no user or database:
		// "the database system is starting up", "too many clients".
		if strings.HasPrefix(pgErr.Code, "57") || strings.HasPrefix(pgErr.Code, "53") {
			return "error " + pgErr.Code + ": " + pgErr.Message
		}
		return "error " + pgErr.Code
	case errors.As(err, &errno):
		return "unreachable: " + errno.Error()
	}
	return "unreachable"
}

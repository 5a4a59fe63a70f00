package dbmodule

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// A FailureKind says, in one word, why the database could not be used. The
// start-up error, the readiness probe, dbcheck and the logs all take it
// from Classify, so that they never disagree.
type FailureKind uint8

// The kinds of failure, from the caller's point of view.
const (
	FailureOther        FailureKind = iota // a statement failed on a working connection, or something unforeseen
	FailureTimeout                         // no answer within the connect or ping timeout, or the caller's deadline
	FailureCanceled                        // the caller gave up
	FailurePoolClosed                      // the pool was closed
	FailureUnreachable                     // no route, no such host, no socket: nothing answered
	FailureRefusing                        // something answered and would not take a connection now: refused, too many clients, starting up or shutting down
	FailureLoginRefused                    // the server refused the credentials or the role
	FailureNoDatabase                      // the database does not exist
	FailureReadOnly                        // target_session_attrs wanted a server that accepts writes and found none
	FailureServer                          // the server reported an error while connecting
)

var failureWords = [...]string{
	FailureOther:        "failed",
	FailureTimeout:      "did not answer in time",
	FailureCanceled:     "canceled",
	FailurePoolClosed:   "pool is closed",
	FailureUnreachable:  "unreachable",
	FailureRefusing:     "refusing connections",
	FailureLoginRefused: "login refused",
	FailureNoDatabase:   "database does not exist",
	FailureReadOnly:     "no server accepts writes",
	FailureServer:       "server error",
}

func (k FailureKind) String() string {
	if int(k) < len(failureWords) {
		return failureWords[k]
	}
	return "failed"
}

// Classify says why err kept a caller from the database, and gives a
// reason safe to show anyone, as a readiness probe does: it never names a
// host, a user or a database, only the kind, the SQLSTATE and the server's
// words where they hold none of those.
func Classify(err error) (FailureKind, string) {
	var (
		pgErr  *pgconn.PgError
		errno  syscall.Errno
		dnsErr *net.DNSError
	)
	switch {
	case err == nil:
		return FailureOther, ""
	case errors.Is(err, puddle.ErrClosedPool) || errors.Is(err, errPoolStopped):
		return FailurePoolClosed, FailurePoolClosed.String()
	case errors.Is(err, context.Canceled):
		return FailureCanceled, FailureCanceled.String()
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return FailureTimeout, FailureTimeout.String()
	case errors.As(err, &pgErr):
		return classifyServer(pgErr)
	case errors.Is(err, errRefusing):
		return FailureRefusing, FailureRefusing.String() + " (retrying with backoff)"
	case strings.Contains(err.Error(), "ValidateConnect failed"):
		// pgconn's words when target_session_attrs turned every server down.
		return FailureReadOnly, FailureReadOnly.String()
	case errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == syscall.ECONNRESET):
		return FailureRefusing, FailureRefusing.String() + ": " + errno.Error()
	case errors.As(err, &errno):
		return FailureUnreachable, FailureUnreachable.String() + ": " + errno.Error()
	case errors.As(err, &dnsErr):
		return FailureUnreachable, FailureUnreachable.String() + ": host name not found"
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return FailureUnreachable, FailureUnreachable.String()
	}
	return FailureOther, FailureOther.String()
}

func classifyServer(e *pgconn.PgError) (FailureKind, string) {
	code := " (SQLSTATE " + e.Code + ")"
	switch {
	case e.Code == "28P01" || e.Code == "28000":
		return FailureLoginRefused, FailureLoginRefused.String() + code
	case e.Code == "3D000":
		return FailureNoDatabase, FailureNoDatabase.String() + code
	case strings.HasPrefix(e.Code, "53") || e.Code == "57P03":
		// "too many clients already", "the database system is starting up":
		// the server's words name no user or database.
		return FailureRefusing, FailureRefusing.String() + ": " + e.Message + code
	case strings.HasPrefix(e.Code, "57P"):
		return FailureRefusing, FailureRefusing.String() + ": " + e.Message + code
	case e.Code == "25006":
		return FailureReadOnly, FailureReadOnly.String() + code
	}
	return FailureServer, FailureServer.String() + code
}

// connectDetail is err's message with pgconn's repeats left out: with
// sslmode=prefer it tries each host with TLS and then without, and a
// refused port fails both the same way; and when every attempt went to one
// address, that address is said once, by the caller, not per attempt.
func connectDetail(err error) string {
	var connErr *pgconn.ConnectError
	if !errors.As(err, &connErr) {
		return err.Error()
	}
	joined, ok := errors.Unwrap(connErr).(interface{ Unwrap() []error })
	if !ok {
		return err.Error()
	}
	var msgs, prefixes []string
	for _, e := range joined.Unwrap() {
		msg, prefix := e.Error(), ""
		if inner := errors.Unwrap(e); inner != nil && strings.HasSuffix(msg, inner.Error()) {
			msg, prefix = inner.Error(), strings.TrimSuffix(msg, inner.Error())
		}
		if !slices.Contains(prefixes, prefix) {
			prefixes = append(prefixes, prefix)
		}
		if !slices.Contains(msgs, prefix+msg) {
			msgs = append(msgs, prefix+msg)
		}
	}
	if len(prefixes) == 1 {
		for i := range msgs {
			msgs[i] = strings.TrimPrefix(msgs[i], prefixes[0])
		}
		msgs = slices.Compact(msgs)
	}
	return strings.Join(msgs, "; ")
}

// A PingError says why the database did not answer. Its message (Reason) is
// safe to show anyone, as in a readiness probe's response: it never names
// hosts, users or databases. Err keeps the driver's full error for logs.
type PingError struct {
	Kind   FailureKind
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
	kind, reason := Classify(err)
	return &PingError{Kind: kind, Reason: reason, Err: err}
}

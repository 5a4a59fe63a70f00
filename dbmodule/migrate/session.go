package migrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"go.uber.org/zap"
)

// LockKey is the key of the session-level advisory lock a Migrator holds
// while it changes the schema, pg_advisory_lock(4097083626): goose's key
// (its lock.DefaultLockID), so that goose's tools and this package exclude
// each other too. Advisory locks belong to one database, so migrators of
// different databases on one server do not wait for each other.
const LockKey int64 = 4097083626

// cancelGrace is how long a statement may take to stop after its context
// is done, once the server has been asked to cancel it, before the
// connection is cut instead.
const cancelGrace = time.Second

// sessionConfig prepares the migration connection's settings. A done
// context asks the server to cancel the running statement (a wait for the
// lock included) and the call returns once it has, or after cancelGrace;
// pgx's default would cut the connection at once and leave a goroutine
// sending the cancel request after the call returned.
func sessionConfig(cc *pgx.ConnConfig) {
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "migrate" // names the migrator in pg_stat_activity
	}
}

// session runs fn on a connection of its own, closed when fn returns.
func (m *Migrator) session(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.ConnectConfig(ctx, m.cc)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", m.where, withCause(ctx, err))
	}
	defer func() {
		// Closing ends the session, which rolls back its transaction and
		// releases its locks, whatever happened before.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelGrace)
		defer cancel()
		conn.Close(ctx) //nolint:errcheck // nothing is left to save
	}()
	return withCause(ctx, fn(conn))
}

// locked is session holding the migration lock. pg_advisory_lock waits on
// the server, in line, rather than polling; ctx bounds the wait.
func (m *Migrator) locked(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	return m.session(ctx, func(conn *pgx.Conn) error {
		if err := m.lock(ctx, conn); err != nil {
			return fmt.Errorf("wait for the migration lock at %s: %w", m.where, err)
		}
		defer m.unlock(ctx, conn)
		return fn(conn)
	})
}

func (m *Migrator) lock(ctx context.Context, conn *pgx.Conn) error {
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", pgx.QueryExecModeExec, LockKey).Scan(&got); err != nil || got {
		return err
	}
	holder, err := lockHolder(ctx, conn)
	if err != nil {
		return err
	}
	m.log.Info("waiting for the migration lock, which another migrator holds", zap.Int64("lock_key", LockKey), zap.Int("holder_pid", holder))
	_, err = conn.Exec(ctx, "SELECT pg_advisory_lock($1)", pgx.QueryExecModeExec, LockKey)
	return err
}

// unlock releases the lock early when it can. When ctx is done it leaves
// that to closing the connection, which needs no round trip.
func (m *Migrator) unlock(ctx context.Context, conn *pgx.Conn) {
	if ctx.Err() != nil {
		return
	}
	var released bool
	err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", pgx.QueryExecModeExec, LockKey).Scan(&released)
	if err != nil || !released {
		m.log.Warn("release migration lock; closing the connection releases it", zap.Bool("held", released), zap.Error(err))
	}
}

// lockHolder returns the process id of the session that holds the
// migration lock in this database, 0 if none does any more.
func lockHolder(ctx context.Context, conn *pgx.Conn) (int, error) {
	var pid int
	err := conn.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`, pgx.QueryExecModeExec, LockKey>>32, LockKey&0xffffffff).Scan(&pid)
	return pid, err
}

// withCause adds ctx's cause to err when ctx ended what err reports, so
// that errors.Is(err, context.Canceled) or DeadlineExceeded holds: the
// server reports a cancelled statement as SQLSTATE 57014 only.
func withCause(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if err == nil || cause == nil || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}

// where describes the migration connection's target for messages: host and
// port, or socket, and database; never the URL, which may hold a password.
func where(cc *pgx.ConnConfig, variable string) string {
	p := strconv.Itoa(int(cc.Port))
	addr := net.JoinHostPort(cc.Host, p)
	if strings.HasPrefix(cc.Host, "/") {
		addr = "unix socket " + cc.Host + "/.s.PGSQL." + p
	}
	return fmt.Sprintf("%s database %q (%s)", addr, cc.Database, variable)
}

// Package headroom reads how many connections a PostgreSQL server has left,
// and says what that means for a pool: the one reader and the one set of
// warnings that the pool's start-up check and dbcheck share.
package headroom

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Headroom is how many connections a server has, and how many others use.
type Headroom struct {
	MaxConnections int // the server's max_connections
	Reserved       int // slots kept for superusers (and, from PostgreSQL 16, reserved_connections roles)
	InUse          int // client connections other than the one asking
	Port           int // the port the server itself listens on
}

// Free is how many more ordinary connections the server accepts.
func (h Headroom) Free() int { return h.MaxConnections - h.Reserved - h.InUse }

// query reads a Headroom. It reads pg_stat_get_activity rather than the
// pg_stat_activity view, whose joins cost a new backend's first query some
// milliseconds more.
const query = `SELECT current_setting('max_connections')::int,
	current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0),
	(SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int,
	current_setting('port')::int`

// Read asks the server behind conn. It runs below pgx's tracers, so the
// module's housekeeping stays out of the app's query logs, metrics and
// spans, and in the simple protocol, so that it works through any pooler.
func Read(ctx context.Context, conn *pgconn.PgConn) (Headroom, error) {
	results, err := conn.Exec(ctx, query).ReadAll()
	if err != nil {
		return Headroom{}, fmt.Errorf("read server connection limits: %w", err)
	}
	if len(results) != 1 || len(results[0].Rows) != 1 || len(results[0].Rows[0]) != 4 {
		return Headroom{}, errors.New("read server connection limits: unexpected result")
	}
	var h Headroom
	for i, dst := range []*int{&h.MaxConnections, &h.Reserved, &h.InUse, &h.Port} {
		if *dst, err = strconv.Atoi(string(results[0].Rows[0][i])); err != nil {
			return Headroom{}, fmt.Errorf("read server connection limits: %w", err)
		}
	}
	return h, nil
}

// A Warning is a setting that looks fine until load or a pooler proves it
// wrong.
type Warning struct {
	Message string
	Pooler  bool // a pooler or proxy sits in front of the server
}

// Check judges a pool of maxConns connections dialed at dialedPort, in exec
// mode mode, against the server's headroom h:
//   - a pooler in front of the server (it listens on another port than the
//     one dialed) with an exec mode that prepares named statements, which
//     PgBouncer before 1.21 in transaction mode loses (hint says what to do);
//   - otherwise, a pool that may open more connections than the server has
//     left, so that acquires fail with "too many clients" under load.
func Check(h Headroom, dialedPort uint16, maxConns int32, mode pgx.QueryExecMode, hint string) []Warning {
	if h.Port != int(dialedPort) {
		// The pool's connections go to the pooler, not to this server, so
		// headroom says nothing about them.
		if mode == pgx.QueryExecModeCacheStatement || mode == pgx.QueryExecModeDescribeExec {
			return []Warning{{Pooler: true, Message: fmt.Sprintf("connected through a pooler or proxy (port %d; the server listens on %d) "+
				"with an exec mode that prepares named statements: %s", dialedPort, h.Port, hint)}}
		}
		return nil
	}
	if int(maxConns) > h.Free() {
		return []Warning{{Message: fmt.Sprintf("pool_max_conns %d exceeds the %d connections the server has free (max_connections %d, reserved %d, in use %d): "+
			"under load, acquires would fail with too many clients", maxConns, h.Free(), h.MaxConnections, h.Reserved, h.InUse)}}
	}
	return nil
}

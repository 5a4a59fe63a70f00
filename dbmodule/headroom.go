package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
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

// headroomQuery reads a Headroom. It reads pg_stat_get_activity rather than
// the pg_stat_activity view, whose joins cost a new backend's first query
// some milliseconds more.
const headroomQuery = `SELECT current_setting('max_connections')::int,
	current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0),
	(SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int,
	current_setting('port')::int`

// ServerHeadroom asks the server behind q how many connections it has left.
// It uses the simple protocol so that it works through any pooler.
func ServerHeadroom(ctx context.Context, q Querier) (Headroom, error) {
	var h Headroom
	err := q.QueryRow(ctx, headroomQuery, pgx.QueryExecModeSimpleProtocol).Scan(&h.MaxConnections, &h.Reserved, &h.InUse, &h.Port)
	if err != nil {
		return Headroom{}, fmt.Errorf("read server connection limits: %w", err)
	}
	return h, nil
}

// serverCheckDelay is how long after start the server check waits: the app
// need not wait for advice, and its first moments have better uses for a
// connection; an app that stops sooner is spared the check.
const serverCheckDelay = time.Second

// checkServerInBackground reads the server's headroom on one of the pool's
// connections, serverCheckDelay after start, and warns about what it finds.
// It returns the function that stops it: before the check starts, it skips
// it; once started, it lets it finish, as interrupting a query costs more
// than its timeout bounds it to.
func checkServerInBackground(pool *pgxpool.Pool, log *zap.Logger) (stop func()) {
	pc := pool.Config()
	skip := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait := time.NewTimer(serverCheckDelay)
		defer wait.Stop()
		select {
		case <-skip:
			return
		case <-wait.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pc.ConnConfig.ConnectTimeout+pc.PingTimeout)
		defer cancel()
		h, err := untracedHeadroom(ctx, pool)
		if err != nil {
			log.Debug("server connection limits unknown", zap.Error(err))
			return
		}
		warnAboutServer(h, pool, log)
	}()
	return func() {
		close(skip)
		<-done
	}
}

// untracedHeadroom is ServerHeadroom below pgx's tracers: the module's own
// housekeeping stays out of the app's query logs, metrics and spans.
func untracedHeadroom(ctx context.Context, pool *pgxpool.Pool) (Headroom, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return Headroom{}, fmt.Errorf("read server connection limits: %w", err)
	}
	defer c.Release()
	results, err := c.Conn().PgConn().Exec(ctx, headroomQuery).ReadAll()
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

// warnAboutServer warns, once on start, about settings that look fine until
// load or a pooler proves them wrong, given the server's headroom:
//   - the pool may open more connections than the server has left, so that
//     acquires fail with "too many clients" under load;
//   - a pooler sits in front of the server (it listens on another port than
//     the one dialled) while the exec mode prepares named statements, which
//     PgBouncer before 1.21 in transaction mode loses.
func warnAboutServer(h Headroom, pool *pgxpool.Pool, log *zap.Logger) {
	pc := pool.Config()
	if h.Port != int(pc.ConnConfig.Port) {
		// A pooler or proxy is in between: the pool's connections are not
		// the server's, so headroom says nothing about them.
		switch mode := pc.ConnConfig.DefaultQueryExecMode; mode {
		case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec:
			log.Warn("connected through a pooler or proxy, with an exec mode that prepares named statements; "+ExecModeHint,
				zap.Uint16("port", pc.ConnConfig.Port), zap.Int("server_port", h.Port), zap.Stringer("exec_mode", mode))
		}
		return
	}
	if maxConns := pc.MaxConns; int(maxConns) > h.Free() {
		log.Warn("DB_MAX_CONNS exceeds the connections the server has free", zap.Int32("max_conns", maxConns), zap.Int("free", h.Free()),
			zap.Int("max_connections", h.MaxConnections), zap.Int("reserved", h.Reserved), zap.Int("in_use", h.InUse))
	}
}

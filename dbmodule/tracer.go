package dbmodule

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Tracer is the pool's pgx tracer. It times every statement, batch and copy
// once, and with that one timing:
//
//   - logs it to Logger: at debug, at warn when slower than
//     SlowQueryThreshold, and at error, with the fix, when a pooler lost its
//     prepared statement; argument values only with LogArgs, as they may hold
//     personal data or secrets;
//   - tells each of Observers, such as the metrics of dbmetrics;
//   - in the pools the module makes, applies the reset policy when a
//     statement finds its connection lost (see reset.go): one lost
//     connection costs only itself, a server gone drops all of its;
//   - on a primary's pool, counts the commits made under a context of
//     WithReadYourWrites.
//
// It logs new connections at debug, and an outage in two lines: the first
// failed connect at warn, and the first connect that succeeds again with
// the count of those that failed in between.
//
// Below debug level a statement costs two clock reads and two lookups in
// its connection's CustomData, where the start of the statement in flight is
// kept (a new context would allocate), plus what its observers do.
type Tracer struct {
	Logger             *zap.Logger // nil or zap.NewNop() for no logging
	SlowQueryThreshold time.Duration
	LogArgs            bool
	Observers          []StatementObserver

	gate    *connGate // told how each connect went
	servers *servers  // nil: no reset policy (a Tracer made outside the module)
	role    Role      // RoleReplica: a replica's pool, which writes nothing (ryw.go) and may meet the primary
}

var (
	_ pgx.QueryTracer    = (*Tracer)(nil)
	_ pgx.BatchTracer    = (*Tracer)(nil)
	_ pgx.CopyFromTracer = (*Tracer)(nil)
	_ pgx.ConnectTracer  = (*Tracer)(nil)
)

// inFlight is what the Tracer remembers about a connection's current statement.
type inFlight struct {
	start    time.Time
	sql      string
	args     []any
	server   connServer // see reset.go
	rows     []rideRow  // QueryRow's rows, cut from a slab (see retry.go)
	readRows []readRow  // a replica's (see route.go)
}

// inFlightKey keys a connection's inFlight in its pgconn.PgConn.CustomData.
const inFlightKey = "dbmodule.Tracer"

func inFlightOn(conn *pgx.Conn) *inFlight {
	data := conn.PgConn().CustomData()
	f, ok := data[inFlightKey].(*inFlight)
	if !ok {
		f = new(inFlight)
		data[inFlightKey] = f
	}
	return f
}

// beginStatement notes the start of a statement on conn.
func beginStatement(conn *pgx.Conn, sql string, args []any) {
	f := inFlightOn(conn)
	f.start, f.sql, f.args = time.Now(), sql, args
}

// end times the statement in flight on conn and tells the observers and the
// pool of it; the caller logs it.
func (t *Tracer) end(conn *pgx.Conn, kind StatementKind, err error) (*inFlight, time.Duration) {
	f := inFlightOn(conn)
	took := time.Since(f.start)
	if len(t.Observers) > 0 {
		s := Statement{Kind: kind, Name: statementName(kind, f.sql), Duration: took, Err: err}
		for _, o := range t.Observers {
			o.ObserveStatement(s)
		}
	}
	if err != nil && t.servers != nil {
		t.servers.lost(conn, err)
	}
	return f, took
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *Tracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	beginStatement(conn, data.SQL, data.Args)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *Tracer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	f, took := t.end(conn, QueryStatement, data.Err)
	if data.Err == nil {
		t.noteWrite(ctx, conn, data.CommandTag)
	}
	if ce := t.check(took, data.Err, "query"); ce != nil {
		fields := append(t.statementFields(f.sql, f.args), zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID()))
		ce.Write(append(fields, outcomeFields(data.CommandTag, data.Err)...)...)
	}
	f.sql, f.args = "", nil // let the arguments be collected
}

// TraceBatchStart implements pgx.BatchTracer.
func (t *Tracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	beginStatement(conn, batchSQL(data.Batch), nil)
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer.
func (t *Tracer) TraceBatchQuery(_ context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if t.Logger == nil {
		return
	}
	if ce := t.Logger.Check(zap.DebugLevel, "batch query"); ce != nil {
		fields := append(t.statementFields(data.SQL, data.Args), zap.Uint32("pid", conn.PgConn().PID()))
		ce.Write(append(fields, outcomeFields(data.CommandTag, data.Err)...)...)
	}
}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *Tracer) TraceBatchEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	_, took := t.end(conn, BatchStatement, data.Err)
	if data.Err == nil {
		t.noteWrite(ctx, conn, pgconn.NewCommandTag("BATCH")) // its statements' tags are not told: assume a write
	}
	if ce := t.check(took, data.Err, "batch"); ce != nil {
		ce.Write(append([]zap.Field{zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID())}, outcomeFields(pgconn.CommandTag{}, data.Err)...)...)
	}
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (t *Tracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	beginStatement(conn, data.TableName.Sanitize(), nil)
	return ctx
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (t *Tracer) TraceCopyFromEnd(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	f, took := t.end(conn, CopyFromStatement, data.Err)
	if data.Err == nil {
		t.noteWrite(ctx, conn, data.CommandTag)
	}
	if ce := t.check(took, data.Err, "copy from"); ce != nil {
		ce.Write(append([]zap.Field{zap.String("table", f.sql), zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID())},
			outcomeFields(data.CommandTag, data.Err)...)...)
	}
}

// TraceConnectStart implements pgx.ConnectTracer. A connect has no
// connection to keep its start on yet, so it goes in the context; connects
// are rare next to queries.
func (t *Tracer) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	return context.WithValue(ctx, connectStartKey{}, connectStart{time.Now(), data.ConnConfig.Host, data.ConnConfig.Port})
}

type connectStartKey struct{}

type connectStart struct {
	at   time.Time
	host string
	port uint16
}

// TraceConnectEnd implements pgx.ConnectTracer.
// A failed connect is not logged here: the pool's gate logs an outage once
// when it begins and once when it ends, never per dial.
func (t *Tracer) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	start, _ := ctx.Value(connectStartKey{}).(connectStart)
	if t.role == RoleReplica && errors.Is(data.Err, pgconn.ErrPrimaryConnection) {
		return // a replica's host that is the primary now: no outage (replicas.go)
	}
	if t.gate != nil {
		t.gate.connected(ctx, start.host, start.port, data.Err)
	}
	if data.Err != nil {
		return
	}
	if t.servers != nil {
		t.servers.track(data.Conn)
	}
	if t.Logger == nil {
		return
	}
	if ce := t.Logger.Check(zap.DebugLevel, "database connection opened"); ce != nil {
		ce.Write(zap.String("host", start.host), zap.Uint16("port", start.port), zap.Duration("duration", time.Since(start.at)),
			zap.Uint32("pid", data.Conn.PgConn().PID()))
	}
}

// check returns the log entry for a finished statement, or nil when its
// level is off: warn when slow, and error when the failure means the exec
// mode does not suit a pooler, so that the fix is in the log.
func (t *Tracer) check(took time.Duration, err error, msg string) *zapcore.CheckedEntry {
	switch {
	case t.Logger == nil:
		return nil
	case preparedStatementLost(err):
		return t.Logger.Check(zap.ErrorLevel, msg+" failed, its prepared statement gone; "+ExecModeHint)
	case took >= t.SlowQueryThreshold && t.SlowQueryThreshold > 0:
		return t.Logger.Check(zap.WarnLevel, "slow "+msg)
	}
	return t.Logger.Check(zap.DebugLevel, msg)
}

func (t *Tracer) statementFields(sql string, args []any) []zap.Field {
	fields := make([]zap.Field, 0, 8)
	fields = append(fields, zap.String("sql", sql))
	if t.LogArgs && len(args) > 0 {
		fields = append(fields, zap.Strings("args", loggableArgs(args)))
	}
	return fields
}

func outcomeFields(tag pgconn.CommandTag, err error) []zap.Field {
	if err != nil {
		return []zap.Field{zap.Error(err)}
	}
	return []zap.Field{zap.String("command", tag.String()), zap.Int64("rows", tag.RowsAffected())}
}

// loggableArgs renders arguments for a log line, cutting long values short.
func loggableArgs(args []any) []string {
	const limit = 64
	out := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			out[i] = "NULL"
		case []byte:
			out[i] = truncate(`\x`+hex.EncodeToString(v[:min(len(v), limit)]), limit)
		case string:
			out[i] = truncate(v, limit)
		default:
			out[i] = truncate(fmt.Sprint(v), limit)
		}
	}
	return out
}

func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// preparedStatementLost reports the error a transaction-mode pooler causes
// when pgx's statement cache meets a server connection that never saw the
// statement (26000) or already has it (42P05).
func preparedStatementLost(err error) bool {
	if err == nil {
		return false // before errors.As, whose target would escape to the heap
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return (pgErr.Code == "26000" || pgErr.Code == "42P05") && strings.Contains(pgErr.Message, "stmtcache_")
}

// ExecModeHint is the advice logged with the errors that a transaction-mode
// pooler causes under pgx's default statement cache.
const ExecModeHint = "a pooler in transaction mode (PgBouncer before 1.21, or without max_prepared_statements) loses prepared statements: " +
	"behind one, set DB_QUERY_EXEC_MODE=exec (or default_query_exec_mode=exec in DATABASE_URL)"

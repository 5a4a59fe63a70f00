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

// QueryLogger is a pgx tracer that logs to zap: every query, batch and copy
// at debug, those slower than SlowQueryThreshold at warn, and new connections
// at debug (failed ones at warn). Argument values are logged only when
// LogArgs is set, as they may hold personal data or secrets.
//
// Below debug level a traced query costs two clock reads and no allocation:
// the start of the query in flight is kept on its connection, not in a new
// context.
type QueryLogger struct {
	Logger             *zap.Logger
	SlowQueryThreshold time.Duration
	LogArgs            bool
}

var (
	_ pgx.QueryTracer    = (*QueryLogger)(nil)
	_ pgx.BatchTracer    = (*QueryLogger)(nil)
	_ pgx.CopyFromTracer = (*QueryLogger)(nil)
	_ pgx.ConnectTracer  = (*QueryLogger)(nil)
)

// inFlight is what QueryLogger remembers about a connection's current query.
type inFlight struct {
	start time.Time
	sql   string
	args  []any
}

// inFlightKey keys a connection's inFlight in its pgconn.PgConn.CustomData.
const inFlightKey = "dbmodule.QueryLogger"

func inFlightOn(conn *pgx.Conn) *inFlight {
	data := conn.PgConn().CustomData()
	f, ok := data[inFlightKey].(*inFlight)
	if !ok {
		f = new(inFlight)
		data[inFlightKey] = f
	}
	return f
}

// TraceQueryStart implements pgx.QueryTracer.
func (l *QueryLogger) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	f := inFlightOn(conn)
	f.start, f.sql, f.args = time.Now(), data.SQL, data.Args
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (l *QueryLogger) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	f := inFlightOn(conn)
	took := time.Since(f.start)
	if ce := l.check(took, data.Err, "query"); ce != nil {
		fields := append(l.statementFields(f.sql, f.args), zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID()))
		ce.Write(append(fields, outcomeFields(data.CommandTag, data.Err)...)...)
	}
	f.sql, f.args = "", nil // let the arguments be collected
}

// TraceBatchStart implements pgx.BatchTracer.
func (l *QueryLogger) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	f := inFlightOn(conn)
	f.start, f.sql, f.args = time.Now(), "", nil
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer.
func (l *QueryLogger) TraceBatchQuery(_ context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if ce := l.Logger.Check(zap.DebugLevel, "batch query"); ce != nil {
		fields := append(l.statementFields(data.SQL, data.Args), zap.Uint32("pid", conn.PgConn().PID()))
		ce.Write(append(fields, outcomeFields(data.CommandTag, data.Err)...)...)
	}
}

// TraceBatchEnd implements pgx.BatchTracer.
func (l *QueryLogger) TraceBatchEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	took := time.Since(inFlightOn(conn).start)
	if ce := l.check(took, data.Err, "batch"); ce != nil {
		ce.Write(append([]zap.Field{zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID())}, outcomeFields(pgconn.CommandTag{}, data.Err)...)...)
	}
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (l *QueryLogger) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	f := inFlightOn(conn)
	f.start, f.sql, f.args = time.Now(), data.TableName.Sanitize(), nil
	return ctx
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (l *QueryLogger) TraceCopyFromEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	f := inFlightOn(conn)
	took := time.Since(f.start)
	if ce := l.check(took, data.Err, "copy from"); ce != nil {
		ce.Write(append([]zap.Field{zap.String("table", f.sql), zap.Duration("duration", took), zap.Uint32("pid", conn.PgConn().PID())},
			outcomeFields(data.CommandTag, data.Err)...)...)
	}
}

// TraceConnectStart implements pgx.ConnectTracer. A connect has no
// connection to keep its start on yet, so it goes in the context; connects
// are rare next to queries.
func (l *QueryLogger) TraceConnectStart(ctx context.Context, data pgx.TraceConnectStartData) context.Context {
	return context.WithValue(ctx, connectStartKey{}, connectStart{time.Now(), data.ConnConfig.Host, data.ConnConfig.Port})
}

type connectStartKey struct{}

type connectStart struct {
	at   time.Time
	host string
	port uint16
}

// TraceConnectEnd implements pgx.ConnectTracer.
func (l *QueryLogger) TraceConnectEnd(ctx context.Context, data pgx.TraceConnectEndData) {
	start, _ := ctx.Value(connectStartKey{}).(connectStart)
	fields := []zap.Field{zap.String("host", start.host), zap.Uint16("port", start.port), zap.Duration("duration", time.Since(start.at))}
	if data.Err != nil {
		// pgconn's connect errors name user, database, host and port, never the password.
		l.Logger.Warn("database connect failed", append(fields, zap.Error(data.Err))...)
		return
	}
	l.Logger.Debug("database connection opened", append(fields, zap.Uint32("pid", data.Conn.PgConn().PID()))...)
}

// check returns the log entry for a finished statement, or nil when its
// level is off: warn when slow, and error when the failure means the exec
// mode does not suit a pooler, so that the fix is in the log.
func (l *QueryLogger) check(took time.Duration, err error, msg string) *zapcore.CheckedEntry {
	switch {
	case preparedStatementLost(err):
		return l.Logger.Check(zap.ErrorLevel, msg+" failed, its prepared statement gone; "+ExecModeHint)
	case took >= l.SlowQueryThreshold && l.SlowQueryThreshold > 0:
		return l.Logger.Check(zap.WarnLevel, "slow "+msg)
	}
	return l.Logger.Check(zap.DebugLevel, msg)
}

func (l *QueryLogger) statementFields(sql string, args []any) []zap.Field {
	fields := make([]zap.Field, 0, 8)
	fields = append(fields, zap.String("sql", sql))
	if l.LogArgs && len(args) > 0 {
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

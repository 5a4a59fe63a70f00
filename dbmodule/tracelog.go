package dbmodule

import (
	"context"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5/tracelog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TraceLogger adapts a zap logger to pgx's tracelog.Logger, for apps that
// want pgx's own tracelog.TraceLog (which also traces acquires, releases and
// prepares) beside the pool's Tracer; github.com/jackc/pgx-zap is not
// published as a module. tracelog always records argument values: add it only
// where that is acceptable.
func TraceLogger(log *zap.Logger) tracelog.Logger {
	return tracelog.LoggerFunc(func(_ context.Context, level tracelog.LogLevel, msg string, data map[string]any) {
		ce := log.Check(zapLevel(level), msg)
		if ce == nil {
			return
		}
		fields := make([]zap.Field, 0, len(data))
		for _, k := range slices.Sorted(maps.Keys(data)) {
			fields = append(fields, zap.Any(k, data[k]))
		}
		ce.Write(fields...)
	})
}

func zapLevel(level tracelog.LogLevel) zapcore.Level {
	switch level {
	case tracelog.LogLevelTrace, tracelog.LogLevelDebug:
		return zap.DebugLevel
	case tracelog.LogLevelInfo:
		return zap.InfoLevel
	case tracelog.LogLevelWarn:
		return zap.WarnLevel
	}
	return zap.ErrorLevel
}

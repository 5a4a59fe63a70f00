//go:build unix

package dbmetrics_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// BenchmarkHotPath is a point query through the module's pool, the way
// sqlc's code runs it and as plain SQL, with the metrics on and off: what a
// statement costs an app, its name read and its series found included.
// Compare -benchmem runs of it across changes to the Tracer or the metrics.
// Besides wall time it reports the process's CPU time per query
// (cpu-ns/op), which other load on the machine disturbs far less, and which
// leaves out the server's share.
func BenchmarkHotPath(b *testing.B) {
	const (
		sqlc  = "-- name: GetAnswer :one\nSELECT $1::int\n"
		plain = "SELECT $1::int"
	)
	ctx := context.Background() // a cancellable context allocates more per query
	for _, bb := range []struct {
		name    string
		sql     string
		metrics bool
	}{
		{"metrics=off/sql=sqlc", sqlc, false},
		{"metrics=on/sql=sqlc", sqlc, true},
		{"metrics=on/sql=plain", plain, true},
	} {
		b.Run(bb.name, func(b *testing.B) {
			var opts []dbmodule.Option
			if bb.metrics {
				opts = append(opts, dbmodule.WithObservers(newMetrics(b, nil)))
			}
			pool, err := dbmodule.Open(ctx, config.DB{URL: pg.URL(b), MaxConns: 1}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer dbmodule.Close(ctx, pool) //nolint:errcheck // benchmark
			var n int
			if err := pool.QueryRow(ctx, bb.sql, 1).Scan(&n); err != nil { // prepares it, makes its series
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				if err := pool.QueryRow(ctx, bb.sql, 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkTracerPath is the part of BenchmarkHotPath that is ours, without
// the network: the pool's Tracer timing a statement and telling the
// metrics, on a real connection, as pgx calls it for each query.
func BenchmarkTracerPath(b *testing.B) {
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, config.DB{URL: pg.URL(b), MaxConns: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // benchmark
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	tag := pgconn.NewCommandTag("SELECT 1")
	for _, sql := range []string{"-- name: GetAnswer :one\nSELECT $1::int\n", "SELECT $1::int"} {
		name := "sql=plain"
		if sql[0] == '-' {
			name = "sql=sqlc"
		}
		b.Run(name, func(b *testing.B) {
			tracer := &dbmodule.Tracer{Observers: []dbmodule.StatementObserver{newMetrics(b, nil)}}
			args := []any{1}
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				qctx := tracer.TraceQueryStart(ctx, conn.Conn(), pgx.TraceQueryStartData{SQL: sql, Args: args})
				tracer.TraceQueryEnd(qctx, conn.Conn(), pgx.TraceQueryEndData{CommandTag: tag})
			}
			reportCPU(b, start)
		})
	}
}

// cpuTime is the CPU time the process has used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per iteration of b.Loop.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

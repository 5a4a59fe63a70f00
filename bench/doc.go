// Package bench measures the module against the alternatives on one
// PostgreSQL, in one run: the module's Querier inside a started fx app, a raw
// pgxpool with no tracer, database/sql over pgx's stdlib driver and over
// lib/pq, and pgbench (C, libpq) as the reference.
//
// Every contender runs the same workloads (SELECT 1, pgbench's select-only
// point lookup on a scale-10 pgbench_accounts, and pgbench's simple-update
// read-write transaction) at several concurrencies on pools of PoolSize,
// over TCP loopback and the unix socket. Runs interleave the contenders (A B
// C A B C ...) so that drift hits them alike, repeat, and report medians with
// their spread, ratios against raw pgxpool and pgbench, p50 and p99
// latencies, and the client's CPU time per query.
//
// Like is compared with like. pgbench has no pool, so above PoolSize
// goroutines the ratios against it use PgBenchPool, pgbench with PoolSize
// clients (SameConns); pgbench with a client per goroutine is reported as
// what it measures, pooling. pgbench's CPU time leaves out its start and
// logins, as the Go contenders' pools are warmed before timing. The targets
// rest on paired runs (RunPairs), each ratio with a 95 % confidence interval
// of its median, and more pairs where that interval is wider than MaxWidth.
//
// It is a module of its own (github.com/fxpg/fxpg/bench), so that its
// drivers, plotting and hyperfine stay out of the library's module graph.
// cmd/dbbench runs it and writes docs/bench.md and its charts.
package bench

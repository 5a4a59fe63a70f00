// Package bench measures the module against the alternatives on one
// PostgreSQL, in one run: the module's Querier inside a started fx app, a raw
// pgxpool with no tracer, database/sql over pgx's stdlib driver and over
// lib/pq, and pgbench (C, libpq) as the reference.
//
// Every contender runs the same workloads (SELECT 1, pgbench's select-only
// point lookup on a scale-10 pgbench_accounts, and pgbench's simple-update
// read-write transaction) at several concurrencies on pools of 10, over TCP
// loopback and the unix socket. Runs interleave the contenders (A B C A B C
// ...) so that drift hits them alike, repeat, and report medians with their
// spread, ratios against raw pgxpool and pgbench, p50 and p99 latencies, and
// the client's CPU time per query: client and server share the machine's
// cores, so the client's CPU decides throughput.
//
// It is a module of its own (github.com/fxpg/fxpg/bench), so that its
// drivers, plotting and hyperfine stay out of the library's module graph.
// cmd/dbbench runs it and writes docs/bench.md and its charts.
package bench

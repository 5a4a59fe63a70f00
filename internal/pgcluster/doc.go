// Package pgcluster runs a throwaway pg_auto_failover cluster on loopback,
// for tests of what a replicated PostgreSQL does to a client: a monitor and
// two nodes with synchronous replication (pg_auto_failover's default), each
// listening on 127.0.0.1 only.
//
// Start builds it in about 20 seconds, so a test binary builds one and shares
// it (Lazy). Running as root, it runs every process as the postgres user in a
// directory that user owns, as PostgreSQL refuses root. Close stops each
// process with `pg_autoctl stop` and kills what is left; a run that was
// killed before Close is cleaned up by the next Start, which finds its
// directory unlocked.
//
// Switchover performs a planned switchover, Crash kills a node's keeper and
// postmaster so that the monitor must promote the other (TuneFailover makes
// the monitor decide in seconds rather than half a minute), and WriteProbe
// measures, outside any pool, when the cluster accepts writes.
//
// The Debian packages postgresql-<major>-auto-failover and
// pg-auto-failover-cli must be installed (scripts/ensure-deps
// pg_auto_failover does it); without them Start fails with the command that
// installs them.
package pgcluster

// Package pgtemp runs throwaway PostgreSQL servers from the machine's own
// binaries, for tests, benchmarks and local development.
//
// A server lives in a temporary directory, listens on a free 127.0.0.1 port
// and on a unix socket in that directory, and trades durability for speed
// (fsync=off). Its superuser is postgres, with a random password over TCP and
// trust over the socket (Options.HBA adds rules before those). Running as
// root, which PostgreSQL refuses, it runs the server as the postgres system
// user.
//
// Nothing outlives its owner for long: a process that dies without Close
// leaves its server running and its directory behind, and the next Start or
// StartBouncer on the machine stops that server and removes the directory.
//
// StartBouncer puts a PgBouncer in front of a server, in transaction mode by
// default, for tests of what poolers do to a client.
//
// initdb runs once per machine and binary version: the cluster it makes is
// kept in the temp directory and copied for each new server, which is many
// times faster than initdb and lets many test binaries start servers at once.
package pgtemp

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"

	"github.com/fxpg/fxpg/internal/pgtemp"
)

// Scale is the pgbench scale factor: pgbench_accounts holds 100,000 rows per
// unit.
const Scale = 10

// A Transport is how clients reach the server.
type Transport string

// The transports a run compares.
const (
	TCP    Transport = "tcp"    // 127.0.0.1
	Socket Transport = "socket" // the unix socket
)

// Env is a PostgreSQL server loaded with pgbench's tables, and optionally a
// PgBouncer in front of it.
type Env struct {
	Server  *pgtemp.Server
	Bouncer *pgtemp.Bouncer // nil unless asked for
	pgbench string
}

// SetupOptions say what Setup starts.
type SetupOptions struct {
	// Bouncer adds a PgBouncer in transaction mode, with as many server
	// connections as the pools have.
	Bouncer bool
	// ServerCPUs, if set, are the CPUs the server and PgBouncer run on;
	// keep the client off them (taskset) for measures that vary less.
	ServerCPUs []int
}

// Setup starts a server and initialises pgbench's tables at Scale.
func Setup(ctx context.Context, opts SetupOptions) (*Env, error) {
	srv, err := pgtemp.Start(ctx, pgtemp.Options{CPUs: opts.ServerCPUs})
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	e := &Env{Server: srv}
	if e.pgbench, err = pgtemp.Program(ctx, "pgbench", "postgresql-contrib"); err != nil {
		e.Close()
		return nil, err
	}
	init := exec.CommandContext(ctx, e.pgbench, "-i", "-q", "-s", strconv.Itoa(Scale), "--unlogged-tables", e.URL(Socket))
	if out, err := init.CombinedOutput(); err != nil {
		e.Close()
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	if opts.Bouncer {
		if e.Bouncer, err = pgtemp.StartBouncer(ctx, srv, pgtemp.BouncerOptions{PoolSize: PoolSize, CPUs: opts.ServerCPUs}); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close stops what Setup started.
func (e *Env) Close() {
	if e.Bouncer != nil {
		e.Bouncer.Close()
	}
	e.Server.Close()
}

// URL reaches the server's postgres database over transport.
func (e *Env) URL(t Transport) string {
	if t == Socket {
		return e.Server.SocketURL("postgres")
	}
	return e.Server.URL("postgres")
}

// BouncerURL reaches the server through PgBouncer, over TCP.
func (e *Env) BouncerURL() string { return e.Bouncer.URL("postgres") }

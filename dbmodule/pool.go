package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// PoolParams are NewPool's dependencies.
type PoolParams struct {
	fx.In

	Config    config.DB
	Lifecycle fx.Lifecycle
	// Logger is the app's logger, if it provides one; the module never
	// provides a logger itself.
	Logger *zap.Logger `optional:"true"`
	// Tracers are extra pgx tracers, provided with AsTracer.
	Tracers []pgx.QueryTracer `group:"dbmodule_tracers"`
	// Observers are told of every statement, provided with AsStatementObserver.
	Observers []StatementObserver `group:"dbmodule_statement_observers"`
	// StartTasks run on start before anything uses the pool; see StartTask.
	StartTasks []StartTask `group:"dbmodule_start_tasks"`
	// Guard holds the pool's guardrails (guard.go); without one, the pool
	// makes its own from Config.
	Guard *Guard `optional:"true"`
}

// A StartTask is work that must finish before anything uses the pool, such
// as applying migrations. The pool's OnStart hook runs every task, in no
// particular order, after its ping succeeds; anything that depends on the
// pool starts after that hook. Provide one with AsStartTask. A task with a
// nil Run is skipped.
type StartTask struct {
	Name string
	Run  func(context.Context) error
}

// NewPool makes the app's pool and ties it to the app's lifecycle. Making it
// does no I/O and dials nothing, not even the connections DB_MIN_CONNS asks
// for: those open once the app starts. Starting the app pings the database,
// failing within the connect timeout when it cannot be reached; stopping it
// closes the pool within the stop context, ending dials in flight. A pool
// whose app never starts (fx.New failed later, say) never dials, and is
// closed once the app is garbage.
func NewPool(p PoolParams) (*pgxpool.Pool, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("db").With(zap.String("role", string(RolePrimary)))
	pc, _, gate, err := parseConfig(p.Config, options{logger: log, tracers: p.Tracers, observers: p.Observers, guard: p.Guard})
	if err != nil {
		return nil, err
	}
	gate.hold()
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	// The hooks hold the only reference to token: once an app that never
	// started is unreachable, the cleanup closes its pool, whose health
	// check goroutine would otherwise run for ever.
	token := &lifecycleToken{pool}
	runtime.AddCleanup(token, closeUnstarted, poolAndGate{pool, gate})
	var check *serverCheck
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			gate.open()
			if err := ping(ctx, pool, p.Config); err != nil {
				log.Error("database ping failed", zap.Error(err))
				// fx runs OnStop only for hooks whose OnStart succeeded.
				gate.close()
				Close(ctx, pool) //nolint:errcheck // the ping error matters more
				return err
			}
			warm(ctx, pool)
			cc := pool.Config().ConnConfig
			log.Info("database pool opened", zap.String("host", cc.Host), zap.Uint16("port", cc.Port), zap.String("address", address(cc)), zap.String("database", cc.Database),
				zap.String("user", cc.User), zap.Int32("max_conns", pool.Config().MaxConns), zap.String("exec_mode", ExecModeName(cc.DefaultQueryExecMode)))
			for _, task := range p.StartTasks {
				if task.Run == nil {
					continue
				}
				if err := task.Run(ctx); err != nil {
					gate.close()
					Close(ctx, pool) //nolint:errcheck // the task's error matters more
					return fmt.Errorf("%s: %w", task.Name, err)
				}
			}
			check = startServerCheck(pool, log)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			_ = token // keeps the token alive as long as the hooks
			check.stop(ctx)
			gate.close()
			if err := Close(ctx, pool); err != nil {
				log.Error("database pool not closed in time", zap.Error(err))
				return err
			}
			s := pool.Stat()
			log.Info("database pool closed", zap.Int64("acquires", s.AcquireCount()), zap.Duration("acquire_time", s.AcquireDuration()),
				zap.Int64("empty_acquires", s.EmptyAcquireCount()), zap.Int64("canceled_acquires", s.CanceledAcquireCount()),
				zap.Int64("connections_opened", s.NewConnsCount()), zap.Int64("closed_at_lifetime", s.MaxLifetimeDestroyCount()),
				zap.Int64("closed_when_idle", s.MaxIdleDestroyCount()))
			return nil
		},
	})
	return pool, nil
}

// warm opens the connections DB_MIN_CONNS and DB_MIN_IDLE_CONNS ask for,
// which pgxpool tried to open when the pool was made, and the gate refused:
// left to pgxpool, they would wait for its next health check, a minute
// later. A connect that fails is pgxpool's to retry then.
func warm(ctx context.Context, pool *pgxpool.Pool) {
	pc := pool.Config()
	n := int(max(pc.MinConns, pc.MinIdleConns))
	if n == 0 {
		return
	}
	conns := make(chan *pgxpool.Conn, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := pool.Acquire(ctx); err == nil {
				conns <- c
			}
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.Release()
	}
}

// lifecycleToken is reachable only from a pool's lifecycle hooks.
// It holds a pointer, as the runtime may never collect a tiny
// pointer-free object on its own.
type lifecycleToken struct{ pool *pgxpool.Pool }

type poolAndGate struct {
	pool *pgxpool.Pool
	gate *connGate
}

// closeUnstarted closes the pool of an app that was dropped; a started app
// closes its pool on stop, and closing again does nothing.
func closeUnstarted(p poolAndGate) {
	p.gate.close()
	go p.pool.Close() // no connections were ever opened: it returns at once
}

// Open makes a pool from cfg and pings it, for programs without fx. Close it
// with Close. Like NewPool's, the pool follows the reset policy (reset.go)
// when a query finds its connection lost, and backs off while the server
// refuses connections.
func Open(ctx context.Context, cfg config.DB, opts ...Option) (*pgxpool.Pool, error) {
	pc, _, _, err := parseConfig(cfg, optionsOf(opts))
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	if err := ping(ctx, pool, cfg); err != nil {
		Close(ctx, pool) //nolint:errcheck // the ping error matters more
		return nil, err
	}
	return pool, nil
}

// ping checks that the pool can reach its database, within the time it takes
// to connect and ping once. Its error says what happened, where, and which
// variable points there, and never shows the password.
func ping(ctx context.Context, pool *pgxpool.Pool, cfg config.DB) error {
	pc := pool.Config()
	ctx, cancel := context.WithTimeout(ctx, pc.ConnConfig.ConnectTimeout+pc.PingTimeout)
	defer cancel()
	err := pool.Ping(ctx)
	if err == nil {
		return nil
	}
	raw, _ := cfg.RuntimeURL()
	return StartError(err, pc, cfg.RuntimeVar(), raw)
}

// StartError explains why a first connection of pc (parsed from the URL
// raw, in variable) failed, in one line that says what happened, where and
// why, without a password. The pool's start and dbcheck report with it.
func StartError(err error, pc *pgxpool.Config, variable, raw string) error {
	timeouts := fmt.Sprintf("the connect timeout %s and ping timeout %s", pc.ConnConfig.ConnectTimeout, pc.PingTimeout)
	return connectError("database", err, pc.ConnConfig, timeouts, variable, raw)
}

// connectError is StartError for what (the database, its listener)
// connecting with cc within timeouts.
func connectError(what string, err error, cc *pgx.ConnConfig, timeouts, variable, raw string) error {
	kind, _ := Classify(err)
	where := fmt.Sprintf("%s at %s (%s)", what, address(cc), variable)
	detail := connectDetail(err)
	var pgErr *pgconn.PgError
	switch {
	case kind == FailureTimeout:
		detail = "no answer within " + timeouts
	case kind == FailureLoginRefused:
		where += fmt.Sprintf(" as user %q", cc.User)
	case errors.As(err, &pgErr) && pgErr.Code == "08P01" && strings.Contains(pgErr.Message, "unsupported startup parameter"):
		// PgBouncer refuses settings it cannot track, DB_STATEMENT_TIMEOUT's among them.
		detail += "; a pooler (PgBouncer) refused a connection setting: leave it out of the URL and DB_STATEMENT_TIMEOUT, " +
			"and set it on the role instead (ALTER ROLE ... SET statement_timeout = ...), or list it in PgBouncer's ignore_startup_parameters"
	}
	return &startError{msg: RedactSecrets(where+": "+kind.String()+": "+detail, raw), err: err}
}

type startError struct {
	msg string
	err error
}

func (e *startError) Error() string { return e.msg }
func (e *startError) Unwrap() error { return e.err }

// address describes where a connection goes: host:port, or a unix socket,
// and how many other hosts it may try.
func address(cc *pgx.ConnConfig) string {
	port := strconv.Itoa(int(cc.Port))
	addr := net.JoinHostPort(cc.Host, port)
	if strings.HasPrefix(cc.Host, "/") {
		addr = "unix socket " + cc.Host + "/.s.PGSQL." + port
	}
	// Fallbacks repeat a host to try it without TLS; count only other hosts.
	others := map[string]bool{}
	for _, f := range cc.Fallbacks {
		if f.Host != cc.Host || f.Port != cc.Port {
			others[net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port)))] = true
		}
	}
	if n := len(others); n > 0 {
		addr += fmt.Sprintf(" (and %d more hosts)", n)
	}
	return addr
}

// Address describes where connections of cc go, for logs and reports:
// host:port or a unix socket, and how many more hosts it may try.
func Address(cc *pgx.ConnConfig) string { return address(cc) }

// Close closes pool, letting queries in flight finish, but returns when ctx
// ends even if a connection is never released (a Rows left open, say); the
// pool then finishes closing in the background once it is.
func Close(ctx context.Context, pool *pgxpool.Pool) error {
	done := make(chan struct{})
	go func() {
		pool.Close()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close database pool: %d connections still in use: %w", pool.Stat().AcquiredConns(), ctx.Err())
	}
}

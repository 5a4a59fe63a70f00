package dbmodule

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	Tracers []pgx.QueryTracer `group:"pgx_tracers"`
	// Observers are told of every statement, provided with AsStatementObserver.
	Observers []StatementObserver `group:"dbmodule_statement_observers"`
	// StartTasks run on start before anything uses the pool; see StartTask.
	StartTasks []StartTask `group:"dbmodule_start_tasks"`
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

// NewPool makes the app's pool and ties it to the app's lifecycle: making it
// does no I/O, starting the app pings the database (failing within the
// connect timeout when it cannot be reached), and stopping the app closes the
// pool.
func NewPool(p PoolParams) (*pgxpool.Pool, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("db").With(zap.String("role", string(RolePrimary)))
	pc, _, err := parseConfig(p.Config, options{logger: log, tracers: p.Tracers, observers: p.Observers, always: true})
	if err != nil {
		return nil, err
	}
	gate := holdBackgroundConnects(pc)
	pool, err := pgxpool.NewWithConfig(gate.ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create database pool: %w", err)
	}
	// The server check runs after start, off its critical path; stopping
	// the app stops it.
	var stopCheck func()
	// If the app fails before this hook starts (in fx.New, or in an earlier
	// OnStart), nothing closes the pool: a failed app is expected to exit.
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			gate.open()
			if err := ping(ctx, pool, p.Config); err != nil {
				log.Error("database ping failed", zap.Error(err))
				// fx runs OnStop only for hooks whose OnStart succeeded.
				Close(ctx, pool) //nolint:errcheck // the ping error matters more
				return err
			}
			cc := pool.Config().ConnConfig
			log.Info("database pool opened", zap.String("host", cc.Host), zap.Uint16("port", cc.Port),
				zap.String("database", cc.Database), zap.String("user", cc.User), zap.Int32("max_conns", pool.Config().MaxConns),
				zap.Stringer("exec_mode", cc.DefaultQueryExecMode))
			for _, task := range p.StartTasks {
				if task.Run == nil {
					continue
				}
				if err := task.Run(ctx); err != nil {
					Close(ctx, pool) //nolint:errcheck // the task's error matters more
					return fmt.Errorf("%s: %w", task.Name, err)
				}
			}
			stopCheck = checkServerInBackground(pool, log)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if stopCheck != nil {
				stopCheck()
			}
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

// startGate holds back the connections pgxpool opens in the background to
// reach MinConns and MinIdleConns, which it starts as soon as the pool is
// made, until the app starts. Connections a caller acquires are not held.
// Closing the pool cancels the held connects, so nothing waits forever.
type startGate struct {
	ctx     context.Context // marks pgxpool's background connects
	started chan struct{}
	open    func()
}

type backgroundConnectKey struct{}

func holdBackgroundConnects(pc *pgxpool.Config) startGate {
	started := make(chan struct{})
	g := startGate{
		// pgxpool uses this context's values, not its deadline, for the
		// background connects.
		ctx:     context.WithValue(context.Background(), backgroundConnectKey{}, true),
		started: started,
		open:    sync.OnceFunc(func() { close(started) }),
	}
	next := pc.BeforeConnect
	pc.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if ctx.Value(backgroundConnectKey{}) != nil {
			select {
			case <-g.started:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if next != nil {
			return next(ctx, cc)
		}
		return nil
	}
	return g
}

// Open makes a pool from cfg and pings it, for programs without fx. Close it
// with Close. Like NewPool's, the pool follows the reset policy (reset.go)
// when a query finds its connection lost, so that a database restart costs
// no more failed queries.
func Open(ctx context.Context, cfg config.DB, opts ...Option) (*pgxpool.Pool, error) {
	o := optionsOf(opts)
	o.always = true
	pc, _, err := parseConfig(cfg, o)
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
// to connect and ping once. Its error names the address and the variable it
// came from, and never the password.
func ping(ctx context.Context, pool *pgxpool.Pool, cfg config.DB) error {
	pc := pool.Config()
	ctx, cancel := context.WithTimeout(ctx, pc.ConnConfig.ConnectTimeout+pc.PingTimeout)
	defer cancel()
	err := pool.Ping(ctx)
	if err == nil {
		return nil
	}
	raw, _ := cfg.RuntimeURL()
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("no answer in time (connect timeout %s, ping timeout %s): %w", pc.ConnConfig.ConnectTimeout, pc.PingTimeout, err)
	case errors.As(err, &pgErr) && pgErr.Code == "08P01" && strings.Contains(pgErr.Message, "unsupported startup parameter"):
		// PgBouncer refuses settings it cannot track, DB_STATEMENT_TIMEOUT's among them.
		err = fmt.Errorf("%w; a pooler (PgBouncer) refused a connection setting: leave it out of the URL and DB_STATEMENT_TIMEOUT, "+
			"and set it on the role instead (ALTER ROLE ... SET statement_timeout = ...), or list it in PgBouncer's ignore_startup_parameters", err)
	}
	return fmt.Errorf("database at %s (%s) unreachable: %w", address(pc.ConnConfig), cfg.RuntimeVar(), config.RedactError(err, raw))
}

// address describes where a connection goes: host:port, or a unix socket.
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

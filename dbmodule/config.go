package dbmodule

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"reflect"

	"github.com/fxpg/fxpg/config"
)

// An Option adds to the pool configuration that ParseConfig builds.
type Option func(*options)

type options struct {
	logger    *zap.Logger
	tracers   []pgx.QueryTracer
	observers []StatementObserver
	guard     *Guard // guardrails (guard.go); nil: a Guard from the config
	role      Role   // "" is the primary's
}

// WithLogger logs statements and connection events to logger through the
// pool's Tracer. Without it, or with zap.NewNop(), nothing is logged.
func WithLogger(logger *zap.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// WithObservers tells observers of every statement, through the pool's
// Tracer, which times each once for all of them.
func WithObservers(observers ...StatementObserver) Option {
	return func(o *options) { o.observers = append(o.observers, observers...) }
}

// WithTracers adds pgx tracers, such as an OpenTelemetry one, after the
// pool's Tracer. They are combined with pgx's multitracer, so each may also
// implement the batch, copy, prepare, connect and pool tracer interfaces.
func WithTracers(tracers ...pgx.QueryTracer) Option {
	return func(o *options) { o.tracers = append(o.tracers, tracers...) }
}

// ParseConfig turns cfg into a pgxpool configuration for its runtime URL, as
// pgxpool.ParseConfig does for a connection string; pgxpool.NewWithConfig
// then makes the pool. It does no I/O.
//
// pgx is the one parser: the DB_* settings are written into the URL as the
// parameters they stand for (pool_max_conns, default_query_exec_mode, ...)
// where the URL has none of its own, and pgxpool.ParseConfig parses the
// result once. A parameter the URL carries therefore wins over its DB_*
// variable. Errors name the variable at fault and never contain a password.
func ParseConfig(cfg config.DB, opts ...Option) (*pgxpool.Config, error) {
	pc, _, _, err := parseConfig(cfg, optionsOf(opts))
	return pc, err
}

func optionsOf(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// parseConfig is ParseConfig, returning also the pool's Tracer, for NewPool
// and Open to attach to the pool, and the gate its connects pass.
func parseConfig(cfg config.DB, o options) (*pgxpool.Config, *Tracer, *connGate, error) {
	s, err := settingsOf(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pc, err := s.parse()
	if err != nil {
		return nil, nil, nil, err
	}
	tracer, gate, err := instrument(pc, cfg, o)
	if err != nil {
		return nil, nil, nil, err
	}
	return pc, tracer, gate, nil
}

// instrument gives pc, parsed from cfg's settings, what every pool the
// module makes has: the gate on its connects, the Tracer (with o's tracers
// after it) and its reset policy (reset.go), and the guardrails.
func instrument(pc *pgxpool.Config, cfg config.DB, o options) (*Tracer, *connGate, error) {
	log := o.logger
	if log == nil {
		log = zap.NewNop()
	}
	gate := newConnGate(log)
	gate.install(pc)
	tracer := newTracer(cfg, o)
	tracer.gate = gate
	tracer.servers = newServers(targetSessionAttrs(pc.ConnConfig), tracer.Logger)
	tracer.servers.install(pc)
	pc.ConnConfig.Tracer = combine(tracer, o.tracers)
	// Leak detection, acquire timeout, live credentials: guard.go. After
	// combine, so that the acquire timeout's tracer comes last.
	if err := installGuards(pc, cfg, o); err != nil {
		return nil, nil, err
	}
	return tracer, gate, nil
}

// newTracer makes the pool's Tracer. Every pool has one, for the backoff of
// its connects and its reset on connection loss; it logs only to a logger
// that can ever log.
func newTracer(cfg config.DB, o options) *Tracer {
	logger := o.logger
	if logger != nil && !logger.Core().Enabled(zapcore.FatalLevel) {
		logger = nil
	}
	cfg = cfg.WithDefaults()
	return &Tracer{Logger: logger, SlowQueryThreshold: cfg.SlowQueryThreshold, LogArgs: cfg.LogQueryArgs, Observers: o.observers, role: o.role}
}

// targetSessionAttrs names the target_session_attrs pgconn parsed into cc,
// by the check it installed: pgconn keeps no other trace of it.
func targetSessionAttrs(cc *pgx.ConnConfig) string {
	if cc.ValidateConnect == nil {
		return "any"
	}
	got := reflect.ValueOf(cc.ValidateConnect).Pointer()
	for name, check := range map[string]pgconn.ValidateConnectFunc{
		"read-write":     pgconn.ValidateConnectTargetSessionAttrsReadWrite,
		"read-only":      pgconn.ValidateConnectTargetSessionAttrsReadOnly,
		"primary":        pgconn.ValidateConnectTargetSessionAttrsPrimary,
		"standby":        pgconn.ValidateConnectTargetSessionAttrsStandby,
		"prefer-standby": pgconn.ValidateConnectTargetSessionAttrsPreferStandby,
	} {
		if reflect.ValueOf(check).Pointer() == got {
			return name
		}
	}
	return "any"
}

// combine puts the extra tracers after the Tracer, with pgx's multitracer
// only when there are any.
func combine(tracer *Tracer, extra []pgx.QueryTracer) pgx.QueryTracer {
	if len(extra) == 0 {
		return tracer
	}
	return multitracer.New(append([]pgx.QueryTracer{tracer}, extra...)...)
}

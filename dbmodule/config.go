package dbmodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fxpg/fxpg/config"
)

// An Option adds to the pool configuration that ParseConfig builds.
type Option func(*options)

type options struct {
	logger    *zap.Logger
	tracers   []pgx.QueryTracer
	observers []StatementObserver
	always    bool // install the Tracer even with nothing to log or tell, for its reset policy (reset.go)
	role      Role // "" is the primary's
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

// poolParams are the URL parameters pgxpool reads; any other pool_ parameter
// is a typo that pgx would pass to the server as a setting.
const poolParams = "pool_max_conns, pool_min_conns, pool_min_idle_conns, pool_max_conn_lifetime, " +
	"pool_max_conn_idle_time, pool_health_check_period, pool_max_conn_lifetime_jitter, pool_ping_timeout"

// ParseConfig turns cfg into a pgxpool configuration for its runtime URL, as
// pgxpool.ParseConfig does for a connection string; pgxpool.NewWithConfig
// then makes the pool. It does no I/O.
//
// A setting the URL carries as a parameter (pool_max_conns, connect_timeout,
// default_query_exec_mode, statement_timeout, ...) keeps the URL's value;
// cfg's fields, or their defaults, fill in the rest. Errors name the variable
// at fault and never contain a password.
func ParseConfig(cfg config.DB, opts ...Option) (*pgxpool.Config, error) {
	pc, _, err := parseConfig(cfg, optionsOf(opts))
	return pc, err
}

func optionsOf(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// parseConfig is ParseConfig, returning also the pool's Tracer, if any, for
// NewPool and Open to attach to the pool.
func parseConfig(cfg config.DB, o options) (*pgxpool.Config, *Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.WithDefaults()
	raw, err := cfg.RuntimeURL()
	if err != nil {
		return nil, nil, fmt.Errorf("database config: %w", err)
	}
	pc, attrs, err := parsePoolURL(cfg, cfg.RuntimeVar(), raw)
	if err != nil {
		return nil, nil, err
	}
	return pc, instrument(pc, cfg, o, attrs), nil
}

// parsePoolURL parses the URL in the variable name into a pool
// configuration, with cfg's fields (defaults applied) filling in what the
// URL leaves out. It returns also the URL's target_session_attrs.
func parsePoolURL(cfg config.DB, name, raw string) (*pgxpool.Config, string, error) {
	pc, inURL, err := parseURL(name, raw)
	if err != nil {
		return nil, "", err
	}
	fill := func(param string, set func()) {
		if !inURL.Has(param) {
			set()
		}
	}
	fill("pool_max_conns", func() { pc.MaxConns = cfg.MaxConns })
	fill("pool_min_conns", func() { pc.MinConns = cfg.MinConns })
	fill("pool_min_idle_conns", func() { pc.MinIdleConns = cfg.MinIdleConns })
	fill("pool_max_conn_idle_time", func() { pc.MaxConnIdleTime = cfg.MaxConnIdleTime })
	fill("pool_max_conn_lifetime", func() { pc.MaxConnLifetime = cfg.MaxConnLifetime })
	// Without jitter, connections opened together at start-up expire together.
	fill("pool_max_conn_lifetime_jitter", func() { pc.MaxConnLifetimeJitter = pc.MaxConnLifetime / 10 })
	fill("pool_health_check_period", func() { pc.HealthCheckPeriod = cfg.HealthCheckPeriod })
	fill("pool_ping_timeout", func() { pc.PingTimeout = cfg.PingTimeout })
	fill("connect_timeout", func() { pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout })
	if cfg.QueryExecMode != "" {
		fill("default_query_exec_mode", func() { pc.ConnConfig.DefaultQueryExecMode = execMode(cfg.QueryExecMode) })
	}
	if cfg.StatementTimeout > 0 {
		fill("statement_timeout", func() {
			pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
		})
	}
	if pc.MinConns > pc.MaxConns || pc.MinIdleConns > pc.MaxConns {
		return nil, "", &config.VarError{Var: name, Err: fmt.Errorf("minimum connections (%d, idle %d) exceed the maximum (%d) once the URL's pool parameters apply",
			pc.MinConns, pc.MinIdleConns, pc.MaxConns)}
	}
	if pc.ConnConfig.ConnectTimeout <= 0 {
		// connect_timeout=0 in the URL means "no timeout" to pgx; a hung
		// connect would then hold an Acquire until its context ends, or
		// pgxpool's two-minute backstop. DB_CONNECT_TIMEOUT applies instead.
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}

	return pc, inURL.Get("target_session_attrs"), nil
}

// instrument gives pc the pool's Tracer, with o's tracers after it, and,
// for the pools the module makes, the reset policy (reset.go).
func instrument(pc *pgxpool.Config, cfg config.DB, o options, targetSessionAttrs string) *Tracer {
	tracer := newTracer(cfg, o)
	if tracer != nil && o.always {
		tracer.servers = newServers(targetSessionAttrs, tracer.Logger)
		tracer.servers.install(pc)
	}
	pc.ConnConfig.Tracer = combine(tracer, o.tracers)
	return tracer
}

// MigrationConnConfig returns the settings of a single connection to the
// migration URL (DIRECT_URL, else DATABASE_URL), parsed by the same rules as
// the pool's: the URL's pool_* parameters are accepted and left out, and
// DB_CONNECT_TIMEOUT applies unless the URL sets connect_timeout.
func MigrationConnConfig(cfg config.DB) (*pgx.ConnConfig, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	raw, err := cfg.MigrationURL()
	if err != nil {
		return nil, fmt.Errorf("database config: %w", err)
	}
	pc, inURL, err := parseURL(cfg.MigrationVar(), raw)
	if err != nil {
		return nil, err
	}
	if !inURL.Has("connect_timeout") {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	return pc.ConnConfig, nil
}

// parseURL parses the URL in the variable name with pgxpool, returning also
// the parameters it sets. Its errors name the variable and hide passwords.
func parseURL(name, raw string) (*pgxpool.Config, url.Values, error) {
	u, err := url.Parse(raw) // config.DB.Validate has parsed it already
	if err != nil {
		return nil, nil, &config.VarError{Var: name, Err: errors.New("is not a valid URL")}
	}
	inURL := u.Query()
	for param := range inURL {
		if strings.HasPrefix(param, "pool_") && !slices.Contains(strings.Split(poolParams, ", "), param) {
			return nil, nil, &config.VarError{Var: name, Err: fmt.Errorf("unknown parameter %q (pgxpool knows %s)", param, poolParams)}
		}
	}
	pc, err := pgxpool.ParseConfig(raw)
	if err != nil {
		return nil, nil, &config.VarError{Var: name, Err: config.RedactError(err, raw)}
	}
	return pc, inURL, nil
}

// execMode maps DB_QUERY_EXEC_MODE's values, which config has checked, to pgx's.
func execMode(name string) pgx.QueryExecMode {
	switch name {
	case "cache_describe":
		return pgx.QueryExecModeCacheDescribe
	case "describe_exec":
		return pgx.QueryExecModeDescribeExec
	case "exec":
		return pgx.QueryExecModeExec
	case "simple_protocol":
		return pgx.QueryExecModeSimpleProtocol
	}
	return pgx.QueryExecModeCacheStatement
}

// newTracer makes the pool's Tracer, or nil when it would have nothing to
// do: no logger that can ever log, no observer, no pool to reset.
func newTracer(cfg config.DB, o options) *Tracer {
	logger := o.logger
	if logger != nil && !logger.Core().Enabled(zapcore.FatalLevel) {
		logger = nil
	}
	if logger == nil && len(o.observers) == 0 && !o.always {
		return nil
	}
	return &Tracer{Logger: logger, SlowQueryThreshold: cfg.SlowQueryThreshold, LogArgs: cfg.LogQueryArgs, Observers: o.observers, role: o.role}
}

// combine puts the extra tracers after the Tracer, with pgx's multitracer
// only when there is more than one.
func combine(tracer *Tracer, extra []pgx.QueryTracer) pgx.QueryTracer {
	var all []pgx.QueryTracer
	if tracer != nil {
		all = append(all, tracer)
	}
	all = append(all, extra...)
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return multitracer.New(all...)
}

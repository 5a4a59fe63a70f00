package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Defaults of the tuning fields of [DB]. A zero field means its default.
const (
	DefaultMaxConns           = 10
	DefaultMaxConnIdleTime    = 30 * time.Second
	DefaultMaxConnLifetime    = time.Hour
	DefaultConnectTimeout     = 2 * time.Second
	DefaultHealthCheckPeriod  = time.Minute
	DefaultPingTimeout        = time.Second
	DefaultSlowQueryThreshold = 500 * time.Millisecond
	DefaultReplicaMaxLag      = 5 * time.Second
)

// queryExecModes lists the values DB_QUERY_EXEC_MODE accepts, as pgx names its
// QueryExecMode constants.
const queryExecModes = "cache_statement, cache_describe, describe_exec, exec, simple_protocol"

// DB holds the database settings.
//
// A zero tuning field means its default, so DB{URL: u} is complete. A pool
// setting that the URL also carries as a parameter (pool_max_conns=5, say)
// is taken from the URL: the URL is the most specific description of one
// database, and the DB_* variables fill in what it leaves out.
type DB struct {
	// URL is the runtime connection URL. It may point at a pooler such as
	// PgBouncer. See RuntimeURL for the fallback.
	URL string `env:"DATABASE_URL"`
	// DirectURL reaches PostgreSQL itself, bypassing any pooler, as
	// migrations need session-level locks. See MigrationURL for the fallback.
	DirectURL string `env:"DIRECT_URL"`

	MaxConns     int32 `env:"DB_MAX_CONNS"`      // pool size limit; default 10
	MinConns     int32 `env:"DB_MIN_CONNS"`      // connections kept open even when idle; default 0
	MinIdleConns int32 `env:"DB_MIN_IDLE_CONNS"` // idle connections kept ready for bursts; default 0

	MaxConnIdleTime   time.Duration `env:"DB_MAX_CONN_IDLE_TIME"`  // idle connections older than this close; default 30s
	MaxConnLifetime   time.Duration `env:"DB_MAX_CONN_LIFETIME"`   // connections are recycled after this, plus up to 10% jitter; default 1h
	ConnectTimeout    time.Duration `env:"DB_CONNECT_TIMEOUT"`     // bounds dialing and the startup handshake; default 2s
	HealthCheckPeriod time.Duration `env:"DB_HEALTH_CHECK_PERIOD"` // how often idle connections are checked; default 1m
	PingTimeout       time.Duration `env:"DB_PING_TIMEOUT"`        // bounds the liveness ping of a connection idle for over 1s; default 1s

	// QueryExecMode is pgx's query execution mode: cache_statement,
	// cache_describe, describe_exec, exec or simple_protocol. Empty keeps
	// pgx's default, cache_statement, or the URL's default_query_exec_mode.
	// Behind PgBouncer older than 1.21 in transaction mode, use exec.
	QueryExecMode string `env:"DB_QUERY_EXEC_MODE"`
	// StatementTimeout sets the server's statement_timeout for the pool's
	// connections. Zero leaves the server's own setting.
	StatementTimeout time.Duration `env:"DB_STATEMENT_TIMEOUT"`

	// ReadURL is an optional connection URL for reads (DATABASE_READ_URL):
	// one or more standbys, e.g. with target_session_attrs=prefer-standby.
	// Empty: reads go to the runtime pool.
	ReadURL string `env:"DATABASE_READ_URL"`
	// ReplicaMaxLag is how far behind the primary a replica may replay
	// before reads leave it; default 5s.
	ReplicaMaxLag time.Duration `env:"DB_REPLICA_MAX_LAG"`

	// LeakThreshold logs, once, a connection held longer than this, with the
	// stack that acquired it; zero (the default) turns leak detection off.
	LeakThreshold time.Duration `env:"DB_LEAK_THRESHOLD"`
	// AcquireTimeout bounds how long a caller waits for a free connection,
	// apart from its own deadline; zero (the default) waits for the caller's.
	AcquireTimeout time.Duration `env:"DB_ACQUIRE_TIMEOUT"`
	// PasswordFile is read for the password at each new connection, so that
	// a rotated secret takes effect without a restart; it overrides the
	// URL's password.
	PasswordFile string `env:"DB_PASSWORD_FILE"`

	SlowQueryThreshold time.Duration `env:"DB_SLOW_QUERY_THRESHOLD"` // queries slower than this are logged at warn; default 500ms
	LogQueryArgs       bool          `env:"DB_LOG_QUERY_ARGS"`       // log argument values with queries; default false

	// MigrateOnStart makes an app that includes the migrate module apply
	// pending migrations when it starts, before anything uses the pool.
	MigrateOnStart bool `env:"DB_MIGRATE_ON_START"`

	// Tracing adds OpenTelemetry spans for queries to an app that includes
	// the dbtrace module and provides a trace.TracerProvider; default false.
	Tracing bool `env:"DB_TRACING"`
	// TraceQueryArgs records argument values in spans, which may hold
	// personal data or secrets; default false. Spans always carry the SQL.
	TraceQueryArgs bool `env:"DB_TRACE_QUERY_ARGS"`
}

// ParseDB reads the database settings from environ, a map of variable names to
// values, and validates them. It never reads the process environment; a nil
// map is an empty environment.
func ParseDB(environ map[string]string) (DB, error) {
	db, err := parseEnv[DB](environ)
	var p problems
	p.add(err)
	// A zero field means "default", but a variable explicitly set to zero is
	// a mistake worth reporting rather than silently replacing.
	for _, f := range []struct {
		name string
		zero bool
	}{
		{"DB_MAX_CONNS", db.MaxConns == 0},
		{"DB_MAX_CONN_IDLE_TIME", db.MaxConnIdleTime == 0},
		{"DB_MAX_CONN_LIFETIME", db.MaxConnLifetime == 0},
		{"DB_CONNECT_TIMEOUT", db.ConnectTimeout == 0},
		{"DB_HEALTH_CHECK_PERIOD", db.HealthCheckPeriod == 0},
		{"DB_PING_TIMEOUT", db.PingTimeout == 0},
		{"DB_SLOW_QUERY_THRESHOLD", db.SlowQueryThreshold == 0},
		{"DB_REPLICA_MAX_LAG", db.ReplicaMaxLag == 0},
	} {
		if f.zero && environ[f.name] != "" {
			p.add(&VarError{Var: f.name, Err: fmt.Errorf("%s must be greater than zero; unset it to use the default", quote(environ[f.name]))})
		}
	}
	db = db.WithDefaults()
	p.add(db.validate())
	if err := p.err(); err != nil {
		return DB{}, fmt.Errorf("database config: %w", err)
	}
	return db, nil
}

// LoadDB is ParseDB over the process environment.
func LoadDB() (DB, error) { return ParseDB(Environ()) }

// WithDefaults returns c with every zero tuning field set to its default.
func (c DB) WithDefaults() DB {
	setDefault(&c.MaxConns, DefaultMaxConns)
	setDefault(&c.MaxConnIdleTime, DefaultMaxConnIdleTime)
	setDefault(&c.MaxConnLifetime, DefaultMaxConnLifetime)
	setDefault(&c.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&c.HealthCheckPeriod, DefaultHealthCheckPeriod)
	setDefault(&c.PingTimeout, DefaultPingTimeout)
	setDefault(&c.SlowQueryThreshold, DefaultSlowQueryThreshold)
	setDefault(&c.ReplicaMaxLag, DefaultReplicaMaxLag)
	return c
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate reports every setting that cannot be used, each as a *VarError
// naming its variable, joined. Zero tuning fields are valid: they mean their
// defaults.
func (c DB) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("database config: %w", err)
	}
	return nil
}

// validate returns the joined VarErrors of Validate, unwrapped.
func (c DB) validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(name string, format string, args ...any) {
		errs = append(errs, &VarError{Var: name, Err: fmt.Errorf(format, args...)})
	}

	if c.URL == "" && c.DirectURL == "" {
		errs = append(errs, ErrNoDatabaseURL)
	}
	for _, u := range []struct{ name, value string }{{"DATABASE_URL", c.URL}, {"DIRECT_URL", c.DirectURL}, {"DATABASE_READ_URL", c.ReadURL}} {
		if u.value == "" {
			continue
		}
		if err := checkURL(u.value); err != nil {
			errs = append(errs, &VarError{Var: u.name, Err: err})
		}
	}

	if c.MaxConns < 1 {
		bad("DB_MAX_CONNS", "%d must be at least 1", c.MaxConns)
	}
	for _, n := range []struct {
		name  string
		value int32
	}{{"DB_MIN_CONNS", c.MinConns}, {"DB_MIN_IDLE_CONNS", c.MinIdleConns}} {
		switch {
		case n.value < 0:
			bad(n.name, "%d must not be negative", n.value)
		case n.value > c.MaxConns && c.MaxConns >= 1:
			bad(n.name, "%d is more than DB_MAX_CONNS (%d)", n.value, c.MaxConns)
		}
	}

	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"DB_MAX_CONN_IDLE_TIME", c.MaxConnIdleTime},
		{"DB_MAX_CONN_LIFETIME", c.MaxConnLifetime},
		{"DB_CONNECT_TIMEOUT", c.ConnectTimeout},
		{"DB_HEALTH_CHECK_PERIOD", c.HealthCheckPeriod},
		{"DB_PING_TIMEOUT", c.PingTimeout},
		{"DB_SLOW_QUERY_THRESHOLD", c.SlowQueryThreshold},
		{"DB_STATEMENT_TIMEOUT", c.StatementTimeout},
		{"DB_REPLICA_MAX_LAG", c.ReplicaMaxLag},
	} {
		if d.value < 0 {
			bad(d.name, "%s must not be negative", d.value)
		}
	}
	if c.StatementTimeout > 0 && c.StatementTimeout < time.Millisecond {
		// The server counts statement_timeout in whole milliseconds.
		bad("DB_STATEMENT_TIMEOUT", "%s is below the server's resolution of 1ms", c.StatementTimeout)
	}
	if c.QueryExecMode != "" && !slices.Contains(strings.Split(queryExecModes, ", "), c.QueryExecMode) {
		bad("DB_QUERY_EXEC_MODE", "%s is not one of %s", quote(c.QueryExecMode), queryExecModes)
	}

	return errors.Join(errs...)
}

// RuntimeURL returns the URL the application's pool connects to:
// DATABASE_URL, or DIRECT_URL when DATABASE_URL is unset.
func (c DB) RuntimeURL() (string, error) {
	return c.resolve(c.RuntimeVar())
}

// MigrationURL returns the URL migrations run over: DIRECT_URL, or
// DATABASE_URL when DIRECT_URL is unset. A direct URL bypasses poolers, whose
// transaction mode breaks the session locks migrations rely on.
func (c DB) MigrationURL() (string, error) {
	return c.resolve(c.MigrationVar())
}

// RuntimeVar names the variable RuntimeURL reads, or "" when neither is set.
func (c DB) RuntimeVar() string { return c.pick("DATABASE_URL", "DIRECT_URL") }

// MigrationVar names the variable MigrationURL reads, or "" when neither is set.
func (c DB) MigrationVar() string { return c.pick("DIRECT_URL", "DATABASE_URL") }

func (c DB) pick(first, second string) string {
	for _, name := range []string{first, second} {
		if c.value(name) != "" {
			return name
		}
	}
	return ""
}

func (c DB) value(name string) string {
	if name == "DATABASE_URL" {
		return c.URL
	}
	return c.DirectURL
}

func (c DB) resolve(name string) (string, error) {
	if name == "" {
		return "", ErrNoDatabaseURL
	}
	v := c.value(name)
	if err := checkURL(v); err != nil {
		return "", &VarError{Var: name, Err: err}
	}
	return v, nil
}

// String describes c with passwords hidden, so that printing a DB with %v or
// %+v never leaks one.
func (c DB) String() string {
	c.URL, c.DirectURL, c.ReadURL = RedactURL(c.URL), RedactURL(c.DirectURL), RedactURL(c.ReadURL)
	type fields DB // the same fields, without this method
	return fmt.Sprintf("%+v", fields(c))
}

// GoString is String, for %#v.
func (c DB) GoString() string { return "config.DB" + c.String() }

package dbmodule

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
)

// This file merges the DB_* settings into a URL, for pgx to parse once.

// A Knob is a setting that both a URL parameter and a DB_* variable can set.
type Knob struct {
	Param    string // the URL parameter, as pgx reads it
	Variable string // the DB_* variable, or "" for a setting only derived
}

// Knobs lists, in a stable order, the settings ParseConfig merges from the
// DB_* variables into the URL.
func Knobs() []Knob {
	return []Knob{
		{"pool_max_conns", "DB_MAX_CONNS"},
		{"pool_min_conns", "DB_MIN_CONNS"},
		{"pool_min_idle_conns", "DB_MIN_IDLE_CONNS"},
		{"pool_max_conn_lifetime", "DB_MAX_CONN_LIFETIME"},
		{"pool_max_conn_lifetime_jitter", ""}, // a tenth of the lifetime
		{"pool_max_conn_idle_time", "DB_MAX_CONN_IDLE_TIME"},
		{"pool_health_check_period", "DB_HEALTH_CHECK_PERIOD"},
		{"pool_ping_timeout", "DB_PING_TIMEOUT"},
		{"connect_timeout", "DB_CONNECT_TIMEOUT"},
		{"default_query_exec_mode", "DB_QUERY_EXEC_MODE"},
		{"statement_timeout", "DB_STATEMENT_TIMEOUT"},
	}
}

// poolParams are the URL parameters pgxpool reads; any other pool_ parameter
// is a typo that pgx would pass to the server as a setting.
func poolParams() []string {
	return []string{"pool_max_conns", "pool_min_conns", "pool_min_idle_conns", "pool_max_conn_lifetime",
		"pool_max_conn_idle_time", "pool_health_check_period", "pool_max_conn_lifetime_jitter", "pool_ping_timeout"}
}

// settings are one URL and the DB_* values to merge into it.
type settings struct {
	variable string          // where the URL came from: DATABASE_URL, DIRECT_URL, ...
	raw      string          // the URL as given
	url      *pgconn.Config  // pgconn's parse of raw alone
	inURL    map[string]bool // the Knobs' parameters raw sets itself
	merged   []mergedParam   // the DB_* values raw lacks, as parameters
	cfg      config.DB       // with defaults
}

type mergedParam struct{ param, variable, value string }

// settingsOf checks cfg and parses its runtime URL.
func settingsOf(cfg config.DB) (*settings, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw, err := cfg.RuntimeURL()
	if err != nil {
		return nil, fmt.Errorf("database config: %w", err)
	}
	if cfg.ReadURL != "" {
		// The read pools are made later, only if something reads through
		// them; a bad DATABASE_READ_URL fails the app's construction anyway.
		if _, err := newSettings(cfg.WithDefaults(), "DATABASE_READ_URL", cfg.ReadURL); err != nil {
			return nil, err
		}
	}
	return newSettings(cfg.WithDefaults(), cfg.RuntimeVar(), raw)
}

func newSettings(cfg config.DB, variable, raw string) (*settings, error) {
	cc, err := parseURL(variable, raw)
	if err != nil {
		return nil, err
	}
	s := &settings{variable: variable, raw: raw, url: cc, inURL: map[string]bool{}, cfg: cfg}
	for param := range cc.RuntimeParams {
		// pgconn passes on, as server settings, the parameters it does not
		// know; pgxpool's pool_* and pgx's default_query_exec_mode are among
		// them until pgx reads them.
		if strings.HasPrefix(param, "pool_") && !slices.Contains(poolParams(), param) {
			return nil, &config.VarError{Var: variable, Err: fmt.Errorf("unknown parameter %q (pgxpool knows %s)", param, strings.Join(poolParams(), ", "))}
		}
	}
	for _, k := range Knobs() {
		_, s.inURL[k.Param] = cc.RuntimeParams[k.Param]
	}
	// connect_timeout is pgconn's own: a parse leaves it set, not listed.
	s.inURL["connect_timeout"] = cc.ConnectTimeout != 0
	add := func(param, variable, value string) {
		if !s.inURL[param] {
			s.merged = append(s.merged, mergedParam{param, variable, value})
		}
	}
	add("pool_max_conns", "DB_MAX_CONNS", itoa(cfg.MaxConns))
	add("pool_min_conns", "DB_MIN_CONNS", itoa(cfg.MinConns))
	add("pool_min_idle_conns", "DB_MIN_IDLE_CONNS", itoa(cfg.MinIdleConns))
	add("pool_max_conn_lifetime", "DB_MAX_CONN_LIFETIME", cfg.MaxConnLifetime.String())
	add("pool_max_conn_idle_time", "DB_MAX_CONN_IDLE_TIME", cfg.MaxConnIdleTime.String())
	add("pool_health_check_period", "DB_HEALTH_CHECK_PERIOD", cfg.HealthCheckPeriod.String())
	add("pool_ping_timeout", "DB_PING_TIMEOUT", cfg.PingTimeout.String())
	if cfg.QueryExecMode != "" {
		add("default_query_exec_mode", "DB_QUERY_EXEC_MODE", cfg.QueryExecMode)
	}
	if cfg.StatementTimeout > 0 {
		// The server reads a bare number as milliseconds.
		add("statement_timeout", "DB_STATEMENT_TIMEOUT", strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10))
	}
	// connect_timeout takes whole seconds, DB_CONNECT_TIMEOUT any duration:
	// it is set on the parsed config instead (see parse), as is the jitter,
	// a tenth of whichever lifetime applies.
	return s, nil
}

// connString is the URL with the merged parameters.
func (s *settings) connString(params []mergedParam) string {
	var b strings.Builder
	b.WriteString(s.raw)
	sep := byte('?')
	if hasQuery(s.raw) {
		sep = '&'
	}
	for _, p := range params {
		b.WriteByte(sep)
		b.WriteString(url.QueryEscape(p.param))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
		sep = '&'
	}
	return b.String()
}

// hasQuery reports whether a URL has a query, where pgconn looks for one:
// after the user info, which ends at the first @ before any /, the first ?
// starts it.
func hasQuery(raw string) bool {
	_, rest, _ := strings.Cut(raw, "://")
	if i := strings.IndexAny(rest, "@/"); i >= 0 && rest[i] == '@' {
		rest = rest[i+1:]
	}
	return strings.Contains(rest, "?")
}

// parse makes the pool configuration: one pgxpool.ParseConfig of the merged
// URL, then what a URL cannot say.
func (s *settings) parse() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(s.connString(s.merged))
	if err != nil {
		return nil, s.blame(err)
	}
	cfg := s.cfg
	if !s.inURL["pool_max_conn_lifetime_jitter"] {
		// Without jitter, connections opened together at start-up expire together.
		pc.MaxConnLifetimeJitter = pc.MaxConnLifetime / 10
	}
	if pc.ConnConfig.ConnectTimeout <= 0 {
		// connect_timeout=0 in the URL means "no timeout" to pgx; a hung
		// connect would then hold an Acquire until its context ends, or
		// pgxpool's two-minute backstop. DB_CONNECT_TIMEOUT applies instead.
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	for _, m := range []struct {
		param, variable string
		value           int32
	}{{"pool_min_conns", "DB_MIN_CONNS", pc.MinConns}, {"pool_min_idle_conns", "DB_MIN_IDLE_CONNS", pc.MinIdleConns}} {
		if m.value > pc.MaxConns {
			variable := m.variable
			if s.inURL[m.param] {
				variable = s.variable
			}
			return nil, &config.VarError{Var: variable, Err: fmt.Errorf("%s %d exceeds pool_max_conns %d (DB_MAX_CONNS, or the URL's)", m.param, m.value, pc.MaxConns)}
		}
	}
	return pc, nil
}

// blame names the variable whose value pgx refused: the URL's, or the DB_*
// variable whose parameter fails on its own.
func (s *settings) blame(err error) error {
	if _, own := pgxpool.ParseConfig(s.raw); own != nil {
		return &config.VarError{Var: s.variable, Err: errors.New(RedactSecrets(parseReason(own), s.raw))}
	}
	for _, p := range s.merged {
		if _, one := pgxpool.ParseConfig(s.connString([]mergedParam{p})); one != nil {
			return &config.VarError{Var: p.variable, Err: fmt.Errorf("%s is not a valid %s: %s", strconv.Quote(p.value), p.param, parseReason(one))}
		}
	}
	return &config.VarError{Var: s.variable, Err: errors.New(RedactSecrets(parseReason(err), s.raw))}
}

// Source says where each Knob's value comes from for cfg's runtime URL: the
// URL's variable (DATABASE_URL, ...), the DB_* variable when it is set in
// environ, or "default". It is ParseConfig's own view of the merge.
func Source(cfg config.DB, environ map[string]string) (map[string]string, error) {
	s, err := settingsOf(cfg)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(Knobs()))
	for _, k := range Knobs() {
		switch {
		case s.inURL[k.Param]:
			out[k.Param] = s.variable
		case k.Variable != "" && environ[k.Variable] != "":
			out[k.Param] = k.Variable
		default:
			out[k.Param] = "default"
		}
	}
	return out, nil
}

// MigrationConnConfig returns the settings of a single connection to the
// migration URL (DIRECT_URL, else DATABASE_URL), parsed by the same rules as
// the pool's: the URL's pool_* parameters are accepted and left out, and
// DB_CONNECT_TIMEOUT applies unless the URL sets connect_timeout.
func MigrationConnConfig(cfg config.DB) (*pgx.ConnConfig, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	raw, err := cfg.MigrationURL()
	if err != nil {
		return nil, fmt.Errorf("database config: %w", err)
	}
	s, err := newSettings(cfg.WithDefaults(), cfg.MigrationVar(), raw)
	if err != nil {
		return nil, err
	}
	pc, err := s.parse()
	if err != nil {
		return nil, err
	}
	return pc.ConnConfig, nil
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// ExecModeName names mode as default_query_exec_mode and DB_QUERY_EXEC_MODE
// do; pgx's String has spaces.
func ExecModeName(mode pgx.QueryExecMode) string { return strings.ReplaceAll(mode.String(), " ", "_") }

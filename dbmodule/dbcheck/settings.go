package dbcheck

import (
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// A Source is where a setting's effective value came from.
type Source string

// The sources of a setting, in order of precedence, as dbmodule.ParseConfig
// applies them: a URL parameter wins over the DB_* variable, which wins over
// the default.
const (
	FromURL     Source = "url"     // a parameter of the runtime URL
	FromEnv     Source = "env"     // a DB_* variable
	FromDefault Source = "default" // neither is set
)

// A Setting is one effective setting of the pool and where it came from.
type Setting struct {
	Name     string `json:"name"`               // as a URL parameter: pool_max_conns, connect_timeout, ...
	Value    string `json:"value"`              // as the pool uses it
	Source   Source `json:"source"`             // url, env or default
	Variable string `json:"variable,omitempty"` // the DB_* variable that can set it, if any
	Origin   string `json:"origin"`             // for people: "DATABASE_URL", "DB_MAX_CONNS", "default (pgx's)", ...
}

// Settings returns the pool's effective settings for the environment
// environ (as config.ParseDB reads it; nil is an empty one), each with where
// it came from: the runtime URL's parameter, the DB_* variable, or the
// default. The values are the ones dbmodule.ParseConfig gives the pool. It
// does no I/O; its errors are ParseDB's and ParseConfig's, naming the
// variable at fault and never a password.
func Settings(environ map[string]string) ([]Setting, error) {
	cfg, err := config.ParseDB(environ)
	if err != nil {
		return nil, err
	}
	settings, _, err := settingsFor(cfg, environ)
	return settings, err
}

// settingsFor returns cfg's settings, with the pool configuration they make.
func settingsFor(cfg config.DB, environ map[string]string) ([]Setting, *pgxpool.Config, error) {
	pc, err := dbmodule.ParseConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	raw, err := cfg.RuntimeURL()
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(raw) // cannot fail: ParseConfig parsed it
	if err != nil {
		return nil, nil, &config.VarError{Var: cfg.RuntimeVar(), Err: errors.New("is not a valid URL")}
	}
	return settingsOf(pc, cfg, environ, u.Query(), cfg.RuntimeVar()), pc, nil
}

// settingsOf describes pc, made by ParseConfig from cfg, whose runtime URL
// (the variable urlVar) has the parameters inURL.
func settingsOf(pc *pgxpool.Config, cfg config.DB, environ map[string]string, inURL url.Values, urlVar string) []Setting {
	cc := pc.ConnConfig
	statementTimeout := "the server's"
	if v, ok := cc.RuntimeParams["statement_timeout"]; ok {
		statementTimeout = v
		if !inURL.Has("statement_timeout") {
			statementTimeout = cfg.StatementTimeout.String() // the variable's, which ParseConfig wrote in milliseconds
		}
	}
	rows := []struct {
		name, variable, value, defaultNote string
	}{
		{"pool_max_conns", "DB_MAX_CONNS", itoa(pc.MaxConns), ""},
		{"pool_min_conns", "DB_MIN_CONNS", itoa(pc.MinConns), ""},
		{"pool_min_idle_conns", "DB_MIN_IDLE_CONNS", itoa(pc.MinIdleConns), ""},
		{"pool_max_conn_lifetime", "DB_MAX_CONN_LIFETIME", pc.MaxConnLifetime.String(), ""},
		{"pool_max_conn_lifetime_jitter", "", pc.MaxConnLifetimeJitter.String(), "10% of pool_max_conn_lifetime"},
		{"pool_max_conn_idle_time", "DB_MAX_CONN_IDLE_TIME", pc.MaxConnIdleTime.String(), ""},
		{"pool_health_check_period", "DB_HEALTH_CHECK_PERIOD", pc.HealthCheckPeriod.String(), ""},
		{"pool_ping_timeout", "DB_PING_TIMEOUT", pc.PingTimeout.String(), ""},
		{"connect_timeout", "DB_CONNECT_TIMEOUT", cc.ConnectTimeout.String(), ""},
		{"default_query_exec_mode", "DB_QUERY_EXEC_MODE", execModeName(cc.DefaultQueryExecMode), "pgx's"},
		{"statement_timeout", "DB_STATEMENT_TIMEOUT", statementTimeout, "the server's"},
	}
	settings := make([]Setting, 0, len(rows))
	for _, r := range rows {
		s := Setting{Name: r.name, Value: r.value, Variable: r.variable}
		switch {
		case r.name == "connect_timeout" && inURL.Has(r.name) && urlMeansNoTimeout(inURL.Get(r.name)):
			// ParseConfig never lets a connect wait forever: DB_CONNECT_TIMEOUT,
			// or its default, replaces "none".
			note := " (connect_timeout=" + inURL.Get(r.name) + " in " + urlVar + " means none, which the module does not allow)"
			s.Source, s.Origin = FromDefault, "default"+note
			if environ[r.variable] != "" {
				s.Source, s.Origin = FromEnv, r.variable+note
			}
		case inURL.Has(r.name):
			s.Source, s.Origin = FromURL, urlVar
		case r.variable != "" && environ[r.variable] != "":
			s.Source, s.Origin = FromEnv, r.variable
		default:
			s.Source, s.Origin = FromDefault, "default"
			if r.defaultNote != "" {
				s.Origin += " (" + r.defaultNote + ")"
			}
		}
		settings = append(settings, s)
	}
	return settings
}

// urlMeansNoTimeout reports a connect_timeout parameter that asks for no
// timeout, which ParseConfig replaces with the default.
func urlMeansNoTimeout(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n <= 0
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// execModeName names mode as DB_QUERY_EXEC_MODE and the URL do; pgx's
// String has spaces.
func execModeName(mode pgx.QueryExecMode) string { return strings.ReplaceAll(mode.String(), " ", "_") }

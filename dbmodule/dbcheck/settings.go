package dbcheck

import (
	"strconv"

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
	sources, err := dbmodule.Source(cfg, environ)
	if err != nil {
		return nil, nil, err
	}
	return settingsOf(pc, cfg, sources), pc, nil
}

// settingsOf describes pc, made by ParseConfig from cfg, with the sources
// ParseConfig reports for each setting.
func settingsOf(pc *pgxpool.Config, cfg config.DB, sources map[string]string) []Setting {
	cc := pc.ConnConfig
	values := map[string]string{
		"pool_max_conns":                itoa(pc.MaxConns),
		"pool_min_conns":                itoa(pc.MinConns),
		"pool_min_idle_conns":           itoa(pc.MinIdleConns),
		"pool_max_conn_lifetime":        pc.MaxConnLifetime.String(),
		"pool_max_conn_lifetime_jitter": pc.MaxConnLifetimeJitter.String(),
		"pool_max_conn_idle_time":       pc.MaxConnIdleTime.String(),
		"pool_health_check_period":      pc.HealthCheckPeriod.String(),
		"pool_ping_timeout":             pc.PingTimeout.String(),
		"connect_timeout":               cc.ConnectTimeout.String(),
		"default_query_exec_mode":       dbmodule.ExecModeName(cc.DefaultQueryExecMode),
		"statement_timeout":             "the server's",
	}
	if v, ok := cc.RuntimeParams["statement_timeout"]; ok {
		values["statement_timeout"] = v
		if sources["statement_timeout"] != cfg.RuntimeVar() {
			values["statement_timeout"] = cfg.StatementTimeout.String() // the variable's, which ParseConfig wrote in milliseconds
		}
	}
	notes := map[string]string{
		"pool_max_conn_lifetime_jitter": "10% of pool_max_conn_lifetime",
		"default_query_exec_mode":       "pgx's",
		"statement_timeout":             "the server's",
	}
	settings := make([]Setting, 0, len(values))
	for _, k := range dbmodule.Knobs() {
		s := Setting{Name: k.Param, Value: values[k.Param], Variable: k.Variable, Origin: sources[k.Param]}
		switch s.Origin {
		case "default":
			s.Source = FromDefault
			if n := notes[k.Param]; n != "" {
				s.Origin += " (" + n + ")"
			}
		case k.Variable:
			s.Source = FromEnv
		default:
			s.Source = FromURL
		}
		settings = append(settings, s)
	}
	return settings
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

package dbcheck_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbcheck"
)

const secret = "S3cret-Pa55word"

// byName indexes settings by name.
func byName(settings []dbcheck.Setting) map[string]dbcheck.Setting {
	m := map[string]dbcheck.Setting{}
	for _, s := range settings {
		m[s.Name] = s
	}
	return m
}

func TestSettingsSayWhereEachValueCameFrom(t *testing.T) {
	t.Parallel()
	const base = "postgres://app:" + secret + "@db:5432/app"
	type want struct {
		value  string
		source dbcheck.Source
		origin string
	}
	for _, tt := range []struct {
		name    string
		environ map[string]string
		want    map[string]want
	}{
		{"defaults", map[string]string{"DATABASE_URL": base}, map[string]want{
			"pool_max_conns":                {"10", dbcheck.FromDefault, "default"},
			"pool_min_conns":                {"0", dbcheck.FromDefault, "default"},
			"pool_max_conn_lifetime":        {"1h0m0s", dbcheck.FromDefault, "default"},
			"pool_max_conn_lifetime_jitter": {"6m0s", dbcheck.FromDefault, "default (10% of pool_max_conn_lifetime)"},
			"pool_max_conn_idle_time":       {"30s", dbcheck.FromDefault, "default"},
			"pool_health_check_period":      {"1m0s", dbcheck.FromDefault, "default"},
			"pool_ping_timeout":             {"1s", dbcheck.FromDefault, "default"},
			"connect_timeout":               {"2s", dbcheck.FromDefault, "default"},
			"default_query_exec_mode":       {"cache_statement", dbcheck.FromDefault, "default (pgx's)"},
			"statement_timeout":             {"the server's", dbcheck.FromDefault, "default (the server's)"},
		}},
		{"variables", map[string]string{
			"DATABASE_URL": base, "DB_MAX_CONNS": "20", "DB_MIN_IDLE_CONNS": "2", "DB_MAX_CONN_LIFETIME": "2h", "DB_CONNECT_TIMEOUT": "500ms",
			"DB_QUERY_EXEC_MODE": "exec", "DB_STATEMENT_TIMEOUT": "5s", "DB_PING_TIMEOUT": "", // empty: unset
		}, map[string]want{
			"pool_max_conns":                {"20", dbcheck.FromEnv, "DB_MAX_CONNS"},
			"pool_min_idle_conns":           {"2", dbcheck.FromEnv, "DB_MIN_IDLE_CONNS"},
			"pool_max_conn_lifetime":        {"2h0m0s", dbcheck.FromEnv, "DB_MAX_CONN_LIFETIME"},
			"pool_max_conn_lifetime_jitter": {"12m0s", dbcheck.FromDefault, "default (10% of pool_max_conn_lifetime)"},
			"pool_ping_timeout":             {"1s", dbcheck.FromDefault, "default"},
			"connect_timeout":               {"500ms", dbcheck.FromEnv, "DB_CONNECT_TIMEOUT"},
			"default_query_exec_mode":       {"exec", dbcheck.FromEnv, "DB_QUERY_EXEC_MODE"},
			"statement_timeout":             {"5s", dbcheck.FromEnv, "DB_STATEMENT_TIMEOUT"},
		}},
		{"URL parameters win", map[string]string{
			"DATABASE_URL": base + "?pool_max_conns=7&connect_timeout=9&default_query_exec_mode=simple_protocol&statement_timeout=3000" +
				"&pool_max_conn_lifetime_jitter=1m",
			"DB_MAX_CONNS": "20", "DB_CONNECT_TIMEOUT": "1s", "DB_QUERY_EXEC_MODE": "exec", "DB_STATEMENT_TIMEOUT": "5s", "DB_MIN_CONNS": "1",
		}, map[string]want{
			"pool_max_conns":                {"7", dbcheck.FromURL, "DATABASE_URL"},
			"pool_min_conns":                {"1", dbcheck.FromEnv, "DB_MIN_CONNS"},
			"pool_max_conn_lifetime_jitter": {"1m0s", dbcheck.FromURL, "DATABASE_URL"},
			"connect_timeout":               {"9s", dbcheck.FromURL, "DATABASE_URL"},
			"default_query_exec_mode":       {"simple_protocol", dbcheck.FromURL, "DATABASE_URL"},
			"statement_timeout":             {"3000", dbcheck.FromURL, "DATABASE_URL"},
		}},
		{"DIRECT_URL alone", map[string]string{"DIRECT_URL": base + "?pool_max_conns=3"}, map[string]want{
			"pool_max_conns": {"3", dbcheck.FromURL, "DIRECT_URL"},
		}},
		{"connect_timeout=0 gives way to DB_CONNECT_TIMEOUT", map[string]string{"DATABASE_URL": base + "?connect_timeout=0", "DB_CONNECT_TIMEOUT": "3s"}, map[string]want{
			"connect_timeout": {"3s", dbcheck.FromEnv, "DB_CONNECT_TIMEOUT"},
		}},
		{"connect_timeout=0 gives way to the default", map[string]string{"DATABASE_URL": base + "?connect_timeout=0"}, map[string]want{
			"connect_timeout": {"2s", dbcheck.FromDefault, "default"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			settings, err := dbcheck.Settings(tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if len(settings) != 11 {
				t.Errorf("%d settings, want 11", len(settings))
			}
			got := byName(settings)
			for name, w := range tt.want {
				s := got[name]
				if s.Value != w.value || s.Source != w.source || s.Origin != w.origin {
					t.Errorf("%s = %q from %s (%s), want %q from %s (%s)", name, s.Value, s.Source, s.Origin, w.value, w.source, w.origin)
				}
			}
			for _, s := range settings {
				if strings.Contains(s.Value+s.Origin, secret) {
					t.Errorf("%s shows the password", s.Name)
				}
			}
		})
	}
}

// Every pool parameter pgxpool reads is reported as the URL's when the URL
// sets it.
func TestSettingsCoverEveryPoolParameter(t *testing.T) {
	t.Parallel()
	url := "postgres://db/app?pool_max_conns=9&pool_min_conns=1&pool_min_idle_conns=1&pool_max_conn_lifetime=2h&pool_max_conn_idle_time=1m" +
		"&pool_health_check_period=10s&pool_max_conn_lifetime_jitter=5m&pool_ping_timeout=2s"
	settings, err := dbcheck.Settings(map[string]string{"DATABASE_URL": url})
	if err != nil {
		t.Fatal(err)
	}
	got := byName(settings)
	for _, name := range strings.Split("pool_max_conns pool_min_conns pool_min_idle_conns pool_max_conn_lifetime pool_max_conn_idle_time "+
		"pool_health_check_period pool_max_conn_lifetime_jitter pool_ping_timeout", " ") {
		if s, ok := got[name]; !ok || s.Source != dbcheck.FromURL {
			t.Errorf("%s = %+v, want it from the URL", name, s)
		}
	}
}

func TestSettingsErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for variable, environ := range map[string]map[string]string{
		"DB_MAX_CONNS": {"DATABASE_URL": "postgres://app:" + secret + "@db/app", "DB_MAX_CONNS": "many"},
		"DATABASE_URL": {"DATABASE_URL": "postgres://app:" + secret + "@db/app?pool_max_conn=5"}, // a typo
	} {
		_, err := dbcheck.Settings(environ)
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != variable || strings.Contains(err.Error(), secret) {
			t.Errorf("Settings(%s) = %v, want an error naming %s without the password", variable, err, variable)
		}
	}
}

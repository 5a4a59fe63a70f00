package reliability_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/store"
)

const badInputPassword = "Tr0ub4dor-and-3"

// badEnvironment is one environment with one fault, and the variable that
// its error must name.
type badEnvironment struct {
	name, variable string
	environ        map[string]string
}

// badEnvironments makes every kind of bad value for every variable the
// module reads; each environment is valid but for its one fault.
func badEnvironments() []badEnvironment {
	good := "postgres://app:" + badInputPassword + "@db.internal:5432/app?sslmode=disable"
	with := func(kv ...string) map[string]string {
		m := map[string]string{"DATABASE_URL": good, "DIRECT_URL": good}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	var envs []badEnvironment
	add := func(name, variable string, environ map[string]string) {
		envs = append(envs, badEnvironment{name, variable, environ})
	}

	add("both URLs empty", "DATABASE_URL", map[string]string{"DATABASE_URL": "", "DIRECT_URL": ""})
	for _, v := range []string{"DB_MAX_CONNS", "DB_MIN_CONNS", "DB_MIN_IDLE_CONNS"} {
		for kind, value := range map[string]string{"garbage": "lots", "negative": "-3", "overflow": "2147483648", "fraction": "2.5"} {
			add(kind, v, with(v, value))
		}
	}
	for _, v := range []string{"DB_MAX_CONN_IDLE_TIME", "DB_MAX_CONN_LIFETIME", "DB_CONNECT_TIMEOUT", "DB_HEALTH_CHECK_PERIOD",
		"DB_PING_TIMEOUT", "DB_SLOW_QUERY_THRESHOLD", "DB_STATEMENT_TIMEOUT"} {
		for kind, value := range map[string]string{"garbage": "soon", "negative": "-5s", "unit-less": "30", "overflow": "99999999999h"} {
			add(kind, v, with(v, value))
		}
	}
	add("unknown exec mode", "DB_QUERY_EXEC_MODE", with("DB_QUERY_EXEC_MODE", "prepared"))
	add("exec mode in capitals", "DB_QUERY_EXEC_MODE", with("DB_QUERY_EXEC_MODE", "EXEC"))
	add("not a boolean", "DB_LOG_QUERY_ARGS", with("DB_LOG_QUERY_ARGS", "yes"))
	add("not a boolean", "DB_MIGRATE_ON_START", with("DB_MIGRATE_ON_START", "enabled"))

	pw := badInputPassword
	for kind, url := range map[string]string{
		"port out of range":       "postgres://app:" + pw + "@db:70000/app",
		"port not a number":       "postgres://app:" + pw + "@db:pg/app",
		"bad port of a fallback":  "postgres://app:" + pw + "@db1:5432,db2:x/app",
		"space in the host":       "postgres://app:" + pw + "@db host/app",
		"bad escape":              "postgres://app:" + pw + "%G1@db/app",
		"unescaped slash":         "postgres://app:" + pw + "/x@db/app",
		"wrong scheme":            "mysql://app:" + pw + "@db/app",
		"no scheme":               "app:" + pw + "@db/app",
		"control character":       "postgres://app:" + pw + "@db/app\x7f",
		"surrounding white space": " postgres://app:" + pw + "@db/app ",
		"unknown pool parameter":  "postgres://app:" + pw + "@db/app?pool_max_connz=5",
		"bad sslmode":             "postgres://app:" + pw + "@db/app?sslmode=sometimes",
		"bad pool size":           "postgres://app:" + pw + "@db/app?pool_max_conns=0",
		"unit-less pool duration": "postgres://app:" + pw + "@db/app?pool_max_conn_lifetime=10",
		"bad connect timeout":     "postgres://app:" + pw + "@db/app?connect_timeout=soon",
		"unknown exec mode":       "postgres://app:" + pw + "@db/app?default_query_exec_mode=fast",
		"password in the query":   "postgres://app@db/app?password=" + pw + "&sslmode=bogus",
	} {
		add(kind, "DATABASE_URL", with("DATABASE_URL", url))
		add(kind, "DIRECT_URL", with("DIRECT_URL", url))
	}
	return envs
}

// construct builds everything the module builds from an environment, with
// the real constructors, and returns the first error.
func construct(environ map[string]string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	cfg, err := config.ParseDB(environ)
	if err != nil {
		return err
	}
	if _, err := dbmodule.ParseConfig(cfg, dbmodule.WithLogger(zap.NewNop())); err != nil {
		return err
	}
	if _, err := migrate.ParseConfig(environ); err != nil {
		return err
	}
	m, err := migrate.New(cfg, store.Migrations(), nil)
	if err != nil {
		return err
	}
	return m.Close()
}

func TestBadEnvironments(t *testing.T) {
	envs := badEnvironments()
	if len(envs) < 40 {
		t.Fatalf("only %d bad environments", len(envs))
	}
	for _, env := range envs {
		t.Run(env.variable+"/"+env.name, func(t *testing.T) {
			err := construct(env.environ)
			if err == nil {
				t.Fatalf("accepted %s=%q", env.variable, env.environ[env.variable])
			}
			msg := err.Error()
			if strings.HasPrefix(msg, "panic:") {
				t.Fatalf("panicked: %s", msg)
			}
			var ve *config.VarError
			if !strings.Contains(msg, env.variable) || (!errors.As(err, &ve) && !errors.Is(err, config.ErrNoDatabaseURL)) {
				t.Errorf("error does not name %s: %s", env.variable, msg)
			}
			if strings.Contains(msg, badInputPassword) {
				t.Errorf("error shows the password: %s", msg)
			}
		})
	}
	t.Logf("%d bad environments, each refused with an error naming its variable and no password", len(envs))
}

// Empty tuning variables are not faults: they take their defaults.
func TestEmptyVariablesTakeDefaults(t *testing.T) {
	environ := map[string]string{"DATABASE_URL": "postgres://app:pw@db/app"}
	for _, v := range []string{"DIRECT_URL", "DB_MAX_CONNS", "DB_MIN_CONNS", "DB_MIN_IDLE_CONNS", "DB_MAX_CONN_IDLE_TIME",
		"DB_MAX_CONN_LIFETIME", "DB_CONNECT_TIMEOUT", "DB_HEALTH_CHECK_PERIOD", "DB_PING_TIMEOUT", "DB_QUERY_EXEC_MODE",
		"DB_STATEMENT_TIMEOUT", "DB_SLOW_QUERY_THRESHOLD", "DB_LOG_QUERY_ARGS", "DB_MIGRATE_ON_START"} {
		environ[v] = ""
	}
	if err := construct(environ); err != nil {
		t.Fatal(err)
	}
}

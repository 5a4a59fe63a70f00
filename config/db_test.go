package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

const (
	runtimeURL = "postgres://app:runtime-s3cret@pooler:6432/app"
	directURL  = "postgres://app:direct-s3cret@primary:5432/app"
	readURL    = "postgres://app:read-s3cret@standby1:5432,standby2:5432/app?target_session_attrs=prefer-standby"
)

func TestURLResolution(t *testing.T) {
	tests := []struct {
		name                     string
		environ                  map[string]string
		wantRuntime, wantMigrate string
		wantRuntimeVar, wantVar  string
	}{
		{
			name:        "both set: runtime through the pooler, migrations direct",
			environ:     map[string]string{"DATABASE_URL": runtimeURL, "DIRECT_URL": directURL},
			wantRuntime: runtimeURL, wantRuntimeVar: "DATABASE_URL",
			wantMigrate: directURL, wantVar: "DIRECT_URL",
		},
		{
			name:        "only DATABASE_URL: migrations fall back to it",
			environ:     map[string]string{"DATABASE_URL": runtimeURL},
			wantRuntime: runtimeURL, wantRuntimeVar: "DATABASE_URL",
			wantMigrate: runtimeURL, wantVar: "DATABASE_URL",
		},
		{
			name:        "only DIRECT_URL: runtime falls back to it",
			environ:     map[string]string{"DIRECT_URL": directURL},
			wantRuntime: directURL, wantRuntimeVar: "DIRECT_URL",
			wantMigrate: directURL, wantVar: "DIRECT_URL",
		},
		{
			name:        "empty DATABASE_URL counts as unset",
			environ:     map[string]string{"DATABASE_URL": "", "DIRECT_URL": directURL},
			wantRuntime: directURL, wantRuntimeVar: "DIRECT_URL",
			wantMigrate: directURL, wantVar: "DIRECT_URL",
		},
		{
			name:        "empty DIRECT_URL counts as unset",
			environ:     map[string]string{"DATABASE_URL": runtimeURL, "DIRECT_URL": ""},
			wantRuntime: runtimeURL, wantRuntimeVar: "DATABASE_URL",
			wantMigrate: runtimeURL, wantVar: "DATABASE_URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := config.ParseDB(tt.environ)
			if err != nil {
				t.Fatalf("ParseDB: %v", err)
			}
			got, err := db.RuntimeURL()
			if err != nil || got != tt.wantRuntime {
				t.Errorf("RuntimeURL() = %q, %v; want %q", got, err, tt.wantRuntime)
			}
			if v := db.RuntimeVar(); v != tt.wantRuntimeVar {
				t.Errorf("RuntimeVar() = %q, want %q", v, tt.wantRuntimeVar)
			}
			got, err = db.MigrationURL()
			if err != nil || got != tt.wantMigrate {
				t.Errorf("MigrationURL() = %q, %v; want %q", got, err, tt.wantMigrate)
			}
			if v := db.MigrationVar(); v != tt.wantVar {
				t.Errorf("MigrationVar() = %q, want %q", v, tt.wantVar)
			}
		})
	}
}

func TestNeitherURLSetNamesBothVariables(t *testing.T) {
	for name, environ := range map[string]map[string]string{
		"nil map":     nil,
		"empty map":   {},
		"both empty":  {"DATABASE_URL": "", "DIRECT_URL": ""},
		"only tuning": {"DB_MAX_CONNS": "5"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.ParseDB(environ)
			if !errors.Is(err, config.ErrNoDatabaseURL) {
				t.Fatalf("ParseDB error = %v, want ErrNoDatabaseURL", err)
			}
			for _, v := range []string{"DATABASE_URL", "DIRECT_URL"} {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
	var db config.DB
	if _, err := db.RuntimeURL(); !errors.Is(err, config.ErrNoDatabaseURL) {
		t.Errorf("DB{}.RuntimeURL() error = %v, want ErrNoDatabaseURL", err)
	}
	if _, err := db.MigrationURL(); !errors.Is(err, config.ErrNoDatabaseURL) {
		t.Errorf("DB{}.MigrationURL() error = %v, want ErrNoDatabaseURL", err)
	}
}

func TestParseDBDoesNotReadProcessEnvironment(t *testing.T) {
	t.Setenv("DATABASE_URL", runtimeURL)
	t.Setenv("DB_MAX_CONNS", "3")
	db, err := config.ParseDB(map[string]string{"DIRECT_URL": directURL})
	if err != nil {
		t.Fatal(err)
	}
	if db.URL != "" || db.MaxConns != config.DefaultMaxConns {
		t.Errorf("ParseDB read the process environment: URL=%q MaxConns=%d", db.URL, db.MaxConns)
	}
}

func TestLoadDBReadsProcessEnvironment(t *testing.T) {
	t.Setenv("DATABASE_URL", runtimeURL)
	t.Setenv("DB_MAX_CONNS", "3")
	db, err := config.LoadDB()
	if err != nil {
		t.Fatal(err)
	}
	if db.URL != runtimeURL || db.MaxConns != 3 {
		t.Errorf("LoadDB() = URL %q, MaxConns %d; want the process environment's", db.URL, db.MaxConns)
	}
}

func TestDefaults(t *testing.T) {
	want := config.DB{
		URL:                runtimeURL,
		MaxConns:           10,
		MinConns:           0,
		MaxConnIdleTime:    30 * time.Second,
		MaxConnLifetime:    time.Hour,
		ConnectTimeout:     2 * time.Second,
		HealthCheckPeriod:  time.Minute,
		PingTimeout:        time.Second,
		SlowQueryThreshold: 500 * time.Millisecond,
		ReplicaMaxLag:      5 * time.Second,
	}
	parsed, err := config.ParseDB(map[string]string{"DATABASE_URL": runtimeURL})
	if err != nil {
		t.Fatal(err)
	}
	if parsed != want {
		t.Errorf("ParseDB defaults:\n got %+v\nwant %+v", parsed, want)
	}
	// Empty variables take defaults too.
	empty := map[string]string{"DATABASE_URL": runtimeURL}
	for _, v := range []string{"DB_MAX_CONNS", "DB_MIN_CONNS", "DB_MAX_CONN_IDLE_TIME", "DB_CONNECT_TIMEOUT", "DB_LOG_QUERY_ARGS"} {
		empty[v] = ""
	}
	if parsed, err := config.ParseDB(empty); err != nil || parsed != want {
		t.Errorf("ParseDB with empty variables = %+v, %v; want defaults", parsed, err)
	}
	// A hand-built DB with only a URL is complete: zero means default.
	if got := (config.DB{URL: runtimeURL}).WithDefaults(); got != want {
		t.Errorf("DB{URL}.WithDefaults():\n got %+v\nwant %+v", got, want)
	}
	if err := (config.DB{URL: runtimeURL}).Validate(); err != nil {
		t.Errorf("DB{URL}.Validate() = %v", err)
	}
}

func TestParseDBReadsEveryVariable(t *testing.T) {
	db, err := config.ParseDB(map[string]string{
		"DATABASE_URL":            runtimeURL,
		"DIRECT_URL":              directURL,
		"DB_MAX_CONNS":            "25",
		"DB_MIN_CONNS":            "2",
		"DB_MIN_IDLE_CONNS":       "3",
		"DB_MAX_CONN_IDLE_TIME":   "45s",
		"DB_MAX_CONN_LIFETIME":    "2h",
		"DB_CONNECT_TIMEOUT":      "750ms",
		"DB_HEALTH_CHECK_PERIOD":  "15s",
		"DB_PING_TIMEOUT":         "250ms",
		"DB_QUERY_EXEC_MODE":      "exec",
		"DB_STATEMENT_TIMEOUT":    "5s",
		"DB_SLOW_QUERY_THRESHOLD": "1s",
		"DB_LOG_QUERY_ARGS":       "true",
		"DATABASE_READ_URL":       "postgres://app@replica:5432/app",
		"DB_REPLICA_MAX_LAG":      "3s",
		"DB_LEAK_THRESHOLD":       "30s",
		"DB_ACQUIRE_TIMEOUT":      "250ms",
		"DB_PASSWORD_FILE":        "/run/secrets/db",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config.DB{
		URL: runtimeURL, DirectURL: directURL,
		MaxConns: 25, MinConns: 2, MinIdleConns: 3,
		MaxConnIdleTime: 45 * time.Second, MaxConnLifetime: 2 * time.Hour, ConnectTimeout: 750 * time.Millisecond,
		HealthCheckPeriod: 15 * time.Second, PingTimeout: 250 * time.Millisecond,
		QueryExecMode: "exec", StatementTimeout: 5 * time.Second,
		SlowQueryThreshold: time.Second, LogQueryArgs: true,
		ReadURL: "postgres://app@replica:5432/app", ReplicaMaxLag: 3 * time.Second,
		LeakThreshold: 30 * time.Second, AcquireTimeout: 250 * time.Millisecond, PasswordFile: "/run/secrets/db",
	}
	if db != want {
		t.Errorf("ParseDB:\n got %+v\nwant %+v", db, want)
	}
}

// password appears in every bad URL below; no error may contain it.
const password = "Pa55-w0rd-XYZ"

// BadDBEnvironments is every kind of bad value, with the variable its error
// must name. Each environment is complete but for the one fault. The
// environment's own faults are config's to find; what the URL says, and
// what the DB_* values mean once merged into it, pgx's, through dbmodule.
func badDBEnvironments() []struct {
	name, variable, value string
} {
	u := func(s string) string { return strings.ReplaceAll(s, "PW", password) }
	return []struct{ name, variable, value string }{
		{"wrong scheme", "DATABASE_URL", u("mysql://app:PW@db:3306/app")},
		{"http scheme", "DATABASE_URL", u("http://app:PW@db/app")},
		{"upper-case scheme", "DATABASE_URL", u("POSTGRES://app:PW@db/app")},
		{"no scheme", "DATABASE_URL", u("app:PW@db:5432/app")},
		{"key=value DSN", "DATABASE_URL", u("host=db user=app password=PW")},
		{"port out of range", "DATABASE_URL", u("postgres://app:PW@db:99999/app")},
		{"port zero", "DATABASE_URL", u("postgres://app:PW@db:0/app")},
		{"port not a number", "DATABASE_URL", u("postgres://app:PW@db:pg/app")},
		{"bad port of second host", "DATABASE_URL", u("postgres://app:PW@db1:5432,db2:x/app")},
		{"bad percent escape", "DATABASE_URL", u("postgres://app:PW%zz@db/app")},
		{"slash in password", "DATABASE_URL", u("postgres://app:PW/x@db/app")},
		{"at sign in password", "DATABASE_URL", u("postgres://app:P@W@127.0.0.1:5432/app")},
		{"at sign in password and in the query", "DATABASE_URL", u("postgres://app:P@W@db/app?application_name=x@y")},
		{"digits, then a slash, in password", "DATABASE_URL", u("postgres://app:2024/PW@db/app")},
		{"space in host", "DATABASE_URL", u("postgres://app:PW@d b/app")},
		{"leading space", "DATABASE_URL", u(" postgres://app:PW@db/app")},
		{"trailing newline", "DATABASE_URL", u("postgres://app:PW@db/app\n")},
		{"control character", "DATABASE_URL", u("postgres://app:PW@db/a\x01pp")},
		{"semicolon in query", "DATABASE_URL", u("postgres://app:PW@db/app?sslmode=disable;x=1")},
		{"bad direct URL", "DIRECT_URL", u("postgresql://app:PW@db:70000/app")},
		{"direct URL wrong scheme", "DIRECT_URL", u("jdbc:postgresql://db/app?password=PW")},
		{"bad read URL", "DATABASE_READ_URL", u("postgres://app:PW@standby1:5432,standby2:x/app")},
		{"replica lag zero", "DB_REPLICA_MAX_LAG", "0s"},
		{"replica lag negative", "DB_REPLICA_MAX_LAG", "-1s"},
		{"max conns not a number", "DB_MAX_CONNS", "ten"},
		{"max conns negative", "DB_MAX_CONNS", "-1"},
		{"max conns zero", "DB_MAX_CONNS", "0"},
		{"max conns fraction", "DB_MAX_CONNS", "1.5"},
		{"max conns overflow", "DB_MAX_CONNS", "99999999999"},
		{"max conns hex", "DB_MAX_CONNS", "0x10"},
		{"max conns padded", "DB_MAX_CONNS", " 5"},
		{"min conns negative", "DB_MIN_CONNS", "-1"},
		{"min conns above max", "DB_MIN_CONNS", "11"},
		{"min conns garbage", "DB_MIN_CONNS", "some"},
		{"min idle negative", "DB_MIN_IDLE_CONNS", "-2"},
		{"min idle above max", "DB_MIN_IDLE_CONNS", "20"},
		{"idle time without unit", "DB_MAX_CONN_IDLE_TIME", "30"},
		{"idle time negative", "DB_MAX_CONN_IDLE_TIME", "-5s"},
		{"idle time zero", "DB_MAX_CONN_IDLE_TIME", "0"},
		{"lifetime in words", "DB_MAX_CONN_LIFETIME", "1 hour"},
		{"lifetime overflow", "DB_MAX_CONN_LIFETIME", "9999999999h"},
		{"lifetime negative", "DB_MAX_CONN_LIFETIME", "-1h"},
		{"connect timeout without unit", "DB_CONNECT_TIMEOUT", "2"},
		{"connect timeout zero", "DB_CONNECT_TIMEOUT", "0s"},
		{"connect timeout negative", "DB_CONNECT_TIMEOUT", "-1s"},
		{"health check period garbage", "DB_HEALTH_CHECK_PERIOD", "1minute"},
		{"ping timeout negative", "DB_PING_TIMEOUT", "-1ms"},
		{"slow threshold without unit", "DB_SLOW_QUERY_THRESHOLD", "500"},
		{"slow threshold zero", "DB_SLOW_QUERY_THRESHOLD", "0ms"},
		{"statement timeout negative", "DB_STATEMENT_TIMEOUT", "-1s"},
		{"statement timeout below 1ms", "DB_STATEMENT_TIMEOUT", "500us"},
		{"statement timeout without unit", "DB_STATEMENT_TIMEOUT", "5"},
		{"leak threshold negative", "DB_LEAK_THRESHOLD", "-1s"},
		{"leak threshold without unit", "DB_LEAK_THRESHOLD", "30"},
		{"acquire timeout negative", "DB_ACQUIRE_TIMEOUT", "-100ms"},
		{"acquire timeout without unit", "DB_ACQUIRE_TIMEOUT", "5"},
		{"unknown exec mode", "DB_QUERY_EXEC_MODE", "prepared"},
		{"exec mode upper case", "DB_QUERY_EXEC_MODE", "EXEC"},
		{"exec mode with a space", "DB_QUERY_EXEC_MODE", "cache statement"},
		{"log args not a boolean", "DB_LOG_QUERY_ARGS", "yes please"},
	}
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, tt := range badDBEnvironments() {
		t.Run(tt.name, func(t *testing.T) {
			environ := map[string]string{"DATABASE_URL": "postgres://app:" + password + "@db/app", tt.variable: tt.value}
			db, err := config.ParseDB(environ)
			if err == nil {
				_, err = dbmodule.ParseConfig(db)
			}
			if err == nil {
				_, err = dbmodule.MigrationConnConfig(db)
			}
			if err == nil {
				t.Fatalf("%s=%q: ParseDB, ParseConfig and MigrationConnConfig succeeded", tt.variable, tt.value)
			}
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.variable {
				t.Errorf("%s=%q: error %q is not a VarError naming %s", tt.variable, tt.value, err, tt.variable)
			}
			if !strings.HasPrefix(err.Error(), "database config: "+tt.variable+": ") && !strings.HasPrefix(err.Error(), tt.variable+": ") {
				t.Errorf("error %q does not start with the variable's name", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestEveryBadVariableIsReported(t *testing.T) {
	_, err := config.ParseDB(map[string]string{
		"DATABASE_URL": "postgres://db/app", "DB_MAX_CONNS": "x", "DB_CONNECT_TIMEOUT": "3", "DB_LOG_QUERY_ARGS": "maybe",
	})
	for _, v := range []string{"DB_MAX_CONNS", "DB_CONNECT_TIMEOUT", "DB_LOG_QUERY_ARGS"} {
		if err == nil || !strings.Contains(err.Error(), v+": ") {
			t.Errorf("error %v does not report %s", err, v)
		}
	}
}

func TestValidateHandBuiltConfig(t *testing.T) {
	for _, tt := range []struct {
		db       config.DB
		variable string
	}{
		{config.DB{URL: runtimeURL, MaxConns: -3}, "DB_MAX_CONNS"},
		{config.DB{URL: runtimeURL, MinConns: 11}, "DB_MIN_CONNS"},
		{config.DB{URL: runtimeURL, MaxConns: 4, MinIdleConns: 5}, "DB_MIN_IDLE_CONNS"},
		{config.DB{URL: runtimeURL, ConnectTimeout: -time.Second}, "DB_CONNECT_TIMEOUT"},
		{config.DB{URL: runtimeURL, QueryExecMode: "fast"}, "DB_QUERY_EXEC_MODE"},
		{config.DB{URL: "postgres://u:" + password + "@h:1234567/db"}, "DATABASE_URL"},
		{config.DB{DirectURL: "mysql://u:" + password + "@h/db"}, "DIRECT_URL"},
		{config.DB{URL: runtimeURL, ReadURL: "postgres://u:" + password + "@h:0/db"}, "DATABASE_READ_URL"},
		{config.DB{URL: runtimeURL, ReplicaMaxLag: -time.Second}, "DB_REPLICA_MAX_LAG"},
	} {
		err := tt.db.Validate()
		if err == nil {
			_, err = dbmodule.ParseConfig(tt.db)
		}
		if err == nil {
			_, err = dbmodule.MigrationConnConfig(tt.db)
		}
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != tt.variable {
			t.Errorf("%v.Validate() = %v, want a VarError naming %s", tt.db, err, tt.variable)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("error %q contains the password", err)
		}
	}
}

func TestPrintingDBHidesPasswords(t *testing.T) {
	db := config.DB{URL: "postgres://app:" + password + "@db/app", DirectURL: "postgres://db/app?password=" + password,
		ReadURL: "postgres://app:" + password + "@standby/app"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, db)
		if strings.Contains(out, password) {
			t.Errorf("Sprintf(%q) = %s: shows the password", format, out)
		}
		if !strings.Contains(out, "postgres://xxxxx@db") {
			t.Errorf("Sprintf(%q) = %s: want the redacted URL", format, out)
		}
	}
}

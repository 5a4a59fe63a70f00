package dbmodule_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

const secret = "N0t-For-Logs-42"

var secretURL = "postgres://app:" + secret + "@db.internal:5433/shop"

func TestParseConfigDefaults(t *testing.T) {
	pc, err := dbmodule.ParseConfig(config.DB{URL: secretURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"MaxConns", pc.MaxConns, int32(10)},
		{"MinConns", pc.MinConns, int32(0)},
		{"MinIdleConns", pc.MinIdleConns, int32(0)},
		{"MaxConnIdleTime", pc.MaxConnIdleTime, 30 * time.Second},
		{"MaxConnLifetime", pc.MaxConnLifetime, time.Hour},
		{"MaxConnLifetimeJitter", pc.MaxConnLifetimeJitter, 6 * time.Minute},
		{"HealthCheckPeriod", pc.HealthCheckPeriod, time.Minute},
		{"PingTimeout", pc.PingTimeout, time.Second},
		{"ConnectTimeout", pc.ConnConfig.ConnectTimeout, 2 * time.Second},
		{"DefaultQueryExecMode", pc.ConnConfig.DefaultQueryExecMode, pgx.QueryExecModeCacheStatement},
		{"Host", pc.ConnConfig.Host, "db.internal"},
		{"Port", pc.ConnConfig.Port, uint16(5433)},
		{"Database", pc.ConnConfig.Database, "shop"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, ok := pc.ConnConfig.RuntimeParams["statement_timeout"]; ok {
		t.Error("statement_timeout set although DB_STATEMENT_TIMEOUT is not")
	}
}

func TestParseConfigAppliesSettings(t *testing.T) {
	pc, err := dbmodule.ParseConfig(config.DB{
		URL: secretURL, MaxConns: 32, MinConns: 2, MinIdleConns: 4,
		MaxConnIdleTime: time.Minute, MaxConnLifetime: 10 * time.Minute, ConnectTimeout: 3 * time.Second,
		HealthCheckPeriod: 5 * time.Second, PingTimeout: 200 * time.Millisecond,
		QueryExecMode: "exec", StatementTimeout: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"MaxConns", pc.MaxConns, int32(32)},
		{"MinConns", pc.MinConns, int32(2)},
		{"MinIdleConns", pc.MinIdleConns, int32(4)},
		{"MaxConnIdleTime", pc.MaxConnIdleTime, time.Minute},
		{"MaxConnLifetime", pc.MaxConnLifetime, 10 * time.Minute},
		{"MaxConnLifetimeJitter", pc.MaxConnLifetimeJitter, time.Minute},
		{"HealthCheckPeriod", pc.HealthCheckPeriod, 5 * time.Second},
		{"PingTimeout", pc.PingTimeout, 200 * time.Millisecond},
		{"ConnectTimeout", pc.ConnConfig.ConnectTimeout, 3 * time.Second},
		{"DefaultQueryExecMode", pc.ConnConfig.DefaultQueryExecMode, pgx.QueryExecModeExec},
		{"statement_timeout", pc.ConnConfig.RuntimeParams["statement_timeout"], "1500"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestURLParametersWinOverVariables(t *testing.T) {
	url := secretURL + "?pool_max_conns=3&pool_max_conn_idle_time=2m&connect_timeout=7&default_query_exec_mode=simple_protocol" +
		"&statement_timeout=900&pool_max_conn_lifetime_jitter=0s"
	pc, err := dbmodule.ParseConfig(config.DB{
		URL: url, MaxConns: 20, MaxConnIdleTime: time.Hour, ConnectTimeout: time.Second,
		QueryExecMode: "exec", StatementTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 3 || pc.MaxConnIdleTime != 2*time.Minute || pc.ConnConfig.ConnectTimeout != 7*time.Second ||
		pc.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeSimpleProtocol ||
		pc.ConnConfig.RuntimeParams["statement_timeout"] != "900" || pc.MaxConnLifetimeJitter != 0 {
		t.Errorf("URL parameters lost: MaxConns=%d idle=%s connect=%s mode=%v statement_timeout=%q jitter=%s",
			pc.MaxConns, pc.MaxConnIdleTime, pc.ConnConfig.ConnectTimeout, pc.ConnConfig.DefaultQueryExecMode,
			pc.ConnConfig.RuntimeParams["statement_timeout"], pc.MaxConnLifetimeJitter)
	}
}

func TestParseConfigErrorsNameTheVariable(t *testing.T) {
	for _, tt := range []struct {
		name     string
		db       config.DB
		variable string
	}{
		{"unknown pool parameter", config.DB{URL: secretURL + "?pool_max_connz=5"}, "DATABASE_URL"},
		{"bad pool parameter value", config.DB{URL: secretURL + "?pool_max_conns=lots"}, "DATABASE_URL"},
		{"unit-less pool duration", config.DB{URL: secretURL + "?pool_max_conn_lifetime=5"}, "DATABASE_URL"},
		{"bad sslmode", config.DB{URL: secretURL + "?sslmode=sometimes"}, "DATABASE_URL"},
		{"bad connect_timeout", config.DB{URL: secretURL + "?connect_timeout=soon"}, "DATABASE_URL"},
		{"bad exec mode parameter", config.DB{URL: secretURL + "?default_query_exec_mode=fast"}, "DATABASE_URL"},
		{"min from the environment above the URL's max", config.DB{URL: secretURL + "?pool_max_conns=2", MinConns: 5}, "DB_MIN_CONNS"},
		{"min above max, both from the URL", config.DB{URL: secretURL + "?pool_max_conns=2&pool_min_conns=5"}, "DATABASE_URL"},
		{"fallback URL is named", config.DB{DirectURL: secretURL + "?sslmode=sometimes"}, "DIRECT_URL"},
		{"config errors come first", config.DB{URL: secretURL, MaxConns: -1}, "DB_MAX_CONNS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dbmodule.ParseConfig(tt.db)
			var ve *config.VarError
			if !errors.As(err, &ve) || ve.Var != tt.variable {
				t.Fatalf("error %v is not a VarError naming %s", err, tt.variable)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

type countingTracer struct{ queries int }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries++
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestTracers(t *testing.T) {
	cfg := config.DB{URL: secretURL}
	// Every pool has the Tracer, for its connect backoff and its reset on
	// connection loss; it logs only to a logger that can.
	if pc, _ := dbmodule.ParseConfig(cfg, dbmodule.WithLogger(zap.NewNop())); pc.ConnConfig.Tracer.(*dbmodule.Tracer).Logger != nil {
		t.Errorf("a logger that never logs is kept: %#v", pc.ConnConfig.Tracer)
	}
	pc, _ := dbmodule.ParseConfig(cfg, dbmodule.WithLogger(zaptest.NewLogger(t)))
	if tr, ok := pc.ConnConfig.Tracer.(*dbmodule.Tracer); !ok || tr.SlowQueryThreshold != 500*time.Millisecond || tr.LogArgs {
		t.Errorf("tracer = %#v, want a Tracer with the defaults", pc.ConnConfig.Tracer)
	}
	observer := &countingObserver{}
	pc, _ = dbmodule.ParseConfig(cfg, dbmodule.WithObservers(observer))
	if tr, ok := pc.ConnConfig.Tracer.(*dbmodule.Tracer); !ok || tr.Logger != nil || len(tr.Observers) != 1 {
		t.Errorf("with an observer and no logger, tracer = %#v, want a Tracer that only tells the observer", pc.ConnConfig.Tracer)
	}
	extra := &countingTracer{}
	pc, _ = dbmodule.ParseConfig(cfg, dbmodule.WithLogger(zaptest.NewLogger(t)), dbmodule.WithTracers(extra))
	if mt, ok := pc.ConnConfig.Tracer.(*multitracer.Tracer); !ok || len(mt.QueryTracers) != 2 {
		t.Errorf("tracer = %#v, want a multitracer of the Tracer and the extra tracer", pc.ConnConfig.Tracer)
	}
}

// countingObserver counts the statements it is told of, by kind.
type countingObserver struct {
	mu    sync.Mutex
	kinds map[dbmodule.StatementKind]int
	errs  int
}

func (c *countingObserver) ObserveStatement(s dbmodule.Statement) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kinds == nil {
		c.kinds = map[dbmodule.StatementKind]int{}
	}
	c.kinds[s.Kind]++
	if s.Err != nil {
		c.errs++
	}
}

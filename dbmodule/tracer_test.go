package dbmodule_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// loggedPool opens a pool on the test server that logs to an observer at level.
func loggedPool(t *testing.T, level zapcore.Level, cfg config.DB) (*pgxpool.Pool, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(level)
	if cfg.URL == "" {
		cfg.URL = pg.URL(t)
	}
	pool, err := dbmodule.Open(context.Background(), cfg, dbmodule.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbmodule.Close(context.Background(), pool) }) //nolint:errcheck // test cleanup
	return pool, logs
}

func TestTracerLogsQueriesAtDebugWithoutArguments(t *testing.T) {
	pool, logs := loggedPool(t, zapcore.DebugLevel, config.DB{})
	if _, err := pool.Exec(context.Background(), "SELECT $1::text", "card-4242"); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("query").FilterField(zap.String("sql", "SELECT $1::text")).All()
	if len(entries) != 1 {
		t.Fatalf("want one query entry, got %d: %v", len(entries), logs.All())
	}
	e := entries[0]
	if e.Level != zapcore.DebugLevel {
		t.Errorf("query logged at %s, want debug", e.Level)
	}
	f := e.ContextMap()
	for _, k := range []string{"duration", "pid", "command", "rows"} {
		if _, ok := f[k]; !ok {
			t.Errorf("query entry lacks %q: %v", k, f)
		}
	}
	if _, ok := f["args"]; ok {
		t.Errorf("arguments logged without DB_LOG_QUERY_ARGS: %v", f["args"])
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "card-4242") {
			t.Errorf("argument value logged: %v", e)
		}
	}
}

func TestTracerLogsArgumentsWhenAsked(t *testing.T) {
	pool, logs := loggedPool(t, zapcore.DebugLevel, config.DB{LogQueryArgs: true})
	long := strings.Repeat("x", 100)
	if _, err := pool.Exec(context.Background(), "SELECT $1::text, $2::int, $3::bytea, $4::text", "card-4242", 7, []byte{1, 2}, long); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("query").FilterField(zap.String("sql", "SELECT $1::text, $2::int, $3::bytea, $4::text")).All()
	if len(entries) != 1 {
		t.Fatalf("want one entry for the query, got %d", len(entries))
	}
	args, _ := entries[0].ContextMap()["args"].([]any)
	want := []string{"card-4242", "7", `\x0102`, strings.Repeat("x", 64) + "…"}
	if len(args) != len(want) {
		t.Fatalf("args = %v, want %v", args, want)
	}
	for i := range want {
		if args[i] != want[i] {
			t.Errorf("args[%d] = %q, want %q", i, args[i], want[i])
		}
	}
}

func TestTracerWarnsAboutSlowQueries(t *testing.T) {
	pool, logs := loggedPool(t, zapcore.InfoLevel, config.DB{SlowQueryThreshold: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT pg_sleep(0.1)"); err != nil {
		t.Fatal(err)
	}
	slow := logs.FilterMessage("slow query").All()
	if len(slow) != 1 || slow[0].Level != zapcore.WarnLevel || slow[0].ContextMap()["sql"] != "SELECT pg_sleep(0.1)" {
		t.Fatalf("want one warn entry for the slow query, got %v", logs.All())
	}
	if d, _ := slow[0].ContextMap()["duration"].(time.Duration); d < 100*time.Millisecond {
		t.Errorf("slow query duration = %s, want at least 100ms", d)
	}
	if n := logs.FilterMessage("query").Len(); n != 0 {
		t.Errorf("%d fast queries logged at info level", n)
	}
}

func TestTracerLogsFailuresBatchesAndCopies(t *testing.T) {
	pool, logs := loggedPool(t, zapcore.DebugLevel, config.DB{})
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	failed := logs.FilterMessage("query").FilterFieldKey("error").All()
	if len(failed) != 1 || !strings.Contains(failed[0].ContextMap()["error"].(string), "division by zero") {
		t.Errorf("want the failed query logged with its error, got %v", failed)
	}

	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("SELECT 2")
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("batch query").Len(); n != 2 {
		t.Errorf("%d batch query entries, want 2", n)
	}
	if n := logs.FilterMessage("batch").Len(); n != 1 {
		t.Errorf("%d batch entries, want 1", n)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE copied (n int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"copied"}, []string{"n"}, pgx.CopyFromRows([][]any{{1}, {2}, {3}})); err != nil {
		t.Fatal(err)
	}
	copies := logs.FilterMessage("copy from").All()
	if len(copies) != 1 || copies[0].ContextMap()["rows"] != int64(3) || copies[0].ContextMap()["table"] != `"copied"` {
		t.Errorf("copy entries = %v", copies)
	}
}

func TestTracerLogsConnects(t *testing.T) {
	_, logs := loggedPool(t, zapcore.DebugLevel, config.DB{})
	if logs.FilterMessage("database connection opened").Len() == 0 {
		t.Error("connect not logged")
	}
	core, failLogs := observer.New(zapcore.DebugLevel)
	if _, err := dbmodule.Open(context.Background(), config.DB{URL: "postgres://u:" + secret + "@127.0.0.1:1/db"},
		dbmodule.WithLogger(zap.New(core))); err == nil {
		t.Fatal("Open of port 1 succeeded")
	}
	failed := failLogs.FilterMessage("database unreachable").All()
	if len(failed) != 1 || failed[0].Level != zapcore.WarnLevel {
		t.Errorf("failed connect not logged once at warn: %v", failLogs.All())
	}
	assertNoSecret(t, failLogs, "postgres://u:"+secret+"@127.0.0.1:1/db")
}

// A statement cache that meets a server connection which lost its prepared
// statements, as behind a transaction-mode pooler, is logged with the fix.
func TestTracerExplainsLostPreparedStatements(t *testing.T) {
	pool, logs := loggedPool(t, zapcore.InfoLevel, config.DB{MaxConns: 1})
	ctx := context.Background()
	var n int
	if err := pool.QueryRow(ctx, "SELECT 41 + $1::int", 1).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// What a pooler does: the next statement runs where the cache's
	// prepared statement does not exist.
	if _, err := pool.Exec(ctx, "DEALLOCATE ALL", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT 41 + $1::int", 1).Scan(&n); err == nil {
		t.Fatal("pgx recovered from the lost statement by itself; this test needs another way to lose one")
	}
	hinted := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(hinted) != 1 || !strings.Contains(hinted[0].Message, "DB_QUERY_EXEC_MODE=exec") {
		t.Errorf("want one error entry with the exec mode fix, got %v", logs.All())
	}
}

// The module's pool, its Tracer logging at info included, allocates no more
// per query than a raw pgxpool with no tracer at all.
func TestModulePoolAddsNoAllocations(t *testing.T) {
	ctx := context.Background()
	raw, err := pgxpool.New(ctx, pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	traced, _ := loggedPool(t, zapcore.InfoLevel, config.DB{})
	if _, ok := traced.Config().ConnConfig.Tracer.(*dbmodule.Tracer); !ok {
		t.Fatalf("module pool's tracer = %T, want its Tracer", traced.Config().ConnConfig.Tracer)
	}
	allocs := func(pool *pgxpool.Pool) float64 {
		var n int
		return testing.AllocsPerRun(200, func() {
			if err := pool.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
				t.Fatal(err)
			}
		})
	}
	allocs(raw) // warm both statement caches
	allocs(traced)
	if a, b := allocs(raw), allocs(traced); b > a {
		t.Errorf("QueryRow allocates %.1f times through the module's pool, %.1f through a raw pgxpool", b, a)
	}
}

func TestTracerTellsObservers(t *testing.T) {
	ctx := context.Background()
	observer := &countingObserver{}
	pool, err := dbmodule.Open(ctx, pg.Database(t), dbmodule.WithObservers(observer))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero succeeded")
	}
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE observed (n int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"observed"}, []string{"n"}, pgx.CopyFromRows([][]any{{1}})); err != nil {
		t.Fatal(err)
	}
	observer.mu.Lock()
	defer observer.mu.Unlock()
	if q, b, c := observer.kinds[dbmodule.QueryStatement], observer.kinds[dbmodule.BatchStatement], observer.kinds[dbmodule.CopyFromStatement]; q != 3 || b != 1 || c != 1 || observer.errs != 1 {
		t.Errorf("observer told of %d queries, %d batches, %d copies, %d errors; want 3, 1, 1, 1", q, b, c, observer.errs)
	}
}

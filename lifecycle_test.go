// Tests of the composed service: app.New as cmd/app runs it, started and
// stopped against a real PostgreSQL.
package fxpg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/app"
	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
	"github.com/fxpg/fxpg/dbmodule/migrate"
	"github.com/fxpg/fxpg/httpserver"
	"github.com/fxpg/fxpg/internal/pgtemp"
	"github.com/fxpg/fxpg/store"
)

var pg dbtest.Server

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// service is a started app.New with its handles.
type service struct {
	app  *fx.App
	http *httpserver.Server
	logs *observer.ObservedLogs
}

// newService builds app.New on a loopback port with an observed logger;
// opts replace what the test needs.
func newService(t *testing.T, opts ...fx.Option) (*service, error) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s := &service{logs: logs}
	s.app = app.New(append([]fx.Option{
		fx.Replace(config.App{HTTPAddr: "127.0.0.1:0"}),
		fx.Replace(zap.New(core)),
		fx.Populate(&s.http),
	}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.app.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func startService(t *testing.T, opts ...fx.Option) *service {
	t.Helper()
	s, err := newService(t, opts...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return s
}

func (s *service) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.app.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// get fetches a path from the service, without keeping connections alive.
func (s *service) get(t *testing.T, path string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.http.Addr().String() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func TestServiceStartsServesAndStops(t *testing.T) {
	var (
		pool *pgxpool.Pool
		q    dbmodule.Querier
	)
	s := startService(t, pg.Module(t), fx.Populate(&pool, &q))
	if code, body := s.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}
	var now time.Time
	if err := q.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatalf("query: %v", err)
	}
	addr := s.http.Addr().String()
	s.stop(t)

	if _, err := pool.Acquire(context.Background()); !errors.Is(err, puddle.ErrClosedPool) {
		t.Errorf("Acquire after stop = %v, want the closed-pool error", err)
	}
	if _, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP server still answers after stop")
	}
	for _, msg := range []string{"database pool opened", "http server listening", "database pool closed"} {
		if s.logs.FilterMessage(msg).Len() != 1 {
			t.Errorf("no %q log entry", msg)
		}
	}
}

func TestServiceFailsFastWhenDatabaseIsDown(t *testing.T) {
	for name, addr := range map[string]string{
		"nothing listens":      dbtest.ClosedAddr(t),
		"server never answers": dbtest.SilentAddr(t),
	} {
		t.Run(name, func(t *testing.T) {
			const timeout = 500 * time.Millisecond
			begin := time.Now()
			_, err := newService(t, fx.Replace(config.DB{URL: "postgres://app:Hunter2-Hunter2@" + addr + "/app", ConnectTimeout: timeout}))
			took := time.Since(begin)
			if err == nil {
				t.Fatal("the service started without its database")
			}
			t.Logf("failed in %s: %v", took, err)
			for _, want := range []string{addr, "DATABASE_URL"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %s", want)
				}
			}
			if strings.Contains(err.Error(), "Hunter2-Hunter2") {
				t.Error("error contains the password")
			}
			// connect timeout + ping timeout, far inside fx's 15 s start budget
			if took > timeout+config.DefaultPingTimeout+time.Second {
				t.Errorf("start took %s to fail", took)
			}
		})
	}
}

func TestReplacedConfigIgnoresTheEnvironment(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://nobody:nothing@127.0.0.1:1/nowhere")
	var q dbmodule.Querier
	cfg := pg.Database(t)
	want, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	s := startService(t, fx.Replace(cfg), fx.Populate(&q))
	defer s.stop(t)
	var db string
	if err := q.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil || db != want.Database {
		t.Errorf("current_database() = %q, %v; want the replaced config's database %q", db, err, want.Database)
	}
}

// With DB_MIGRATE_ON_START the service migrates an empty database as it
// starts, and serves typed queries on the new schema.
func TestServiceMigratesOnStartAndServesTypedQueries(t *testing.T) {
	cfg := pg.Database(t) // empty: the root test server has no migrations
	var shop store.Querier
	s := startService(t, fx.Replace(cfg, migrate.Config{OnStart: true}), fx.Populate(&shop))
	defer s.stop(t)
	c, err := shop.CreateCustomer(context.Background(), store.CreateCustomerParams{Email: "grace@example.com", Name: "Grace"})
	if err != nil {
		t.Fatalf("typed query on the migrated schema: %v", err)
	}
	if got, err := shop.GetCustomer(context.Background(), c.ID); err != nil || got.Name != "Grace" {
		t.Errorf("GetCustomer = %+v, %v", got, err)
	}
	if n := s.logs.FilterMessage("migration applied").Len(); n != 2 {
		t.Errorf("%d 'migration applied' log entries, want 2", n)
	}
}

// recordingQuerier is a fake: Exec counts calls and returns err.
type recordingQuerier struct {
	dbmodule.Querier // nil: any other method would panic, proving it unused
	execs            atomic.Int32
	err              error
}

func (r *recordingQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	r.execs.Add(1)
	return pgconn.NewCommandTag("SELECT 1"), r.err
}

func TestFakeQuerierNeedsNoDatabase(t *testing.T) {
	for _, v := range []string{"DATABASE_URL", "DIRECT_URL"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	fake := &recordingQuerier{}
	s := startService(t, fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Querier)))))
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with a healthy fake = %d %q", code, body)
	}
	if fake.execs.Load() == 0 {
		t.Error("/readyz did not use the fake Querier")
	}
	fake.err = errors.New("fake outage at 10.1.2.3")
	code, body := s.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database: database failed") || strings.Contains(body, "10.1.2.3") {
		t.Errorf("/readyz with a failing fake = %d %q; want 503 with a reason and no internal detail", code, body)
	}
	s.stop(t)
	if s.logs.FilterMessage("database pool opened").Len() != 0 {
		t.Error("a pool was opened although the Querier was replaced")
	}
}

func TestTwoServicesHaveTheirOwnPools(t *testing.T) {
	var pool1, pool2 *pgxpool.Pool
	s1 := startService(t, pg.Module(t), fx.Populate(&pool1))
	s2 := startService(t, pg.Module(t), fx.Populate(&pool2))
	defer s2.stop(t)
	if pool1 == pool2 {
		t.Fatal("two apps share one pool")
	}
	if s1.http.Addr().String() == s2.http.Addr().String() {
		t.Fatal("two apps share one HTTP server")
	}
	s1.stop(t)
	if _, err := pool1.Exec(context.Background(), "SELECT 1"); !errors.Is(err, puddle.ErrClosedPool) {
		t.Errorf("first pool after its app stopped: %v", err)
	}
	if _, err := pool2.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Errorf("second pool after the first app stopped: %v", err)
	}
	if code, _ := s2.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("second app's /readyz = %d", code)
	}
}

// A database restart needs no app restart: /readyz reports the outage, and
// the pool replaces its broken connections once the server is back.
func TestServiceSurvivesDatabaseRestart(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var q dbmodule.Querier
	s := startService(t, fx.Replace(config.DB{URL: srv.URL("postgres")}), fx.Populate(&q))
	defer s.stop(t)
	if code, _ := s.get(t, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before the outage = %d", code)
	}

	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	code, body := s.get(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database") {
		t.Errorf("/readyz during the outage = %d %q", code, body)
	}
	if strings.Contains(body, srv.Password()) || strings.Contains(body, "127.0.0.1") {
		t.Errorf("/readyz leaks connection details: %q", body)
	}

	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := q.Exec(ctx, "SELECT 1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool did not recover after the server came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := s.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz after recovery = %d %q", code, body)
	}
	for _, e := range s.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), srv.Password()) {
			t.Errorf("log entry carries the password: %v", e)
		}
	}
}

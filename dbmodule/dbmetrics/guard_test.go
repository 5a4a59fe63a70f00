package dbmetrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// The series each guardrail exports, by the setting that turns it on.
var (
	acquireSeries = []string{
		"db_client_connection_wait_time_seconds", "db_client_connection_pending_requests", "db_client_connection_timeouts_total",
	}
	leakSeries       = []string{"dbmodule_connection_leaks_total", "dbmodule_held_connections"}
	credentialSeries = []string{"dbmodule_password_fetches_total", "dbmodule_password_failures_total", "dbmodule_credential_retries_total"}
)

// guardedApp starts an app of the module and dbmetrics.Module on cfg, its
// metrics in a pedantic registry, stopped when the test ends.
func guardedApp(t *testing.T, cfg config.DB) (*pgxpool.Pool, dbmodule.Querier, *prometheus.Registry) {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pg.URL(t)
	}
	reg := prometheus.NewPedanticRegistry()
	var (
		pool *pgxpool.Pool
		q    dbmodule.Querier
	)
	app := fxtest.New(t, dbmodule.Module, dbmetrics.Module, fx.Replace(cfg), withRegisterer(reg), fx.Populate(&pool, &q))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return pool, q, reg
}

// guardedPool opens a pool on cfg with a Guard of its own, whose
// GuardCollector is registered in a pedantic registry. Unlike an app's, the
// pool runs no server check, which would acquire a connection a second
// after start: counts can be exact.
func guardedPool(t *testing.T, cfg config.DB) (*pgxpool.Pool, *prometheus.Registry) {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = pg.URL(t)
	}
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	pool := openPool(t, cfg, dbmodule.WithGuard(guard))
	c, err := dbmetrics.NewGuardCollector(guard, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return pool, reg
}

// poolSeries is the series of name for pool, written as scrape writes it.
func poolSeries(pool *pgxpool.Pool, name string) string {
	return fmt.Sprintf("%s{%s=%q}", name, dbmetrics.LabelPoolName, dbmetrics.PoolName(pool))
}

// primarySeries is poolSeries as the module labels it, as the primary's.
func primarySeries(pool *pgxpool.Pool, name string) string {
	return fmt.Sprintf("%s{%s=%q,replica=\"\",role=\"primary\"}", name, dbmetrics.LabelPoolName, dbmetrics.PoolName(pool))
}

// assertSeries fails unless s has a series for each of names (present) or
// none (absent).
func assertSeries(t *testing.T, s map[string]float64, pool *pgxpool.Pool, present bool, names ...string) {
	t.Helper()
	for _, name := range names {
		_, ok := s[poolSeries(pool, name)]
		if !ok {
			// Through the module, the series carry the pool's role too.
			_, ok = s[primarySeries(pool, name)]
		}
		if ok != present {
			t.Errorf("%s present %v, want %v; have %v", poolSeries(pool, name), ok, present, dbSeries(s))
		}
	}
}

// waitTime is the wait histogram's count, sum, and count of waits up to le seconds.
type waitTime struct {
	count, upTo uint64
	sum         float64
}

func waitTimeOf(t *testing.T, g prometheus.Gatherer, le float64) waitTime {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "db_client_connection_wait_time_seconds" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%d wait time series, want 1", len(f.GetMetric()))
		}
		h := f.GetMetric()[0].GetHistogram()
		w := waitTime{count: h.GetSampleCount(), sum: h.GetSampleSum()}
		found := false
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == le {
				w.upTo, found = b.GetCumulativeCount(), true
			}
		}
		if !found {
			t.Fatalf("no wait time bucket le=%v", le)
		}
		return w
	}
	t.Fatal("no db_client_connection_wait_time_seconds")
	return waitTime{}
}

// With DB_ACQUIRE_TIMEOUT and the pool's one connection held, an acquire
// that times out counts in timeouts_total and in the wait histogram, above
// the timeout.
func TestGuardMetricsCountAcquireTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	ctx := context.Background()
	pool, reg := guardedPool(t, config.DB{MaxConns: 1, AcquireTimeout: timeout})
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	s := scrape(t, reg)
	assertSeries(t, s, pool, true, acquireSeries...)
	assertSeries(t, s, pool, false, slices.Concat(leakSeries, credentialSeries)...)
	timeouts := poolSeries(pool, "db_client_connection_timeouts_total")
	if s[timeouts] != 0 {
		t.Errorf("%s before any timeout = %v", timeouts, s[timeouts])
	}
	waitsBefore := waitTimeOf(t, reg, timeout.Seconds())

	if _, err := pool.Exec(ctx, "SELECT 1"); !errors.Is(err, dbmodule.ErrPoolExhausted) {
		t.Fatalf("Exec with the pool's connection held = %v, want ErrPoolExhausted", err)
	}

	if got := scrape(t, reg)[timeouts]; got != 1 {
		t.Errorf("%s = %v, want 1", timeouts, got)
	}
	waits := waitTimeOf(t, reg, timeout.Seconds())
	if waits.count != waitsBefore.count+1 || waits.upTo != waitsBefore.upTo {
		t.Errorf("wait histogram went from %+v to %+v: want one more wait, longer than the timeout", waitsBefore, waits)
	}
	if got := waits.sum - waitsBefore.sum; got < timeout.Seconds() {
		t.Errorf("wait time rose by %vs, want at least the timeout", got)
	}
}

// pending_requests is the number of callers waiting for a connection now.
func TestGuardMetricsCountWaitingCallers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, reg := guardedPool(t, config.DB{MaxConns: 1, AcquireTimeout: time.Hour}) // only the test ends the wait
	pending := poolSeries(pool, "db_client_connection_pending_requests")
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	if got := scrape(t, reg)[pending]; got != 0 {
		t.Errorf("%s with nobody waiting = %v", pending, got)
	}
	waiting, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		c, err := pool.Acquire(waiting)
		if err == nil {
			c.Release()
		}
		done <- err
	}()
	dbtest.WaitFor(t, "one waiting caller", func() bool { return scrape(t, reg)[pending] == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Acquire = %v", err)
	}
	s := scrape(t, reg)
	if got := s[pending]; got != 0 {
		t.Errorf("%s after the caller gave up = %v", pending, got)
	}
	if got := s[poolSeries(pool, "db_client_connection_timeouts_total")]; got != 0 {
		t.Errorf("a canceled acquire counted as a timeout: %v", got)
	}
}

// A Rows left open past DB_LEAK_THRESHOLD counts in leaks_total; while it
// is open, its connection counts as held.
func TestGuardMetricsCountLeaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, reg := guardedPool(t, config.DB{LeakThreshold: 200 * time.Millisecond})
	leaks, held := poolSeries(pool, "dbmodule_connection_leaks_total"), poolSeries(pool, "dbmodule_held_connections")
	s := scrape(t, reg)
	assertSeries(t, s, pool, true, leakSeries...)
	assertSeries(t, s, pool, false, slices.Concat(acquireSeries, credentialSeries)...)
	if s[leaks] != 0 || s[held] != 0 {
		t.Errorf("after start: %s = %v, %s = %v; want 0 and 0", leaks, s[leaks], held, s[held])
	}

	rows, err := pool.Query(ctx, "SELECT generate_series(1, 3)") // leaked, until the test closes it
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if got := scrape(t, reg)[held]; got != 1 {
		t.Errorf("%s with a Rows open = %v, want 1", held, got)
	}
	dbtest.WaitFor(t, "a leak counted", func() bool { return scrape(t, reg)[leaks] == 1 })
	rows.Close()
	dbtest.WaitFor(t, "no connection held", func() bool { return scrape(t, reg)[held] == 0 })
	if got := scrape(t, reg)[leaks]; got != 1 {
		t.Errorf("%s after the Rows closed = %v, want 1", leaks, got)
	}
}

// Each new connection reads DB_PASSWORD_FILE: a fetch. An empty file is a
// failure, which the module's Querier retries. No series carries the password.
func TestGuardMetricsCountPasswordFetches(t *testing.T) {
	t.Parallel()
	const password = "p@ss:w/rd%20 ü€ 'q\"\\ metrics"
	ctx := context.Background()
	role, u := loginRole(t, password)
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, q, reg := guardedApp(t, config.DB{URL: u, PasswordFile: file, MaxConns: 1, ConnectTimeout: 500 * time.Millisecond})
	var (
		fetches  = primarySeries(pool, "dbmodule_password_fetches_total")
		failures = primarySeries(pool, "dbmodule_password_failures_total")
		retries  = primarySeries(pool, "dbmodule_credential_retries_total")
	)
	var who string
	if err := q.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil || who != role {
		t.Fatalf("current_user = %q, %v; want %s", who, err, role)
	}
	s := scrape(t, reg)
	assertSeries(t, s, pool, true, credentialSeries...)
	assertSeries(t, s, pool, false, slices.Concat(acquireSeries, leakSeries)...)
	if s[fetches] < 1 || s[failures] != 0 || s[retries] != 0 {
		t.Errorf("after a login: fetches %v, failures %v, retries %v; want at least 1, 0, 0", s[fetches], s[failures], s[retries])
	}

	// The file emptied, the next connection gets no password: the Querier
	// tries again, for up to DB_CONNECT_TIMEOUT, then gives up.
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dbmodule.RetireConnections(pool)
	if _, err := q.Exec(ctx, "SELECT 1"); !errors.Is(err, dbmodule.ErrPasswordUnavailable) {
		t.Fatalf("Exec with an empty password file = %v, want ErrPasswordUnavailable", err)
	}
	after := scrape(t, reg)
	if after[fetches] <= s[fetches] || after[failures] < 1 || after[retries] < 1 {
		t.Errorf("after an empty file: fetches %v (was %v), failures %v, retries %v; want more, at least 1, at least 1",
			after[fetches], s[fetches], after[failures], after[retries])
	}
	if text := exposition(t, reg); strings.Contains(text, password) || strings.Contains(text, url.QueryEscape(password)) {
		t.Error("the metrics carry the password")
	}
}

// The module exports the series of the guardrails that are on, and none
// of those that are off.
func TestModuleExportsTheGuardrailsOn(t *testing.T) {
	t.Parallel()
	all := slices.Concat(acquireSeries, leakSeries, credentialSeries)
	pool, _, reg := guardedApp(t, config.DB{})
	assertSeries(t, scrape(t, reg), pool, false, all...)

	pool, _, reg = guardedApp(t, config.DB{AcquireTimeout: time.Second, LeakThreshold: time.Minute})
	s := scrape(t, reg)
	assertSeries(t, s, pool, true, slices.Concat(acquireSeries, leakSeries)...)
	assertSeries(t, s, pool, false, credentialSeries...)
	// The start's ping and warm-up acquired: the histogram is the Guard's.
	if got := s[primarySeries(pool, "db_client_connection_wait_time_seconds")]; got < 1 {
		t.Errorf("wait time observations after start = %v, want at least 1", got)
	}
}

// An app that decorates the pool itself composes the parts: its
// RegisterPoolCollector exports the Guard's metrics too.
func TestRegisterPoolCollectorExportsTheGuard(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	var pool *pgxpool.Pool
	app := fxtest.New(t, dbmodule.Module, fx.Replace(config.DB{URL: pg.URL(t), AcquireTimeout: time.Second}), withRegisterer(reg),
		fx.Decorate(func(p *pgxpool.Pool) *pgxpool.Pool { return p }), // the app's own decoration
		fx.Provide(dbmodule.AsStatementObserver(dbmetrics.NewRegisteredStatementMetrics)),
		fx.Invoke(dbmetrics.RegisterPoolCollector), fx.Populate(&pool))
	app.RequireStart()
	defer app.RequireStop()
	s := scrape(t, reg)
	assertSeries(t, s, pool, true, slices.Concat(acquireSeries, []string{"db_client_connection_max"})...)
	assertSeries(t, s, pool, false, slices.Concat(leakSeries, credentialSeries)...)
}

func TestGuardCollectorRefusesBadInput(t *testing.T) {
	t.Parallel()
	pool := openPool(t, config.DB{})
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: config.DB{URL: pg.URL(t), LeakThreshold: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dbmetrics.NewGuardCollector(nil, pool, nil); err == nil {
		t.Error("a collector of no guard was made")
	}
	if _, err := dbmetrics.NewGuardCollector(guard, nil, nil); err == nil {
		t.Error("a collector of no pool was made")
	}
	if _, err := dbmetrics.NewGuardCollector(guard, pool, prometheus.Labels{"": "x"}); err == nil {
		t.Error("a collector with an empty label name was made")
	}
}

// loginRole makes a role that logs in with password (SCRAM over TCP, as the
// test server asks), dropped when the test ends, and returns its name and a
// URL of it with no password.
func loginRole(t *testing.T, password string) (string, string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("metrics_%d", time.Now().UnixNano())
	admin := func() *pgx.Conn {
		conn, err := pgx.Connect(ctx, pg.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	conn := admin()
	defer conn.Close(ctx)
	var stmt string
	if err := conn.QueryRow(ctx, "SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER PASSWORD %L', $1::text, $2::text)", name, password).Scan(&stmt); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn := admin()
		defer conn.Close(ctx)
		conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name) //nolint:errcheck // best effort
		if _, err := conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop role: %v", err)
		}
	})
	u, err := url.Parse(pg.URL(t)) // the test server's own URL, which net/url wrote
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(name)
	return name, u.String()
}

// exposition is g's metrics in Prometheus's text format.
func exposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// BenchmarkGuardCollect is what a scrape of a GuardCollector costs, the
// wait histogram's conversion included: the collector's whole cost, as it
// adds nothing to the query path.
func BenchmarkGuardCollect(b *testing.B) {
	cfg := config.DB{URL: pg.URL(b), AcquireTimeout: time.Second, LeakThreshold: time.Minute}
	guard, err := dbmodule.NewGuard(dbmodule.GuardParams{Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pool, err := dbmodule.Open(ctx, cfg, dbmodule.WithGuard(guard))
	if err != nil {
		b.Fatal(err)
	}
	defer dbmodule.Close(ctx, pool) //nolint:errcheck // benchmark
	c, err := dbmetrics.NewGuardCollector(guard, pool, nil)
	if err != nil {
		b.Fatal(err)
	}
	ch := make(chan prometheus.Metric, 16)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}

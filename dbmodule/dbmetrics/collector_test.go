package dbmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

func TestPoolCollectorFollowsThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := openPool(t, config.DB{MaxConns: 3, MinIdleConns: 1})
	reg := prometheus.NewPedanticRegistry() // also checks the metrics' consistency
	c, err := dbmetrics.NewPoolCollector(pool, prometheus.Labels{"pool": "primary"})
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(c)
	cc := pool.Config().ConnConfig
	series := func(name string, more ...string) string {
		labels := append(more, fmt.Sprintf(`db_client_connection_pool_name="%s:%d/%s"`, cc.Host, cc.Port, cc.Database), `pool="primary"`)
		sort.Strings(labels) // as scrape writes them
		return name + "{" + strings.Join(labels, ",") + "}"
	}
	var (
		idle = series("db_client_connection_count", `db_client_connection_state="idle"`)
		used = series("db_client_connection_count", `db_client_connection_state="used"`)
	)

	before := scrape(t, reg)
	for name, want := range map[string]float64{
		series("db_client_connection_max"):      3,
		series("db_client_connection_idle_min"): 1,
		used:                                    0,
		// Open pinged on a new pool: the first acquire found it empty.
		series("pgxpool_empty_acquires_total"): 1,
	} {
		if got, ok := before[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{
		idle, series("pgxpool_constructing_connections"), series("pgxpool_acquire_seconds_total"),
		series("pgxpool_empty_acquire_wait_seconds_total"), series("pgxpool_canceled_acquires_total"),
		series("pgxpool_connections_opened_total"),
		series("pgxpool_connections_closed_total", `reason="max_lifetime"`),
		series("pgxpool_connections_closed_total", `reason="max_idle_time"`),
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing; have %v", name, keys(before))
		}
	}
	if before[series("pgxpool_empty_acquire_wait_seconds_total")] <= 0 {
		t.Error("the first acquire, which opened a connection, waited no time")
	}

	for range 5 {
		if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := scrape(t, reg)
	conn.Release()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pool.Acquire(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a canceled context = %v", err)
	}
	after := scrape(t, reg)

	if got := held[series("pgxpool_acquires_total")] - before[series("pgxpool_acquires_total")]; got != 6 {
		t.Errorf("acquires rose by %v over 5 queries and an Acquire, want 6", got)
	}
	if got := held[used]; got != 1 {
		t.Errorf("used connections while one is held = %v, want 1", got)
	}
	if got := after[used]; got != 0 {
		t.Errorf("used connections after release = %v, want 0", got)
	}
	// MinIdleConns may have the pool open another connection in the
	// background, which TotalConns counts and idle does not until it is open.
	var settled map[string]float64
	dbtest.WaitFor(t, "no connection being opened", func() bool {
		settled = scrape(t, reg)
		return settled[series("pgxpool_constructing_connections")] == 0
	})
	if got, total := settled[idle], float64(pool.Stat().TotalConns()); got != total {
		t.Errorf("idle connections with none used = %v, want all %v", got, total)
	}
	if got := after[series("pgxpool_canceled_acquires_total")]; got != 1 {
		t.Errorf("canceled acquires = %v, want 1", got)
	}
	if after[series("pgxpool_acquire_seconds_total")] <= before[series("pgxpool_acquire_seconds_total")] {
		t.Error("acquire time did not grow")
	}
}

// A pool's name, by OpenTelemetry's advice, is where it connects; never
// who, or with what password.
func TestPoolNameIsTheAddress(t *testing.T) {
	t.Parallel()
	const password = "p@ss:w/rd %é"
	pc, err := dbmodule.ParseConfig(config.DB{URL: "postgres://" + url.UserPassword("app", password).String() + "@db.example:6432/shop"})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc) // lazy: nothing connects
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got, want := dbmetrics.PoolName(pool), "db.example:6432/shop"; got != want {
		t.Errorf("PoolName = %q, want %q", got, want)
	}
}

func TestPoolCollectorRefusesBadInput(t *testing.T) {
	t.Parallel()
	if _, err := dbmetrics.NewPoolCollector(nil, nil); err == nil {
		t.Error("a collector of no pool was made")
	}
	pool := openPool(t, config.DB{})
	for _, labels := range []prometheus.Labels{{"": "x"}, {"db_client_connection_state": "x"}, {"reason": "x"}} {
		if _, err := dbmetrics.NewPoolCollector(pool, labels); err == nil {
			t.Errorf("NewPoolCollector(%v) succeeded", labels)
		}
	}
	// The pool's name may be set, for pools that share an address.
	c, err := dbmetrics.NewPoolCollector(pool, prometheus.Labels{dbmetrics.LabelPoolName: "reports"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, ok := scrape(t, reg)[`db_client_connection_max{db_client_connection_pool_name="reports"}`]; !ok {
		t.Errorf("no series for the pool named reports: %v", keys(scrape(t, reg)))
	}
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

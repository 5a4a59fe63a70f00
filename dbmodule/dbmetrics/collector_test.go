package dbmetrics_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
)

func TestPoolCollectorFollowsThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := openPool(t, config.DB{MaxConns: 3})
	reg := prometheus.NewPedanticRegistry() // also checks the metrics' consistency
	reg.MustRegister(dbmetrics.NewPoolCollector(pool, prometheus.Labels{"pool": "primary"}))

	before := scrape(t, reg)
	for name, want := range map[string]float64{
		`pgxpool_max_connections{pool="primary"}`:      3,
		`pgxpool_acquired_connections{pool="primary"}`: 0,
		// Open pinged on a new pool: the first acquire found it empty.
		`pgxpool_empty_acquires_total{pool="primary"}`:     1,
		`pgxpool_connections_opened_total{pool="primary"}`: 1,
		`pgxpool_total_connections{pool="primary"}`:        1,
		`pgxpool_idle_connections{pool="primary"}`:         1,
	} {
		if got, ok := before[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{
		`pgxpool_constructing_connections{pool="primary"}`, `pgxpool_acquire_seconds_total{pool="primary"}`,
		`pgxpool_empty_acquire_wait_seconds_total{pool="primary"}`, `pgxpool_canceled_acquires_total{pool="primary"}`,
		`pgxpool_connections_closed_total{pool="primary",reason="max_lifetime"}`,
		`pgxpool_connections_closed_total{pool="primary",reason="max_idle_time"}`,
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if before[`pgxpool_empty_acquire_wait_seconds_total{pool="primary"}`] <= 0 {
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

	if got := held[`pgxpool_acquires_total{pool="primary"}`] - before[`pgxpool_acquires_total{pool="primary"}`]; got != 6 {
		t.Errorf("acquires rose by %v over 5 queries and an Acquire, want 6", got)
	}
	if got := held[`pgxpool_acquired_connections{pool="primary"}`]; got != 1 {
		t.Errorf("acquired connections while one is held = %v, want 1", got)
	}
	if got := after[`pgxpool_acquired_connections{pool="primary"}`]; got != 0 {
		t.Errorf("acquired connections after release = %v, want 0", got)
	}
	if got := after[`pgxpool_canceled_acquires_total{pool="primary"}`]; got != 1 {
		t.Errorf("canceled acquires = %v, want 1", got)
	}
	if after[`pgxpool_acquire_seconds_total{pool="primary"}`] <= before[`pgxpool_acquire_seconds_total{pool="primary"}`] {
		t.Error("acquire time did not grow")
	}
}

func TestPoolCollectorRefusesBadLabels(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	err := reg.Register(dbmetrics.NewPoolCollector(nil, prometheus.Labels{"": "x"}))
	if err == nil {
		t.Fatal("a collector with an empty label name registered")
	}
}

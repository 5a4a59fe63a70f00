package dbmetrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbmetrics"
)

func newMetrics(t testing.TB, reg prometheus.Registerer) *dbmetrics.StatementMetrics {
	t.Helper()
	metrics, err := dbmetrics.NewStatementMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	if reg != nil {
		reg.MustRegister(metrics)
	}
	return metrics
}

func TestStatementMetricsCountByOperationAndOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	pool := openPool(t, pg.Database(t), dbmodule.WithObservers(newMetrics(t, reg)))
	if _, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	var (
		queryOK       = statements(dbmetrics.OperationQuery, dbmetrics.OutcomeOK)
		queryError    = statements(dbmetrics.OperationQuery, dbmetrics.OutcomeError)
		queryCanceled = statements(dbmetrics.OperationQuery, dbmetrics.OutcomeCanceled)
		batchOK       = statements(dbmetrics.OperationBatch, dbmetrics.OutcomeOK)
		batchError    = statements(dbmetrics.OperationBatch, dbmetrics.OutcomeError)
		copyOK        = statements(dbmetrics.OperationCopyFrom, dbmetrics.OutcomeOK)
		copyError     = statements(dbmetrics.OperationCopyFrom, dbmetrics.OutcomeError)
	)
	for _, step := range []struct {
		name string
		run  func() error
		want map[string]float64 // the series that must grow, by how much; all others stay
	}{
		{"query", func() error { _, err := pool.Exec(ctx, "SELECT $1::int", 1); return err }, map[string]float64{queryOK: 1}},
		{"no rows is no error", func() error {
			var id int
			if err := pool.QueryRow(ctx, "SELECT id FROM items WHERE id = -1").Scan(&id); !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			return nil
		}, map[string]float64{queryOK: 1}},
		{"failing query", func() error { return expectError(pool.Exec(ctx, "SELECT 1/0")) }, map[string]float64{queryError: 1}},
		{"context deadline", func() error {
			// Acquired first, so that the deadline can only end the statement.
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			return expectError(conn.Exec(ctx, "SELECT pg_sleep(30)"))
		}, map[string]float64{queryCanceled: 1}},
		{"statement timeout", func() error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "SET statement_timeout = 20"); err != nil {
				return err
			}
			if err := expectError(conn.Exec(ctx, "SELECT pg_sleep(30)")); err != nil {
				return err
			}
			_, err = conn.Exec(ctx, "RESET statement_timeout")
			return err
		}, map[string]float64{queryOK: 2, queryCanceled: 1}}, // set and reset; the sleep
		{"batch", func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue("SELECT 2")
			return pool.SendBatch(ctx, b).Close()
		}, map[string]float64{batchOK: 1}},
		{"failing batch", func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1/0")
			return expectError(pgconnTag(pool.SendBatch(ctx, b).Close()))
		}, map[string]float64{batchError: 1}},
		{"copy", func() error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows([][]any{{1}, {2}, {3}}))
			return err
		}, map[string]float64{copyOK: 1}},
		{"failing copy", func() error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows([][]any{{1}}))
			return expectError(pgconnTag(err))
		}, map[string]float64{copyError: 1}},
	} {
		before := scrape(t, reg)
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		after := scrape(t, reg)
		for series, v := range after {
			if !strings.HasPrefix(series, dbmetrics.StatementDurationName) {
				continue
			}
			if got, want := v-before[series], step.want[series]; got != want {
				t.Errorf("%s: %s grew by %v, want %v", step.name, series, got, want)
			}
		}
	}

	// Nine series, bound up front, whose labels never carry SQL.
	var series []string
	for s := range scrape(t, reg) {
		if strings.HasPrefix(s, dbmetrics.StatementDurationName) {
			series = append(series, s)
			if strings.Contains(s, "SELECT") || strings.Contains(s, "items") {
				t.Errorf("series %s carries SQL", s)
			}
		}
	}
	if len(series) != 9 {
		t.Errorf("%d series, want 9 (3 operations × 3 outcomes): %v", len(series), series)
	}
}

// expectError turns the result of a statement that must fail into nil, and
// its success into an error.
func expectError[T any](_ T, err error) error {
	if err == nil {
		return errors.New("succeeded, want a failure")
	}
	return nil
}

// pgconnTag adapts an error-only result to expectError.
func pgconnTag(err error) (struct{}, error) { return struct{}{}, err }

// Observing a statement allocates nothing, when it succeeds or its context
// ends; classifying a server's error may (errors.As).
func TestStatementMetricsAllocateNothing(t *testing.T) {
	metrics := newMetrics(t, nil)
	statements := []dbmodule.Statement{
		{Kind: dbmodule.QueryStatement, Duration: time.Millisecond},
		{Kind: dbmodule.BatchStatement, Duration: time.Millisecond, Err: context.DeadlineExceeded},
		{Kind: dbmodule.CopyFromStatement, Duration: time.Millisecond, Err: context.Canceled},
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, s := range statements {
			metrics.ObserveStatement(s)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per observed statement, want 0", allocs)
	}
}

func TestNewStatementMetricsRefusesBadLabels(t *testing.T) {
	t.Parallel()
	for _, labels := range []prometheus.Labels{{"": "x"}, {"le": "1"}, {"operation": "x"}} {
		if _, err := dbmetrics.NewStatementMetrics(labels); err == nil {
			t.Errorf("NewStatementMetrics(%v) succeeded", labels)
		}
	}
	if _, err := dbmetrics.NewStatementMetrics(prometheus.Labels{"pool": "replica"}); err != nil {
		t.Errorf("NewStatementMetrics with a good label: %v", err)
	}
}

// BenchmarkStatementMetrics measures what the metrics add to each statement.
func BenchmarkStatementMetrics(b *testing.B) {
	metrics := newMetrics(b, nil)
	s := dbmodule.Statement{Kind: dbmodule.QueryStatement, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		metrics.ObserveStatement(s)
	}
}

// BenchmarkPointQuery compares a point query without and with the metrics.
func BenchmarkPointQuery(b *testing.B) {
	ctx := context.Background()
	for _, bb := range []struct {
		name string
		opts []dbmodule.Option
	}{
		{"untraced", nil},
		{"metrics", []dbmodule.Option{dbmodule.WithObservers(newMetrics(b, nil))}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			pool, err := dbmodule.Open(ctx, config.DB{URL: pg.URL(b), MaxConns: 1}, bb.opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer dbmodule.Close(ctx, pool) //nolint:errcheck // benchmark
			var n int
			b.ReportAllocs()
			for b.Loop() {
				if err := pool.QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package dbmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

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

// durationSeries returns the statement duration series of s.
func durationSeries(s map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for name, v := range s {
		if strings.HasPrefix(name, dbmetrics.StatementDurationName+"{") {
			out[name] = v
		}
	}
	return out
}

func TestStatementMetricsCountBySummaryAndErrorType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	pool := openPool(t, pg.Database(t), dbmodule.WithObservers(newMetrics(t, reg)))
	if _, err := pool.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	const lookup = "-- name: LookUpItem :one\nSELECT id FROM items WHERE id = $1"
	for _, step := range []struct {
		name string
		run  func() error
		want map[string]float64 // the series that must grow, by how much; all others stay
	}{
		{"named query", func() error {
			var id int
			if err := pool.QueryRow(ctx, lookup, -1).Scan(&id); !errors.Is(err, pgx.ErrNoRows) { // no rows is no error
				return fmt.Errorf("lookup of a missing item: %v", err)
			}
			return nil
		}, map[string]float64{statements("LookUpItem", ""): 1}},
		{"unnamed query", func() error { _, err := pool.Exec(ctx, "select $1::int", 1); return err }, map[string]float64{statements("SELECT", ""): 1}},
		{"unknown command", func() error { _, err := pool.Exec(ctx, "(SELECT 1)"); return err }, map[string]float64{statements("", ""): 1}},
		{"failing query", func() error { return expectError(pool.Exec(ctx, "-- name: Divide :one\nSELECT 1/0")) },
			map[string]float64{statements("Divide", "22012"): 1}},
		{"context deadline", func() error {
			// Acquired first, so that the deadline can only end the statement.
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			return expectError(conn.Exec(ctx, "-- name: Nap :exec\nSELECT pg_sleep(30)"))
		}, map[string]float64{statements("Nap", dbmetrics.ErrorTypeDeadlineExceeded): 1}},
		{"canceled context", func() error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			conn, err := pool.Acquire(context.Background())
			if err != nil {
				return err
			}
			defer conn.Release()
			return expectError(conn.Exec(ctx, "-- name: Nap :exec\nSELECT pg_sleep(30)"))
		}, map[string]float64{statements("Nap", dbmetrics.ErrorTypeCanceled): 1}},
		{"statement timeout", func() error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "SET statement_timeout = 20"); err != nil {
				return err
			}
			if err := expectError(conn.Exec(ctx, "-- name: Nap :exec\nSELECT pg_sleep(30)")); err != nil {
				return err
			}
			_, err = conn.Exec(ctx, "RESET statement_timeout")
			return err
		}, map[string]float64{statements("SET", ""): 1, statements("Nap", "57014"): 1, statements("RESET", ""): 1}},
		{"batch of one named statement", func() error {
			b := &pgx.Batch{}
			b.Queue(lookup, 1)
			b.Queue(lookup, 2)
			return pool.SendBatch(ctx, b).Close()
		}, map[string]float64{statements("BATCH LookUpItem", ""): 1}},
		{"mixed batch", func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			b.Queue(lookup, 2)
			return pool.SendBatch(ctx, b).Close()
		}, map[string]float64{statements("BATCH", ""): 1}},
		{"failing batch", func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1/0")
			return expectError(pgconnTag(pool.SendBatch(ctx, b).Close()))
		}, map[string]float64{statements("BATCH SELECT", "22012"): 1}},
		{"copy", func() error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows([][]any{{1}, {2}, {3}}))
			return err
		}, map[string]float64{statements("COPY", ""): 1}},
		{"failing copy", func() error {
			_, err := pool.CopyFrom(ctx, pgx.Identifier{"items"}, []string{"id"}, pgx.CopyFromRows([][]any{{1}}))
			return expectError(pgconnTag(err))
		}, map[string]float64{statements("COPY", "23505"): 1}},
		{"transaction", func() error {
			return dbmodule.InTx(ctx, pool, func(q dbmodule.Querier) error {
				_, err := q.Exec(ctx, "-- name: DeleteItems :exec\nDELETE FROM items")
				return err
			})
		}, map[string]float64{statements("BEGIN", ""): 1, statements("DeleteItems", ""): 1, statements("COMMIT", ""): 1}},
	} {
		before := durationSeries(scrape(t, reg))
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		after := durationSeries(scrape(t, reg))
		for series, v := range after {
			if got, want := v-before[series], step.want[series]; got != want {
				t.Errorf("%s: %s grew by %v, want %v", step.name, series, got, want)
			}
		}
		for series := range step.want {
			if _, ok := after[series]; !ok {
				t.Errorf("%s: no series %s; have %v", step.name, series, keys(after))
			}
		}
	}
	for s := range durationSeries(scrape(t, reg)) {
		if strings.Contains(s, "items") || strings.Contains(s, "pg_sleep") {
			t.Errorf("series %s carries SQL", s)
		}
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

// Observing a statement allocates nothing once its series exists, when it
// succeeds or its context ends; classifying a server's error may (errors.As).
func TestStatementMetricsAllocateNothing(t *testing.T) {
	metrics := newMetrics(t, nil)
	statements := []dbmodule.Statement{
		{Kind: dbmodule.QueryStatement, Name: "GetAuthor", Duration: time.Millisecond},
		{Kind: dbmodule.QueryStatement, Duration: time.Millisecond},
		{Kind: dbmodule.BatchStatement, Name: "GetAuthor", Duration: time.Millisecond, Err: context.DeadlineExceeded},
		{Kind: dbmodule.CopyFromStatement, Duration: time.Millisecond, Err: context.Canceled},
	}
	for _, s := range statements {
		metrics.ObserveStatement(s) // makes the series
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

// An app that makes names up as it runs gets MaxSummaries series of them,
// and the rest under _OTHER; the same for error types.
func TestStatementMetricsAreBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	metrics := newMetrics(t, reg)
	for i := range dbmetrics.MaxSummaries + 50 {
		metrics.ObserveStatement(dbmodule.Statement{Kind: dbmodule.QueryStatement, Name: fmt.Sprintf("Query%d", i), Duration: time.Millisecond})
	}
	s := durationSeries(scrape(t, reg))
	if got := len(s); got != dbmetrics.MaxSummaries+1 {
		t.Errorf("%d series after %d names, want %d and _OTHER", got, dbmetrics.MaxSummaries+50, dbmetrics.MaxSummaries)
	}
	if got := s[statements(dbmetrics.Other, "")]; got != 50 {
		t.Errorf("_OTHER counted %v statements, want 50", got)
	}

	reg = prometheus.NewPedanticRegistry()
	metrics = newMetrics(t, reg)
	for i := range 100 {
		metrics.ObserveStatement(dbmodule.Statement{Kind: dbmodule.QueryStatement, Name: "Q", Err: fakeSQLState(fmt.Sprintf("X%04d", i))})
	}
	metrics.ObserveStatement(dbmodule.Statement{Kind: dbmodule.QueryStatement, Name: "Q", Err: fakeSQLState("not a code")})
	s = durationSeries(scrape(t, reg))
	if got := len(s); got > 64+2 {
		t.Errorf("%d series of one summary's errors, want at most 64, _OTHER and success", got)
	}
	if got := s[statements("Q", dbmetrics.Other)]; got != 100-64+1 {
		t.Errorf("_OTHER counted %v errors, want %d", got, 100-64+1)
	}
}

func TestNewStatementMetricsRefusesBadLabels(t *testing.T) {
	t.Parallel()
	for _, labels := range []prometheus.Labels{{"": "x"}, {"le": "1"}, {dbmetrics.LabelQuerySummary: "x"}, {dbmetrics.LabelErrorType: "x"}} {
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
	s := dbmodule.Statement{Kind: dbmodule.QueryStatement, Name: "GetCustomerByEmail", Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		metrics.ObserveStatement(s)
	}
}

// fakeSQLState is a server's error with code.
func fakeSQLState(code string) error { return &pgconn.PgError{Code: code, Message: "fake"} }

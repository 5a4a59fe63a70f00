package dbmetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/dbmodule"
)

// The values of the outcome label of pgx_statement_duration_seconds.
const (
	OutcomeOK       = "ok"
	OutcomeError    = "error"
	OutcomeCanceled = "canceled" // the context ended, or the server canceled it (statement_timeout, pg_cancel_backend)
)

// The values of the operation label of pgx_statement_duration_seconds.
const (
	OperationQuery    = "query" // Exec, Query and QueryRow, transaction statements included
	OperationBatch    = "batch" // a whole SendBatch
	OperationCopyFrom = "copy_from"
)

// StatementDurationName is the name of QueryTracer's histogram.
const StatementDurationName = "pgx_statement_duration_seconds"

// Indexes of the label values in QueryTracer.observers.
const (
	query = iota
	batch
	copyFrom
	numOperations
)

const (
	ok = iota
	failed
	canceled
	numOutcomes
)

func labelValues() (operations [numOperations]string, outcomes [numOutcomes]string) {
	return [...]string{OperationQuery, OperationBatch, OperationCopyFrom}, [...]string{OutcomeOK, OutcomeError, OutcomeCanceled}
}

// QueryTracer observes how long each statement, batch and copy takes, by
// operation and outcome, in a Prometheus histogram, of which it is the
// prometheus.Collector. It is a dbmodule.StatementObserver, which is how
// Module uses it, sharing the pool's timing of each statement, and also a pgx
// tracer of its own, for pools made without the module.
//
// A traced statement costs two clock reads, a map lookup and an atomic
// histogram update, and allocates nothing: its start is kept on its
// connection, not in a new context, and the observers of every label pair are
// bound once, in NewQueryTracer.
type QueryTracer struct {
	vec       *prometheus.HistogramVec
	observers [numOperations][numOutcomes]prometheus.Observer
	key       string // of the start time in each connection's CustomData
}

var (
	_ dbmodule.StatementObserver = (*QueryTracer)(nil)
	_ pgx.QueryTracer            = (*QueryTracer)(nil)
	_ pgx.BatchTracer            = (*QueryTracer)(nil)
	_ pgx.CopyFromTracer         = (*QueryTracer)(nil)
	_ prometheus.Collector       = (*QueryTracer)(nil)
)

// buckets span 0.5 ms, a point lookup on a local server, to 10 s, beyond
// which a statement_timeout usually ends things.
func buckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// NewQueryTracer returns a QueryTracer; register it with a
// prometheus.Registerer, and add it to the pool's tracers with
// dbmodule.WithTracers or dbmodule.AsTracer. labels, which may be nil, are
// added to every series: give each pool of a process a label of its own.
func NewQueryTracer(labels prometheus.Labels) (*QueryTracer, error) {
	const help = "Time from sending a statement to its end, by operation (query, batch, copy_from) and outcome (ok, error, canceled)."
	variable := []string{"operation", "outcome"}
	if err := prometheus.NewDesc(StatementDurationName, help, variable, labels).Err(); err != nil {
		return nil, fmt.Errorf("statement duration histogram: %w", err)
	}
	if _, ok := labels["le"]; ok {
		return nil, errors.New(`statement duration histogram: a histogram cannot have the label "le"`)
	}
	t := &QueryTracer{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        StatementDurationName,
		Help:        help,
		ConstLabels: labels,
		Buckets:     buckets(),
	}, variable)}
	t.key = fmt.Sprintf("dbmetrics.QueryTracer/%p", t)
	operations, outcomes := labelValues()
	for i, op := range operations {
		for j, outcome := range outcomes {
			o, err := t.vec.GetMetricWithLabelValues(op, outcome)
			if err != nil {
				return nil, fmt.Errorf("statement duration histogram: %w", err)
			}
			t.observers[i][j] = o
		}
	}
	return t, nil
}

// Describe implements prometheus.Collector.
func (t *QueryTracer) Describe(ch chan<- *prometheus.Desc) { t.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (t *QueryTracer) Collect(ch chan<- prometheus.Metric) { t.vec.Collect(ch) }

// started is a connection's statement in flight, for one QueryTracer.
type started struct{ at time.Time }

func (t *QueryTracer) start(conn *pgx.Conn) {
	data := conn.PgConn().CustomData()
	s, ok := data[t.key].(*started)
	if !ok {
		s = new(started) // once per connection
		data[t.key] = s
	}
	s.at = time.Now()
}

func (t *QueryTracer) end(conn *pgx.Conn, operation int, err error) {
	s, ok := conn.PgConn().CustomData()[t.key].(*started)
	if !ok || s.at.IsZero() {
		return // started before this tracer was added; nothing to measure
	}
	t.observers[operation][outcome(err)].Observe(time.Since(s.at).Seconds())
	s.at = time.Time{}
}

// ObserveStatement implements dbmodule.StatementObserver: in the module, the
// pool's Tracer times each statement once for the logs and for these metrics.
func (t *QueryTracer) ObserveStatement(s dbmodule.Statement) {
	op := query
	switch s.Kind {
	case dbmodule.BatchStatement:
		op = batch
	case dbmodule.CopyFromStatement:
		op = copyFrom
	}
	t.observers[op][outcome(s.Err)].Observe(s.Duration.Seconds())
}

// outcome classifies a statement's error.
func outcome(err error) int {
	if err == nil {
		return ok
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return canceled
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled
		return canceled
	}
	return failed
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *QueryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.start(conn)
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *QueryTracer) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(conn, query, data.Err)
}

// TraceBatchStart implements pgx.BatchTracer.
func (t *QueryTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.start(conn)
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer; the batch is measured as a whole.
func (t *QueryTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *QueryTracer) TraceBatchEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(conn, batch, data.Err)
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (t *QueryTracer) TraceCopyFromStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	t.start(conn)
	return ctx
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (t *QueryTracer) TraceCopyFromEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.end(conn, copyFrom, data.Err)
}

package dbmetrics

import (
	"context"
	"errors"
	"fmt"

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

// StatementDurationName is the name of StatementMetrics's histogram.
const StatementDurationName = "pgx_statement_duration_seconds"

// Indexes of the label values in StatementMetrics.observers.
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

// StatementMetrics observes how long each statement, batch and copy takes,
// by operation and outcome, in a Prometheus histogram, of which it is the
// prometheus.Collector. It is a dbmodule.StatementObserver: the pool's Tracer
// times each statement once, for its logs and for these metrics alike. Give
// it to a pool with dbmodule.WithObservers, or in an fx app with Module.
//
// An observed statement costs one atomic histogram update and allocates
// nothing: the observers of every label pair are bound once, in
// NewStatementMetrics.
type StatementMetrics struct {
	vec       *prometheus.HistogramVec
	observers [numOperations][numOutcomes]prometheus.Observer
}

var (
	_ dbmodule.StatementObserver = (*StatementMetrics)(nil)
	_ prometheus.Collector       = (*StatementMetrics)(nil)
)

// buckets span 0.5 ms, a point lookup on a local server, to 10 s, beyond
// which a statement_timeout usually ends things.
func buckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// NewStatementMetrics returns a StatementMetrics; register it with a
// prometheus.Registerer, and give it to the pool with
// dbmodule.WithObservers. labels, which may be nil, are added to every
// series: give each pool of a process a label of its own.
func NewStatementMetrics(labels prometheus.Labels) (*StatementMetrics, error) {
	const help = "Time from sending a statement to its end, by operation (query, batch, copy_from) and outcome (ok, error, canceled)."
	variable := []string{"operation", "outcome"}
	if err := prometheus.NewDesc(StatementDurationName, help, variable, labels).Err(); err != nil {
		return nil, fmt.Errorf("statement duration histogram: %w", err)
	}
	if _, ok := labels["le"]; ok {
		return nil, errors.New(`statement duration histogram: a histogram cannot have the label "le"`)
	}
	t := &StatementMetrics{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        StatementDurationName,
		Help:        help,
		ConstLabels: labels,
		Buckets:     buckets(),
	}, variable)}
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
func (t *StatementMetrics) Describe(ch chan<- *prometheus.Desc) { t.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (t *StatementMetrics) Collect(ch chan<- prometheus.Metric) { t.vec.Collect(ch) }

// ObserveStatement implements dbmodule.StatementObserver.
func (t *StatementMetrics) ObserveStatement(s dbmodule.Statement) {
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

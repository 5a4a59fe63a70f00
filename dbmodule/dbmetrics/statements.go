package dbmetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/dbmodule"
)

// StatementDurationName is the name of StatementMetrics's histogram:
// OpenTelemetry's db.client.operation.duration, in seconds, as Prometheus
// spells it.
const StatementDurationName = "db_client_operation_duration_seconds"

// The labels of StatementMetrics's histogram besides db_system_name, which is
// always "postgresql": OpenTelemetry's db.query.summary and error.type.
const (
	LabelQuerySummary = "db_query_summary"
	LabelErrorType    = "error_type"
)

// Values of the labels that are not a statement's own.
const (
	// SummaryBatch prefixes the summary of a batch: "BATCH GetAuthor" when
	// all its statements are one named statement, "BATCH" otherwise.
	SummaryBatch = "BATCH"
	// SummaryCopyFrom is the summary of a CopyFrom.
	SummaryCopyFrom = "COPY"
	// Other stands for the values beyond a bound: summaries past
	// MaxSummaries, error types past maxErrorTypes.
	Other = "_OTHER"
	// The error types of a statement whose context ended.
	ErrorTypeCanceled         = "context.Canceled"
	ErrorTypeDeadlineExceeded = "context.DeadlineExceeded"
)

// MaxSummaries bounds the summaries StatementMetrics keeps apart; the
// statements of any further summary are counted under Other. Summaries are
// the names that sqlc or the app declares and the SQL commands, so an app
// reaches the bound only if it makes names up as it runs.
const MaxSummaries = 1000

// maxErrorTypes bounds the error types kept apart per summary. PostgreSQL
// has about 260 SQLSTATE codes, and a statement meets few of them.
const maxErrorTypes = 64

// StatementMetrics observes how long each statement, batch and copy takes in
// a Prometheus histogram, of which it is the prometheus.Collector, by the
// statement's summary (the name sqlc or the app declares, see
// dbmodule.StatementName) and error type (empty for success, the SQLSTATE
// code of a server's error, ErrorTypeCanceled, ErrorTypeDeadlineExceeded or
// Other). It is a dbmodule.StatementObserver: the pool's Tracer times each
// statement once, for its logs and for these metrics alike. Give it to a pool
// with dbmodule.WithObservers, or in an fx app with Module.
//
// An observed statement that succeeds costs a lock-free map lookup and an
// atomic histogram update, and allocates nothing: each summary's series is
// made on its first statement, and kept.
type StatementMetrics struct {
	vec   *prometheus.HistogramVec
	kinds [numKinds]table[*series] // by dbmodule.StatementKind, then name
	other func() *series           // of the summaries past MaxSummaries
	count bounded                  // of summaries
}

const numKinds = int(dbmodule.CopyFromStatement) + 1

var (
	_ dbmodule.StatementObserver = (*StatementMetrics)(nil)
	_ prometheus.Collector       = (*StatementMetrics)(nil)
)

// buckets span 0.5 ms, a point lookup on a local server, to 10 s, beyond
// which a statement_timeout usually ends things. They include
// OpenTelemetry's advice for db.client.operation.duration (1 ms to 10 s)
// but for 0.5 ms, 2.5 ms and the like, which local lookups need.
func buckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// NewStatementMetrics returns a StatementMetrics; register it with a
// prometheus.Registerer, and give it to the pool with
// dbmodule.WithObservers. labels, which may be nil, are added to every
// series: give each pool of a process a label of its own.
func NewStatementMetrics(labels prometheus.Labels) (*StatementMetrics, error) {
	const help = "Duration of database client operations (OpenTelemetry's db.client.operation.duration): " +
		"from sending a statement, batch or copy to its end, by query summary and error type."
	constLabels := prometheus.Labels{"db_system_name": "postgresql"}
	for k, v := range labels {
		constLabels[k] = v
	}
	variable := []string{LabelQuerySummary, LabelErrorType}
	if err := prometheus.NewDesc(StatementDurationName, help, variable, constLabels).Err(); err != nil {
		return nil, fmt.Errorf("statement duration histogram: %w", err)
	}
	if _, ok := labels["le"]; ok {
		return nil, errors.New(`statement duration histogram: a histogram cannot have the label "le"`)
	}
	m := &StatementMetrics{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        StatementDurationName,
		Help:        help,
		ConstLabels: constLabels,
		Buckets:     buckets(),
	}, variable)}
	// Made on first use, so that a scrape shows _OTHER only when it counts.
	m.other = sync.OnceValue(func() *series { return newSeries(m.vec, Other) })
	return m, nil
}

// Describe implements prometheus.Collector.
func (m *StatementMetrics) Describe(ch chan<- *prometheus.Desc) { m.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (m *StatementMetrics) Collect(ch chan<- prometheus.Metric) { m.vec.Collect(ch) }

// ObserveStatement implements dbmodule.StatementObserver.
func (m *StatementMetrics) ObserveStatement(s dbmodule.Statement) {
	m.seriesOf(s).observe(s.Duration.Seconds(), s.Err)
}

// seriesOf returns the series of s's kind and name, making it on first use;
// past MaxSummaries, the series of Other.
func (m *StatementMetrics) seriesOf(s dbmodule.Statement) *series {
	kind := s.Kind
	if int(kind) >= numKinds {
		kind = dbmodule.QueryStatement
	}
	t := &m.kinds[kind]
	if ser, ok := t.load(s.Name); ok {
		return ser
	}
	if m.count.full(MaxSummaries) {
		return m.other() // without a lock, for an app that makes names up
	}
	return t.loadOrAdd(s.Name, func() (*series, bool) {
		if !m.count.take(MaxSummaries) {
			return m.other(), false
		}
		return newSeries(m.vec, summary(kind, s.Name)), true
	})
}

// summary is the db_query_summary of a statement of kind and name.
func summary(kind dbmodule.StatementKind, name string) string {
	switch kind {
	case dbmodule.BatchStatement:
		if name == "" {
			return SummaryBatch
		}
		return SummaryBatch + " " + name
	case dbmodule.CopyFromStatement:
		return SummaryCopyFrom
	}
	return name
}

// errorType classifies a statement's error as OpenTelemetry's error.type:
// for PostgreSQL, the SQLSTATE code of the server's error.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrorTypeDeadlineExceeded
	}
	if errors.Is(err, context.Canceled) {
		return ErrorTypeCanceled
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && isSQLState(pgErr.Code) {
		return pgErr.Code
	}
	return Other
}

// isSQLState reports whether code looks like a SQLSTATE: five digits or
// capital letters. Anything else a server sends counts as Other.
func isSQLState(code string) bool {
	if len(code) != 5 {
		return false
	}
	for i := range len(code) {
		if c := code[i]; !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

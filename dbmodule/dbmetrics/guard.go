package dbmetrics

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fxpg/fxpg/dbmodule"
)

// guardPrefix names what the module's guardrails count beyond
// OpenTelemetry's conventions, as pgxpool_ names what pgxpool counts.
const guardPrefix = "dbmodule_"

// GuardCollector is a prometheus.Collector of a dbmodule.Guard's counters,
// read from Guard.Stats at each scrape: the Guard counts with the atomic adds
// its guardrails make anyway, so the collector costs nothing between
// scrapes. It exports the metrics of the guardrails that are on only; one
// that is off counts nothing, and a zero would read as "nothing happened".
//
// DB_ACQUIRE_TIMEOUT gives OpenTelemetry's db.client.connection.wait_time,
// .pending_requests and .timeouts; DB_LEAK_THRESHOLD, and DB_PASSWORD_FILE
// or a PasswordProvider, counters of the module's own, named dbmodule_.
type GuardCollector struct {
	guard *dbmodule.Guard
	on    dbmodule.Guardrails

	waitTime, pending, timeouts *prometheus.Desc // DB_ACQUIRE_TIMEOUT
	leaks, held                 *prometheus.Desc // DB_LEAK_THRESHOLD
	fetches, failures, retries  *prometheus.Desc // live credentials
}

var _ prometheus.Collector = (*GuardCollector)(nil)

// NewGuardCollector returns a collector of guard's counters. guard must be
// the Guard installed in pool (dbmodule.WithGuard, or the module's), which
// names the metrics as NewPoolCollector does: db_client_connection_pool_name
// is PoolName(pool) unless labels, which may be nil and are added to every
// metric, set it. With no guardrail on, it collects nothing.
func NewGuardCollector(guard *dbmodule.Guard, pool *pgxpool.Pool, labels prometheus.Labels) (*GuardCollector, error) {
	if guard == nil {
		return nil, errors.New("guard metrics: no guard")
	}
	if pool == nil {
		return nil, errors.New("guard metrics: no pool")
	}
	d := newDescs("guard metrics", pool, labels)
	c := &GuardCollector{guard: guard, on: guard.Guardrails()}
	if c.on.AcquireTimeout {
		c.waitTime = d.new("db_client_connection_wait_time_seconds",
			"Time acquires took to get a connection from the pool, those that timed out or were canceled included; OpenTelemetry's db.client.connection.wait_time.")
		c.pending = d.new("db_client_connection_pending_requests",
			"Callers waiting to acquire a connection now; OpenTelemetry's db.client.connection.pending_requests.")
		c.timeouts = d.new("db_client_connection_timeouts_total",
			"Acquires that gave up at DB_ACQUIRE_TIMEOUT with the pool exhausted; OpenTelemetry's db.client.connection.timeouts.")
	}
	if c.on.LeakDetection {
		c.leaks = d.new(guardPrefix+"connection_leaks_total",
			"Connections held longer than DB_LEAK_THRESHOLD (a Rows not closed, a Tx not ended, an Acquire not released, or a long statement), each counted once.")
		c.held = d.new(guardPrefix+"held_connections",
			"Connections acquired and not yet released, hijacked ones included.")
	}
	if c.on.LiveCredentials {
		c.fetches = d.new(guardPrefix+"password_fetches_total",
			"Reads of DB_PASSWORD_FILE, or calls of the PasswordProvider, for new connections.")
		c.failures = d.new(guardPrefix+"password_failures_total",
			"Password fetches that failed: the file unreadable or empty, or the provider failing.")
		c.retries = d.new(guardPrefix+"credential_retries_total",
			"Calls the module's Querier tried again because a new connection's password was rejected or unavailable.")
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

// Describe implements prometheus.Collector.
func (c *GuardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.waitTime, c.pending, c.timeouts, c.leaks, c.held, c.fetches, c.failures, c.retries} {
		if d != nil {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector, from one Stats of the Guard.
func (c *GuardCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.guard.Stats()
	gauge := func(d *prometheus.Desc, v int64) { send(ch, d, prometheus.GaugeValue, float64(v)) }
	counter := func(d *prometheus.Desc, v int64) { send(ch, d, prometheus.CounterValue, float64(v)) }
	if c.on.AcquireTimeout {
		ch <- constHistogram(c.waitTime, s.AcquireWait)
		gauge(c.pending, s.AcquireWaiting)
		counter(c.timeouts, s.AcquireTimeouts)
	}
	if c.on.LeakDetection {
		counter(c.leaks, s.Leaks)
		gauge(c.held, s.HeldConns)
	}
	if c.on.LiveCredentials {
		counter(c.fetches, s.PasswordFetches)
		counter(c.failures, s.PasswordFailures)
		counter(c.retries, s.CredentialRetries)
	}
}

// constHistogram is h, whose buckets are cumulative already, as a
// Prometheus histogram in seconds.
func constHistogram(d *prometheus.Desc, h dbmodule.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Buckets))
	for _, b := range h.Buckets {
		buckets[b.UpperBound.Seconds()] = b.Count
	}
	m, err := prometheus.NewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err) // unreachable: the desc was checked, and has no variable labels
	}
	return m
}

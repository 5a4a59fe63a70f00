package dbmetrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// A Stater reports a pool's statistics; *pgxpool.Pool is one.
type Stater interface {
	Stat() *pgxpool.Stat
}

var _ Stater = (*pgxpool.Pool)(nil)

// PoolCollector is a prometheus.Collector of a pool's statistics, read from
// pgxpool.Stat at each scrape. Durations are in seconds and counters end in
// _total, as Prometheus names them.
type PoolCollector struct {
	pool Stater

	acquired, idle, constructing, total, max        *prometheus.Desc
	acquires, acquireTime, emptyAcquires, emptyWait *prometheus.Desc
	canceledAcquires, connsOpened, connsClosed      *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector returns a collector of pool's statistics. labels, which
// may be nil, are added to every metric: give each pool of a process a label
// of its own, such as {"pool": "replica"}.
func NewPoolCollector(pool Stater, labels prometheus.Labels) *PoolCollector {
	desc := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc("pgxpool_"+name, help, variable, labels)
	}
	return &PoolCollector{
		pool:         pool,
		acquired:     desc("acquired_connections", "Connections currently acquired from the pool."),
		idle:         desc("idle_connections", "Connections currently idle in the pool."),
		constructing: desc("constructing_connections", "Connections currently being opened."),
		total:        desc("total_connections", "Connections in the pool: acquired, idle and being opened."),
		max:          desc("max_connections", "Most connections the pool opens (DB_MAX_CONNS or pool_max_conns)."),
		acquires:     desc("acquires_total", "Successful acquires of a connection from the pool."),
		acquireTime:  desc("acquire_seconds_total", "Time spent in successful acquires, waits included."),
		emptyAcquires: desc("empty_acquires_total",
			"Successful acquires that waited for a connection to be released or opened, as none was idle."),
		emptyWait: desc("empty_acquire_wait_seconds_total",
			"Time successful acquires spent waiting for a connection to be released or opened, as none was idle."),
		canceledAcquires: desc("canceled_acquires_total", "Acquires that ended because their context did."),
		connsOpened:      desc("connections_opened_total", "Connections the pool opened."),
		connsClosed: desc("connections_closed_total",
			"Connections the pool closed for age (max_lifetime) or idleness (max_idle_time); broken ones are not counted.", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.acquired, c.idle, c.constructing, c.total, c.max,
		c.acquires, c.acquireTime, c.emptyAcquires, c.emptyWait, c.canceledAcquires, c.connsOpened, c.connsClosed,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It takes one snapshot of the
// statistics, so the numbers of a scrape agree with each other.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, label ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, label...)
		if err != nil {
			// A bad label name in labels; registering would have refused it.
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	gauge := func(d *prometheus.Desc, v int32) { send(d, prometheus.GaugeValue, float64(v)) }
	counter := func(d *prometheus.Desc, v float64, label ...string) { send(d, prometheus.CounterValue, v, label...) }
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.constructing, s.ConstructingConns())
	gauge(c.total, s.TotalConns())
	gauge(c.max, s.MaxConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireTime, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyWait, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.connsOpened, float64(s.NewConnsCount()))
	counter(c.connsClosed, float64(s.MaxLifetimeDestroyCount()), "max_lifetime")
	counter(c.connsClosed, float64(s.MaxIdleDestroyCount()), "max_idle_time")
}

package dbmetrics

import (
	"errors"
	"net"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// LabelPoolName is the label that names a pool on every metric of a
// PoolCollector: OpenTelemetry's db.client.connection.pool.name.
const LabelPoolName = "db_client_connection_pool_name"

// PoolCollector is a prometheus.Collector of a pool's statistics, read from
// pgxpool.Stat at each scrape. The connection counts follow OpenTelemetry's
// database conventions (db.client.connection.*); what pgxpool counts beyond
// them keeps a pgxpool_ name. Durations are in seconds and counters end in
// _total, as Prometheus names them.
type PoolCollector struct {
	pool *pgxpool.Pool
	// Settings of the pool, which pgxpool.Stat does not report.
	minIdle int32

	count, max, idleMin                             *prometheus.Desc
	constructing                                    *prometheus.Desc
	acquires, acquireTime, emptyAcquires, emptyWait *prometheus.Desc
	canceledAcquires, connsOpened, connsClosed      *prometheus.Desc
}

var _ prometheus.Collector = (*PoolCollector)(nil)

// NewPoolCollector returns a collector of pool's statistics. Every metric
// carries the label db_client_connection_pool_name: PoolName(pool) unless
// labels, which may be nil and are added to every metric, set it. Give each
// pool of a process a name or label of its own, such as {"pool": "replica"}.
func NewPoolCollector(pool *pgxpool.Pool, labels prometheus.Labels) (*PoolCollector, error) {
	if pool == nil {
		return nil, errors.New("pool metrics: no pool")
	}
	d := newDescs("pool metrics", pool, labels)
	desc := d.new
	pgxpoolDesc := func(name, help string, variable ...string) *prometheus.Desc {
		return desc("pgxpool_"+name, help, variable...)
	}
	c := &PoolCollector{
		pool:    pool,
		minIdle: pool.Config().MinIdleConns,
		count: desc("db_client_connection_count",
			"Connections in the pool by state: idle, or used (acquired); OpenTelemetry's db.client.connection.count.",
			"db_client_connection_state"),
		max: desc("db_client_connection_max",
			"Most connections the pool opens (DB_MAX_CONNS or pool_max_conns); OpenTelemetry's db.client.connection.max."),
		idleMin: desc("db_client_connection_idle_min",
			"Idle connections the pool keeps open (DB_MIN_IDLE_CONNS or pool_min_idle_conns); OpenTelemetry's db.client.connection.idle.min."),
		constructing: pgxpoolDesc("constructing_connections", "Connections currently being opened."),
		acquires:     pgxpoolDesc("acquires_total", "Successful acquires of a connection from the pool."),
		acquireTime:  pgxpoolDesc("acquire_seconds_total", "Time spent in successful acquires, waits included."),
		emptyAcquires: pgxpoolDesc("empty_acquires_total",
			"Successful acquires that waited for a connection to be released or opened, as none was idle."),
		emptyWait: pgxpoolDesc("empty_acquire_wait_seconds_total",
			"Time successful acquires spent waiting for a connection to be released or opened, as none was idle."),
		canceledAcquires: pgxpoolDesc("canceled_acquires_total", "Acquires that ended because their context did."),
		connsOpened:      pgxpoolDesc("connections_opened_total", "Connections the pool opened."),
		connsClosed: pgxpoolDesc("connections_closed_total",
			"Connections the pool closed for age (max_lifetime) or idleness (max_idle_time); broken ones are not counted.", "reason"),
	}
	if d.err != nil {
		return nil, d.err
	}
	return c, nil
}

// PoolName names a pool as OpenTelemetry advises when the pool has no name
// of its own: server.address:server.port/db.namespace, from the pool's
// parsed config (its first host; never a password).
func PoolName(pool *pgxpool.Pool) string {
	cc := pool.Config().ConnConfig
	return net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))) + "/" + cc.Database
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.count, c.max, c.idleMin, c.constructing,
		c.acquires, c.acquireTime, c.emptyAcquires, c.emptyWait, c.canceledAcquires, c.connsOpened, c.connsClosed,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It takes one snapshot of the
// statistics, so the numbers of a scrape agree with each other.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v int32, label ...string) {
		send(ch, d, prometheus.GaugeValue, float64(v), label...)
	}
	counter := func(d *prometheus.Desc, v float64, label ...string) {
		send(ch, d, prometheus.CounterValue, v, label...)
	}
	gauge(c.count, s.IdleConns(), "idle")
	gauge(c.count, s.AcquiredConns(), "used")
	gauge(c.max, s.MaxConns())
	gauge(c.idleMin, c.minIdle)
	gauge(c.constructing, s.ConstructingConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireTime, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyWait, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.connsOpened, float64(s.NewConnsCount()))
	counter(c.connsClosed, float64(s.MaxLifetimeDestroyCount()), "max_lifetime")
	counter(c.connsClosed, float64(s.MaxIdleDestroyCount()), "max_idle_time")
}

package dbmetrics

import (
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// descs makes the descs of one collector of a pool, each with the pool's
// name and the caller's labels, and keeps the first error for the
// collector's constructor to return.
type descs struct {
	what   string // for errors: "pool metrics"
	labels prometheus.Labels
	err    error
}

// newDescs labels every desc with db_client_connection_pool_name, which is
// PoolName(pool) unless labels set it, and with labels.
func newDescs(what string, pool *pgxpool.Pool, labels prometheus.Labels) *descs {
	constLabels := prometheus.Labels{LabelPoolName: PoolName(pool)}
	maps.Copy(constLabels, labels)
	return &descs{what: what, labels: constLabels}
}

func (d *descs) new(name, help string, variable ...string) *prometheus.Desc {
	desc := prometheus.NewDesc(name, help, variable, d.labels)
	if err := desc.Err(); err != nil && d.err == nil {
		d.err = fmt.Errorf("%s: %w", d.what, err)
	}
	return desc
}

// send sends a constant metric of d to ch.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, label ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, label...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err) // unreachable: the descs were checked by their constructor
	}
	ch <- m
}

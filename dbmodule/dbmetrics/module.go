package dbmetrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/dbmodule"
)

// Module exports the app's pool to Prometheus: a StatementMetrics observes
// the statements the pool's Tracer times, and a PoolCollector reads the
// pool's statistics. Both are registered with the app's prometheus.Registerer, or
// prometheus.DefaultRegisterer when the app provides none, and unregistered
// when the app stops.
//
// The statement metrics are made only when the pool is, and the collector only when the
// app's dbmodule.Querier is the pool: with a fake Querier, nothing connects.
var Module = fx.Module("dbmetrics",
	fx.Provide(dbmodule.AsStatementObserver(NewRegisteredStatementMetrics)),
	fx.Invoke(RegisterPoolCollector),
)

// Params are the dependencies of the module's constructors.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	// Registerer receives the metrics; prometheus.DefaultRegisterer when
	// the app provides none.
	Registerer prometheus.Registerer `optional:"true"`
	Logger     *zap.Logger           `optional:"true"`
}

// NewRegisteredStatementMetrics is NewStatementMetrics for fx: the metrics are
// registered with p.Registerer until the app stops.
func NewRegisteredStatementMetrics(p Params) (*StatementMetrics, error) {
	t, err := NewStatementMetrics(nil)
	if err != nil {
		return nil, err
	}
	if err := register(p, t); err != nil {
		return nil, err
	}
	return t, nil
}

// CollectorParams are RegisterPoolCollector's dependencies.
type CollectorParams struct {
	fx.In

	Params
	Querier dbmodule.Querier
	Roles   *dbmodule.Roles `optional:"true"`
}

// RegisterPoolCollector registers a PoolCollector of the app's pool with
// p.Registerer until the app stops, labelled role="primary", and, on start,
// one for each read replica's pool, labelled role="replica" and
// replica="host:port". It asks for the Querier, not the pool, so that an
// app whose Querier is a fake builds no pool: such a Querier has no
// statistics, and nothing is registered.
func RegisterPoolCollector(p CollectorParams) error {
	pool, ok := p.Querier.(Stater)
	if !ok {
		if p.Logger != nil {
			p.Logger.Named("db").Debug("no pool statistics to export: the Querier is not a pool", zap.String("querier", fmt.Sprintf("%T", p.Querier)))
		}
		return nil
	}
	if err := register(p.Params, NewPoolCollector(pool, roleLabels(dbmodule.RolePrimary, ""))); err != nil {
		return err
	}
	if p.Roles != nil {
		registerReplicas(p.Params, p.Roles)
	}
	return nil
}

func roleLabels(role dbmodule.Role, replica string) prometheus.Labels {
	return prometheus.Labels{"role": string(role), "replica": replica}
}

// registerReplicas registers the replicas' pools on start, when the app has
// made them if anything asked for a dbmodule.ReadQuerier.
func registerReplicas(p Params, roles *dbmodule.Roles) {
	reg := p.Registerer
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	var registered []prometheus.Collector
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			r := roles.Replicas()
			if r == nil {
				return nil
			}
			for _, s := range r.Status() {
				c := NewPoolCollector(s.Pool, roleLabels(dbmodule.RoleReplica, s.Addr))
				if err := reg.Register(c); err != nil {
					return fmt.Errorf("register replica pool metrics: %w", err)
				}
				registered = append(registered, c)
			}
			return nil
		},
		OnStop: func(context.Context) error {
			for _, c := range registered {
				reg.Unregister(c)
			}
			return nil
		},
	})
}

// register registers c until the app stops.
func register(p Params, c prometheus.Collector) error {
	reg := p.Registerer
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	if err := reg.Register(c); err != nil {
		if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			err = fmt.Errorf("%w (another pool's metrics are registered there: give each app a prometheus.Registry of its own)", err)
		}
		return fmt.Errorf("register database metrics: %w", err)
	}
	p.Lifecycle.Append(fx.StopHook(func() { reg.Unregister(c) }))
	return nil
}

package dbmetrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/dbmodule"
)

// Module exports the app's pool to Prometheus: a StatementMetrics observes
// the statements the pool's Tracer times, and a PoolCollector reads the
// pool's statistics. Both are registered with the prometheus.Registerer the
// app provides, which it must (see ErrNoRegisterer), and unregistered when
// the app stops.
//
// Nothing of it is made unless the pool is: the statement metrics are made
// with the pool, and the collector when the pool is first handed to anyone,
// by decorating *pgxpool.Pool. So an app whose dbmodule.Querier is a fake
// builds no pool and registers nothing. fx applies a decoration only in its
// own module and below, so Module goes where dbmodule.Module goes (at the
// app's top level, or in the same module), and starting fails otherwise. An
// app that decorates *pgxpool.Pool itself cannot use Module (fx allows one
// decoration of a type per module); it composes the parts instead:
//
//	fx.Provide(dbmodule.AsStatementObserver(dbmetrics.NewRegisteredStatementMetrics)),
//	fx.Invoke(dbmetrics.RegisterPoolCollector),
var Module = fx.Options(
	fx.Module("dbmetrics",
		fx.Provide(dbmodule.AsStatementObserver(newModuleStatementMetrics), newWiring),
	),
	fx.Decorate(decoratePool),
)

// ErrNoRegisterer is the error of an app that uses the module's metrics but
// provides no prometheus.Registerer. There is no default, just as dbtrace
// has no default trace provider: metrics land where the app says.
var ErrNoRegisterer = errors.New("the app provides no prometheus.Registerer for the database's metrics: " +
	"provide one through fx, e.g. fx.Supply(fx.Annotate(registry, fx.As(new(prometheus.Registerer)))), " +
	"or prometheus.DefaultRegisterer, the registry promhttp.Handler serves, the same way")

// Params are the dependencies of the module's constructors.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	// Registerer receives the metrics; without one, the constructors fail
	// with ErrNoRegisterer.
	Registerer prometheus.Registerer `optional:"true"`
}

// NewRegisteredStatementMetrics is NewStatementMetrics for fx: the metrics are
// registered with p.Registerer until the app stops.
func NewRegisteredStatementMetrics(p Params) (*StatementMetrics, error) {
	m, err := NewStatementMetrics(nil)
	if err != nil {
		return nil, err
	}
	if err := register(p, m); err != nil {
		return nil, err
	}
	return m, nil
}

// CollectorParams are RegisterPoolCollector's dependencies.
type CollectorParams struct {
	fx.In

	Params
	Pool *pgxpool.Pool
}

// RegisterPoolCollector registers a PoolCollector of p.Pool with
// p.Registerer until the app stops. As an fx.Invoke it builds the pool;
// Module instead registers the collector when the pool is built.
func RegisterPoolCollector(p CollectorParams) error {
	c, err := NewPoolCollector(p.Pool, nil)
	if err != nil {
		return err
	}
	return register(p.Params, c)
}

// wiring is what the module's two halves tell each other: whether the
// decoration that registers the pool's collector ran.
type wiring struct{ poolRegistered bool }

func newWiring() *wiring { return new(wiring) }

// newModuleStatementMetrics is NewRegisteredStatementMetrics, failing the
// app's start when the pool was built but its decoration never ran: Module
// sits in a module where the pool is not used.
func newModuleStatementMetrics(p Params, w *wiring) (*StatementMetrics, error) {
	m, err := NewRegisteredStatementMetrics(p)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StartHook(func(context.Context) error {
		if !w.poolRegistered {
			return errors.New("register database metrics: the pool's statistics are not exported, as dbmetrics.Module " +
				"is in a module where the pool is not used: put it beside dbmodule.Module")
		}
		return nil
	}))
	return m, nil
}

// decoratePool registers a PoolCollector of pool when the pool is built.
func decoratePool(pool *pgxpool.Pool, p Params, w *wiring) (*pgxpool.Pool, error) {
	if err := RegisterPoolCollector(CollectorParams{Params: p, Pool: pool}); err != nil {
		return nil, err
	}
	w.poolRegistered = true
	return pool, nil
}

// register registers c until the app stops.
func register(p Params, c prometheus.Collector) error {
	if p.Registerer == nil {
		return fmt.Errorf("register database metrics: %w", ErrNoRegisterer)
	}
	if err := p.Registerer.Register(c); err != nil {
		if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			err = fmt.Errorf("%w (another pool's metrics are registered there: give each app a prometheus.Registry of its own)", err)
		}
		return fmt.Errorf("register database metrics: %w", err)
	}
	p.Lifecycle.Append(fx.StopHook(func() { p.Registerer.Unregister(c) }))
	return nil
}

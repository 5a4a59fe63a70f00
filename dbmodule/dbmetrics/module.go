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
// the statements the pool's Tracer times, a PoolCollector reads the pool's
// statistics, and a GuardCollector the counters of the app's
// *dbmodule.Guard when a guardrail is on. All are registered with the
// prometheus.Registerer the app provides, which it must (see
// ErrNoRegisterer), and unregistered when the app stops.
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
	// Guard is the pool's guardrails, which dbmodule.Module provides.
	Guard *dbmodule.Guard `optional:"true"`
	// Roles tells of the read replicas' pools, labelled role="replica".
	Roles *dbmodule.Roles `optional:"true"`
}

// RegisterPoolCollector registers a PoolCollector of p.Pool with
// p.Registerer until the app stops, and a GuardCollector of p.Guard when it
// has a guardrail on. As an fx.Invoke it builds the pool; Module instead
// registers the collectors when the pool is built.
func RegisterPoolCollector(p CollectorParams) error {
	c, err := NewPoolCollector(p.Pool, roleLabels(dbmodule.RolePrimary, ""))
	if err != nil {
		return err
	}
	collectors := []prometheus.Collector{c}
	if p.Guard.Guardrails() != (dbmodule.Guardrails{}) { // else it has nothing to count
		g, err := NewGuardCollector(p.Guard, p.Pool, roleLabels(dbmodule.RolePrimary, ""))
		if err != nil {
			return err
		}
		collectors = append(collectors, g)
	}
	if err := register(p.Params, collectors...); err != nil {
		return err
	}
	registerReplicas(p.Params, p.Roles)
	return nil
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

func roleLabels(role dbmodule.Role, replica string) prometheus.Labels {
	return prometheus.Labels{"role": string(role), "replica": replica}
}

// registerReplicas registers the replicas' pools on start, when the app has
// made them (if anything asked for a dbmodule.ReadQuerier with
// DATABASE_READ_URL set), and unregisters them on stop.
func registerReplicas(p Params, roles *dbmodule.Roles) {
	if roles == nil || p.Registerer == nil {
		return
	}
	reg := p.Registerer
	var registered []prometheus.Collector
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			r := roles.Replicas()
			if r == nil {
				return nil
			}
			for _, s := range r.Status() {
				c, err := NewPoolCollector(s.Pool, roleLabels(dbmodule.RoleReplica, s.Addr))
				if err != nil {
					return err
				}
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

// decorateParams are decoratePool's dependencies.
type decorateParams struct {
	fx.In

	Params
	Guard  *dbmodule.Guard `optional:"true"`
	Roles  *dbmodule.Roles `optional:"true"`
	Wiring *wiring
}

// decoratePool registers the collectors of pool and its Guard when the pool
// is built.
func decoratePool(pool *pgxpool.Pool, p decorateParams) (*pgxpool.Pool, error) {
	if err := RegisterPoolCollector(CollectorParams{Params: p.Params, Pool: pool, Guard: p.Guard, Roles: p.Roles}); err != nil {
		return nil, err
	}
	p.Wiring.poolRegistered = true
	return pool, nil
}

// register registers cs until the app stops: all of them, or none.
func register(p Params, cs ...prometheus.Collector) error {
	if p.Registerer == nil {
		return fmt.Errorf("register database metrics: %w", ErrNoRegisterer)
	}
	for i, c := range cs {
		if err := p.Registerer.Register(c); err != nil {
			for _, done := range cs[:i] {
				p.Registerer.Unregister(done)
			}
			if errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				err = fmt.Errorf("%w (another pool's metrics are registered there: give each app a prometheus.Registry of its own)", err)
			}
			return fmt.Errorf("register database metrics: %w", err)
		}
	}
	p.Lifecycle.Append(fx.StopHook(func() {
		for _, c := range cs {
			p.Registerer.Unregister(c)
		}
	}))
	return nil
}

package dbmodule

import (
	"sync"

	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// ReadQuerier runs reads. It has Querier's methods, so sqlc's generated
// New takes it too, but it is a type of its own: an app asks for the
// handle its code needs, and writes stay on Querier.
//
// With DATABASE_READ_URL unset it is the app's Querier itself: code written
// against ReadQuerier runs unchanged on one server. With it set, it is a
// *Replicas: reads go to the standbys in rotation, and to the primary when
// none is usable or none has replayed the request's own writes (see
// WithReadYourWrites). Statements that write fail on a standby (25006).
//
// Replace it in tests like Querier; one fake can stand for both:
//
//	fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Querier)), fx.As(new(dbmodule.ReadQuerier))))
type ReadQuerier interface {
	Querier
}

// A Role is what a pool is for: the primary's writes or a replica's reads.
// Logs and metrics carry it.
type Role string

// The roles.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Roles tells which pools back the app's handles, for readiness checks and
// metrics, without making any: an app whose Querier is a fake has none, and
// the replicas are there only once something asked for ReadQuerier with
// DATABASE_READ_URL set. Module provides one.
type Roles struct {
	mu       sync.Mutex
	replicas *Replicas
}

// NewRoles returns an empty Roles.
func NewRoles() *Roles { return &Roles{} }

// Replicas returns the app's read replicas, or nil when it has none.
func (r *Roles) Replicas() *Replicas {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replicas
}

func (r *Roles) setReplicas(rep *Replicas) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replicas = rep
}

// ReadParams are NewReadQuerier's dependencies.
type ReadParams struct {
	fx.In

	Config config.DB
	// Primary is the app's Querier: reads fall back to it, and it tells the
	// replicas' lag.
	Primary   Querier
	Lifecycle fx.Lifecycle
	Logger    *zap.Logger         `optional:"true"`
	Tracers   []pgx.QueryTracer   `group:"pgx_tracers"`
	Observers []StatementObserver `group:"dbmodule_statement_observers"`
	Roles     *Roles              `optional:"true"`
}

// NewReadQuerier provides the app's ReadQuerier: the Querier itself without
// DATABASE_READ_URL, else the replicas it lists (see Replicas), made like
// the primary's pool from the same settings, started (their connections
// held back until then, their lag checked once) when the app starts and
// closed when it stops. A replica that is down never fails the start.
func NewReadQuerier(p ReadParams) (ReadQuerier, error) {
	if p.Config.ReadURL == "" {
		return p.Primary, nil
	}
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r, err := newReplicas(p.Config, p.Primary, options{logger: log.Named("db"), tracers: p.Tracers, observers: p.Observers})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: r.start, OnStop: r.stop})
	p.Roles.setReplicas(r)
	return r, nil
}

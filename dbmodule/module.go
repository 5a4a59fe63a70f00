package dbmodule

import (
	"github.com/jackc/pgx/v5"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
)

// Module provides the database to an fx app:
//
//   - config.DB, read from the process environment by config.LoadDB;
//   - *Guard, the pool's guardrails (leak detection, acquire timeout, live
//     credentials), each as config.DB asks, made by NewGuard;
//   - *pgxpool.Pool, made by NewPool, pinged on start and closed on stop;
//   - Querier, the pool as a query handle that rides out failovers;
//   - *Transactor, which runs functions in transactions on the Querier;
//   - ReadQuerier, the read handle: the Querier, or the replicas of
//     DATABASE_READ_URL (NewReadQuerier);
//   - *Roles, which tells readiness checks and metrics of the replicas.
//
// It logs through the app's *zap.Logger when there is one. Replace config.DB
// with fx.Replace to point the app at another database, or replace Querier
// (annotated with fx.As) to run it with no database at all.
var Module = fx.Module("dbmodule",
	fx.Provide(
		config.LoadDB,
		NewGuard,
		NewPool,
		NewQuerier,
		NewTransactor,
		NewReadQuerier,
		NewRoles,
	),
)

// AsTracer annotates a constructor of a pgx tracer so that the pool adds its
// result to the tracers it runs after its own Tracer:
//
//	fx.Provide(dbmodule.AsTracer(newOTelTracer))
func AsTracer(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(pgx.QueryTracer)), fx.ResultTags(`group:"dbmodule_tracers"`))
}

// AsTracers is AsTracer for a constructor of a []pgx.QueryTracer, which may
// be empty: for tracing that a setting turns on.
func AsTracers(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"dbmodule_tracers,flatten"`))
}

// AsStartTask annotates a constructor of a StartTask so that the pool runs
// the task on start, before anything uses the pool.
func AsStartTask(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"dbmodule_start_tasks"`))
}

// AsStatementObserver annotates a constructor of a StatementObserver so that
// the pool's Tracer tells it of every statement.
func AsStatementObserver(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(StatementObserver)), fx.ResultTags(`group:"dbmodule_statement_observers"`))
}

package dbmodule_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// Stopping while the start-up server check waits for a connection returns
// within the stop context: on today's main the hook waited for the check,
// up to the connect timeout plus the ping timeout (issue 10, item 7).
func TestStopReturnsWithinItsContextWhileTheServerCheckWaits(t *testing.T) {
	watcher := new(probeTracer)
	log, logs := observed()
	var pool *pgxpool.Pool
	app := fx.New(dbmodule.Module,
		fx.Replace(config.DB{URL: pg.URL(t), MaxConns: 1, ConnectTimeout: 10 * time.Second}),
		fx.Provide(dbmodule.AsTracer(func() *probeTracer { return watcher })),
		fx.Supply(log), fx.NopLogger,
		fx.Populate(&pool))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Hold the pool's only connection, so that the check, a second after
	// start, waits for it.
	held, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := watcher.acquires.Load()
	dbtest.WaitFor(t, "the server check to wait for a connection", func() bool { return watcher.acquires.Load() > before })

	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	begin := time.Now()
	err = app.Stop(ctx)
	took := time.Since(begin)
	if err == nil {
		t.Error("Stop succeeded although a connection was still held")
	}
	// fx's Stop returns at its deadline even while a hook runs on; the
	// hook's own last log line says when it returned.
	const last = "database pool not closed in time"
	dbtest.WaitFor(t, "the pool's OnStop to return", func() bool { return logs.FilterMessage(last).Len() > 0 })
	held.Release() // the pool finishes closing once it is back
	if ran := logs.FilterMessage(last).All()[0].Time.Sub(begin); ran > budget+100*time.Millisecond {
		t.Errorf("the pool's OnStop returned after %s (Stop after %s), want within its %s context", ran, took, budget)
	}
}

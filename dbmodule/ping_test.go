package dbmodule_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// unstartedPool makes a pool without pinging it.
func unstartedPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pc, err := dbmodule.ParseConfig(config.DB{URL: url, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// fakeExec is a Querier whose Exec returns err; its other methods are nil.
type fakeExec struct {
	dbmodule.Querier
	err error
}

func (f fakeExec) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, f.err
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	if err := dbmodule.Ping(ctx, unstartedPool(t, pg.URL(t))); err != nil {
		t.Errorf("Ping of the test server = %v", err)
	}

	closed := unstartedPool(t, pg.URL(t))
	closed.Close()
	shortCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	for name, tt := range map[string]struct {
		q      dbmodule.Querier
		ctx    context.Context
		reason string
	}{
		"closed pool":      {closed, ctx, "database pool is closed"},
		"nothing listens":  {unstartedPool(t, "postgres://app:"+secret+"@"+dbtest.ClosedAddr(t)+"/app"), ctx, "database refusing connections: connection refused"},
		"silent server":    {unstartedPool(t, "postgres://app:"+secret+"@"+dbtest.SilentAddr(t)+"/app"), shortCtx, "database did not answer in time"},
		"no such database": {unstartedPool(t, strings.Replace(pg.URL(t), "/postgres?", "/no_such_db?", 1)), ctx, "database database does not exist (SQLSTATE 3D000)"},
		"fake that fails":  {fakeExec{err: errors.New("internal detail 10.0.0.7")}, ctx, "database failed"},
	} {
		t.Run(name, func(t *testing.T) {
			err := dbmodule.Ping(tt.ctx, tt.q)
			var pe *dbmodule.PingError
			if !errors.As(err, &pe) || err.Error() != tt.reason {
				t.Errorf("Ping = %v, want a PingError saying %q", err, tt.reason)
			}
			if pe != nil && pe.Err == nil {
				t.Error("PingError lost the driver's error")
			}
		})
	}
	if err := dbmodule.Ping(ctx, fakeExec{}); err != nil {
		t.Errorf("Ping of a fake whose Exec succeeds = %v", err)
	}
}

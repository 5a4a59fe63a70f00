package dbmodule_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// readApp starts dbmodule on cfg with an observed logger, asking for both
// handles.
func readApp(t *testing.T, cfg config.DB) (dbmodule.Querier, dbmodule.ReadQuerier, *dbmodule.Roles, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	var (
		q     dbmodule.Querier
		reads dbmodule.ReadQuerier
		roles *dbmodule.Roles
	)
	app := fx.New(dbmodule.Module, fx.Replace(cfg), fx.Supply(zap.New(core)), fx.NopLogger, fx.Populate(&q, &reads, &roles))
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := app.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return q, reads, roles, logs
}

// With no read URL, the read handle is the Querier itself: code written for
// a cluster runs unchanged on one server.
func TestReadQuerierIsTheQuerierWithoutReadURL(t *testing.T) {
	q, reads, roles, _ := readApp(t, pg.Database(t))
	if reads != dbmodule.ReadQuerier(q) {
		t.Errorf("ReadQuerier is %T, want the Querier", reads)
	}
	if roles.Replicas() != nil {
		t.Error("replicas without a read URL")
	}
}

// One fake stands for both handles, and nothing reads the environment or
// connects.
func TestOneFakeStandsForBothHandles(t *testing.T) {
	for _, v := range []string{"DATABASE_URL", "DIRECT_URL", "DATABASE_READ_URL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	fake := &recordingQuerier{}
	var (
		q     dbmodule.Querier
		reads dbmodule.ReadQuerier
	)
	app := fx.New(dbmodule.Module, fx.NopLogger, fx.Populate(&q, &reads),
		fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Querier)), fx.As(new(dbmodule.ReadQuerier)))))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if q != dbmodule.Querier(fake) || reads != dbmodule.ReadQuerier(fake) {
		t.Errorf("handles are %T and %T, want the fake for both", q, reads)
	}
}

type recordingQuerier struct{ dbmodule.Querier }

// A read URL whose hosts are no standby (here the primary itself, and a
// port nothing listens on) leaves no replica in rotation: the app starts,
// says so once, and reads go to the primary.
func TestReadsGoToThePrimaryWhenNoReplicaIsUsable(t *testing.T) {
	cfg := pg.Database(t)
	u, err := url.Parse(pg.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host += ",127.0.0.1:1"
	cfg.ReadURL = u.String()
	_, reads, roles, logs := readApp(t, cfg)
	if _, ok := reads.(*dbmodule.Replicas); !ok {
		t.Fatalf("ReadQuerier with a read URL is %T, want *dbmodule.Replicas", reads)
	}
	ctx := context.Background()
	for range 20 {
		var inRecovery bool
		if err := reads.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
			t.Fatalf("read = %v, %v; want the primary's answer", inRecovery, err)
		}
	}
	status := roles.Replicas().Status()
	if len(status) != 2 || status[0].InRotation || status[1].InRotation {
		t.Fatalf("replica status = %+v, want two out of rotation", status)
	}
	err = roles.Replicas().Check(ctx)
	t.Logf("readiness: %v", err)
	if err == nil || strings.Contains(err.Error(), "replica 1") || !strings.Contains(err.Error(), "replica 2 not answering") ||
		!strings.Contains(err.Error(), "reads go to the primary") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("readiness = %v; want the replica down, by index, not the primary, and no address", err)
	}
	if n := logs.FilterMessageSnippet("none in rotation").Len(); n != 1 {
		t.Errorf("'none in rotation' logged %d times, want once", n)
	}
	if n := logs.FilterMessageSnippet("left read rotation").Len(); n != 0 {
		t.Errorf("a replica that was never in rotation was logged leaving it %d times", n)
	}
}

// A bad read URL fails the app's construction, naming its variable and
// hiding its password.
func TestBadReadURLNamesItsVariable(t *testing.T) {
	cfg := pg.Database(t)
	cfg.ReadURL = "postgres://u:" + secret + "@127.0.0.1:5432/db?pool_max_conn=3"
	var reads dbmodule.ReadQuerier
	// A fake primary: a failed fx.New closes no pool it made.
	app := fx.New(dbmodule.Module, fx.Replace(cfg), fx.NopLogger, fx.Populate(&reads),
		fx.Replace(fx.Annotate(&recordingQuerier{}, fx.As(new(dbmodule.Querier)))))
	err := app.Err()
	var ve *config.VarError
	if !errors.As(err, &ve) || ve.Var != "DATABASE_READ_URL" || strings.Contains(err.Error(), secret) {
		t.Errorf("bad read URL: %v; want a VarError naming DATABASE_READ_URL, without the password", err)
	}
}

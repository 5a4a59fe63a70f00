package dbmodule_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
	"github.com/fxpg/fxpg/dbmodule/dbtest"
)

// This file tests starting and stopping the Listener: failing start,
// bounded stop, logs without the password, and ListenerModule in an app.

// Start fails, within the connect timeout, when the database cannot be
// reached, naming where and which variable, never the password.
func TestListenerStartFailsWhenUnreachable(t *testing.T) {
	const password = "p@ss:w/o%rd ü?#x"
	for _, c := range []struct {
		name, addr string
	}{
		{"refused", dbtest.ClosedAddr(t)},
		{"silent", dbtest.SilentAddr(t)},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := (&url.URL{Scheme: "postgres", User: url.UserPassword("app", password), Host: c.addr, Path: "/db", RawQuery: "sslmode=disable"}).String()
			log, logs := observed()
			app := fx.New(
				dbmodule.ListenerModule,
				fx.Supply(config.DB{DirectURL: raw, URL: "postgres://pooler.invalid/db", ConnectTimeout: 300 * time.Millisecond}, log),
				fx.Invoke(func(dbmodule.Notifications) {}),
				fx.NopLogger,
			)
			begin := time.Now()
			err := app.Start(context.Background())
			took := time.Since(begin)
			if err == nil {
				app.Stop(context.Background()) //nolint:errcheck
				t.Fatal("start succeeded with no database")
			}
			if took > 2*time.Second {
				t.Errorf("start failed after %s; want about the connect timeout (300ms)", took)
			}
			msg := err.Error()
			for _, want := range []string{c.addr, "DIRECT_URL"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			for _, secret := range []string{password, url.UserPassword("app", password).String()} {
				if strings.Contains(msg, secret) {
					t.Errorf("error carries the password: %q", msg)
				}
			}
			assertNoSecret(t, logs, raw)
		})
	}
}

// With an awkward password: connecting, losing the connection, recovering
// and stopping log nothing that holds it.
func TestListenerLogsNoPassword(t *testing.T) {
	const password = "p@ss:w/o%rd ü?#x 'q'"
	ctx := context.Background()
	admin := dialConn(t, pg.URL(t))
	role := fmt.Sprintf("listener_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", pgx.Identifier{role}.Sanitize(), strings.ReplaceAll(password, "'", "''"))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role) //nolint:errcheck
		admin.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize())                                      //nolint:errcheck
	})
	base, _ := url.Parse(pg.URL(t))
	base.User = url.UserPassword(role, password)
	raw := base.String()
	log, logs := observed()
	l, err := dbmodule.OpenListener(ctx, config.DB{URL: raw}, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := newNotifLog()
	if _, err := l.Listen(ctx, "secret", rec.handler()); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", int64(l.BackendPID())); err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, "the gap", func() bool { return rec.gaps("secret") == 1 })
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if logs.Len() < 4 {
		t.Errorf("want start, loss, recovery and stop logged; got %d lines", logs.Len())
	}
	assertNoSecret(t, logs, raw)
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), url.QueryEscape(password)) {
			t.Errorf("log entry %q carries the encoded password", e.Message)
		}
	}
}

// Stop returns within its context even when a handler never returns; the
// handler's context has ended by then.
func TestListenerStopIsBoundedByItsContext(t *testing.T) {
	cfg := pg.Database(t)
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var handlerCtx context.Context
	stuck := dbmodule.HandlerFuncs{Notification: func(ctx context.Context, _ *pgconn.Notification) {
		handlerCtx = ctx
		close(entered)
		<-release // ignores ctx, as a badly written handler would
	}}
	if _, err := l.Listen(ctx, "stuck", stuck); err != nil {
		t.Fatal(err)
	}
	sendNotify(t, cfg.URL, "stuck", "x")
	<-entered
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err = l.Close(stopCtx)
	took := time.Since(begin)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"stuck"`) {
		t.Errorf("Close with a stuck handler = %v; want a deadline error naming its channel", err)
	}
	if took > time.Second {
		t.Errorf("Close took %s with a 200ms context", took)
	}
	if handlerCtx.Err() == nil {
		t.Error("the handler's context did not end at Close")
	}
	close(release)
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// ListenerModule builds a Listener only for an app that asks for one: with
// the module but no subscriber, nothing connects.
func TestListenerModuleConnectsOnlyWhenAsked(t *testing.T) {
	log, logs := observed()
	app := fxtest.New(t, dbmodule.Module, dbmodule.ListenerModule, pg.Module(t), fx.Supply(log),
		fx.Invoke(func(dbmodule.Querier) {}))
	app.RequireStart()
	app.RequireStop()
	if n := logs.FilterMessageSnippet("listener").Len(); n != 0 {
		t.Errorf("an app that does not listen logged %d listener lines", n)
	}
}

// With Module, the pool starts first and stops last, so that handlers can
// use it whenever they run.
func TestListenerStartsAfterThePool(t *testing.T) {
	log, logs := observed()
	app := fxtest.New(t, dbmodule.Module, dbmodule.ListenerModule, pg.Module(t), fx.Supply(log),
		// fx builds these in order: the listener first, unless it asks for the pool.
		fx.Invoke(func(dbmodule.Notifications, dbmodule.Querier) {}))
	app.RequireStart()
	app.RequireStop()
	var order []string
	for _, e := range logs.All() {
		if strings.HasPrefix(e.Message, "database pool") || strings.HasPrefix(e.Message, "database listener") {
			order = append(order, e.Message)
		}
	}
	want := []string{"database pool opened", "database listener started", "database listener stopped", "database pool closed"}
	if !slices.Equal(order, want) {
		t.Errorf("lifecycle logged %q; want %q", order, want)
	}
}

package dbmodule_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/dbmodule"
)

// This file holds the Listener's runnable examples: a fake Notifications
// in an fx app, and OpenListener without fx.

// fakeNotifications hands its handlers only what a test sends it.
type fakeNotifications struct{ handlers map[string]dbmodule.Handler }

func (f *fakeNotifications) Listen(_ context.Context, channel string, h dbmodule.Handler) (func(), error) {
	f.handlers[channel] = h
	return func() { delete(f.handlers, channel) }, nil
}

func (f *fakeNotifications) send(channel, payload string) {
	f.handlers[channel].HandleNotification(context.Background(), &pgconn.Notification{Channel: channel, Payload: payload})
}

// exampleCache is an app component that drops the entries notifications
// name, and everything after a gap.
type exampleCache struct{ entries map[string]string }

func newExampleCache(n dbmodule.Notifications) (*exampleCache, error) {
	c := &exampleCache{entries: map[string]string{"user:42": "Ada", "user:7": "Grace"}}
	_, err := n.Listen(context.Background(), "cache_invalidations", dbmodule.HandlerFuncs{
		Notification: func(_ context.Context, n *pgconn.Notification) { delete(c.entries, n.Payload) },
		Gap:          func(context.Context, string) { clear(c.entries) },
	})
	return c, err
}

// Replacing Notifications runs an app's listeners with no database: the
// test plays the server. Annotate the fake with fx.As, or fx.Replace would
// replace a *fakeNotifications that nothing asks for.
func Example_fakeNotifications() {
	fake := &fakeNotifications{handlers: map[string]dbmodule.Handler{}}
	var c *exampleCache
	app := fx.New(
		dbmodule.ListenerModule,
		fx.Replace(fx.Annotate(fake, fx.As(new(dbmodule.Notifications)))),
		fx.Provide(newExampleCache),
		fx.Populate(&c),
		fx.NopLogger,
	)
	fmt.Println(app.Err())
	fake.send("cache_invalidations", "user:42")
	fmt.Println(len(c.entries), c.entries["user:7"])
	fake.handlers["cache_invalidations"].HandleGap(context.Background(), "cache_invalidations")
	fmt.Println(len(c.entries))
	// Output:
	// <nil>
	// 1 Grace
	// 0
}

// OpenListener and Close without fx.
func ExampleOpenListener() {
	ctx := context.Background()
	l, err := dbmodule.OpenListener(ctx, config.DB{URL: databaseURL()}, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close(ctx)
	got := make(chan string, 1)
	_, err = l.Listen(ctx, "greetings", dbmodule.HandlerFuncs{
		Notification: func(_ context.Context, n *pgconn.Notification) { got <- n.Payload },
		Gap:          func(context.Context, string) { fmt.Println("resynchronise") },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_notify('greetings', 'hello')"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: hello
}

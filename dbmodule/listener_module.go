package dbmodule

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// ListenerModule provides a *Listener (NewListener) and Notifications, the
// same Listener as a handle a test can replace. It is not part of Module, and
// fx builds the Listener only for an app that asks for either, so an app that
// does not listen opens no connection for it. It needs the config.DB that
// Module provides:
//
//	fx.New(dbmodule.Module, dbmodule.ListenerModule, fx.Invoke(subscribe))
var ListenerModule = fx.Module("dbmodule.listener",
	fx.Provide(
		NewListener,
		NewNotifications,
	),
)

// ListenerParams are NewListener's dependencies.
type ListenerParams struct {
	fx.In

	Config    config.DB
	Lifecycle fx.Lifecycle
	// Logger is the app's logger, if it provides one.
	Logger *zap.Logger `optional:"true"`
	// Pool, when the app has one, only orders the hooks: the pool, and its
	// start tasks such as migrations, start before the listener and stop
	// after it, so that handlers may use the pool whenever they run.
	Pool *pgxpool.Pool `optional:"true"`
}

// NewListener makes the app's Listener and ties it to the app's lifecycle:
// making it does no I/O; starting the app connects and LISTENs to the
// channels subscribed so far, and fails within DB_CONNECT_TIMEOUT when the
// database cannot be reached, as the pool's ping does; stopping the app
// closes the connection and waits for the handlers, within the stop context.
func NewListener(p ListenerParams) (*Listener, error) {
	l, err := newListener(p.Config, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: l.start, OnStop: l.stop})
	return l, nil
}

// NewNotifications provides the Listener as the app's Notifications.
func NewNotifications(l *Listener) Notifications { return l }

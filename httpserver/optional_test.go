package httpserver_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/httpserver"
)

// An optional check's failure is reported, and leaves the service ready;
// a required one's makes it unready, the optional one still reported.
func TestOptionalCheckIsReportedButNotRequired(t *testing.T) {
	var primaryDown atomic.Bool
	var srv *httpserver.Server
	app := fxtest.New(t,
		httpserver.Module,
		fx.Supply(config.App{HTTPAddr: "127.0.0.1:0"}, zap.NewNop()),
		fx.Provide(
			httpserver.AsCheck(func() httpserver.Check {
				return httpserver.Check{Name: "replicas", Optional: true, Check: func(context.Context) error {
					return errors.New("replica 1 not answering; reads go to the primary")
				}}
			}),
			httpserver.AsCheck(func() httpserver.Check {
				return httpserver.Check{Name: "database", Check: func(context.Context) error {
					if primaryDown.Load() {
						return errors.New("database unreachable")
					}
					return nil
				}}
			}),
		),
		fx.Populate(&srv),
	)
	app.RequireStart()
	defer app.RequireStop()
	if code, body := get(t, srv, "/readyz"); code != http.StatusOK || body != "ready\nreplicas: replica 1 not answering; reads go to the primary\n" {
		t.Errorf("/readyz with an optional check failing = %d %q", code, body)
	}
	primaryDown.Store(true)
	want := "not ready\ndatabase: database unreachable\nreplicas: replica 1 not answering; reads go to the primary\n"
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz with both failing = %d %q, want 503 %q", code, body, want)
	}
}

package httpserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
	"github.com/fxpg/fxpg/httpserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, srv *httpserver.Server, path string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + srv.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProbesAndRoutes(t *testing.T) {
	var unhealthy atomic.Bool
	var srv *httpserver.Server
	app := fxtest.New(t,
		httpserver.Module,
		fx.Supply(config.App{HTTPAddr: "127.0.0.1:0"}, zap.NewNop()),
		fx.Provide(
			httpserver.AsCheck(func() httpserver.Check {
				return httpserver.Check{Name: "cache", Check: func(context.Context) error {
					if !unhealthy.Load() {
						return nil
					}
					return errors.New("cache is warming up")
				}}
			}),
			httpserver.AsRoute(func() httpserver.Route {
				return httpserver.Route{Pattern: "GET /hello", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					io.WriteString(w, "hi")
				})}
			}),
		),
		fx.Populate(&srv),
	)
	if srv.Addr() != nil {
		t.Error("Addr is set before start")
	}
	app.RequireStart()
	defer app.RequireStop()

	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n", "/hello": "hi"} {
		if code, body := get(t, srv, path); code != http.StatusOK || body != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, code, body, want)
		}
	}
	unhealthy.Store(true)
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body != "not ready\ncache: cache is warming up\n" {
		t.Errorf("/readyz with a failing check = %d %q", code, body)
	}
	if code, _ := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz must not depend on readiness checks, got %d", code)
	}
}

func TestStartFailsWhenAddressIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	app := fx.New(httpserver.Module, fx.NopLogger, fx.Supply(config.App{HTTPAddr: ln.Addr().String()}, zap.NewNop()))
	err = app.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDR") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Start on a taken address = %v, want an error naming HTTP_ADDR and the address", err)
	}
}

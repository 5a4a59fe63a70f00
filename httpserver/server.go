package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/fxpg/fxpg/config"
)

// Module provides and starts the HTTP server.
var Module = fx.Module("httpserver",
	fx.Provide(New),
	fx.Invoke(func(*Server) {}),
)

// A Route is a handler for a ServeMux pattern, such as "GET /metrics".
type Route struct {
	Pattern string
	Handler http.Handler
}

// A Check is one readiness condition. Its error's message is shown to
// whoever asks /readyz, so it must not carry secrets or internal addresses.
// An Optional check's failure is reported in /readyz's body but leaves the
// service ready, as for a read replica: the service works without it.
type Check struct {
	Name     string
	Check    func(context.Context) error
	Optional bool
}

// AsRoute annotates a constructor of a Route so that the server mounts it.
func AsRoute(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"routes"`))
}

// AsCheck annotates a constructor of a Check so that /readyz runs it.
func AsCheck(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"readiness"`))
}

// Params are New's dependencies.
type Params struct {
	fx.In

	Config    config.App
	Lifecycle fx.Lifecycle
	Logger    *zap.Logger
	Routes    []Route `group:"routes"`
	Checks    []Check `group:"readiness"`
}

// ReadinessTimeout bounds each readiness check: a probe that hangs is worse
// than one that fails.
const ReadinessTimeout = time.Second

// Server is the service's HTTP server.
type Server struct {
	srv *http.Server

	mu   sync.Mutex
	addr net.Addr
}

// New makes the server. Starting the app binds its address, failing Start
// if it is taken; stopping the app shuts it down gracefully.
func New(p Params) *Server {
	log := p.Logger.Named("http")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /readyz", readiness(p.Checks, log))
	for _, r := range p.Routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	s := &Server{srv: &http.Server{
		Addr:              p.Config.WithDefaults().HTTPAddr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
	}}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", s.srv.Addr)
			if err != nil {
				return fmt.Errorf("HTTP_ADDR: listen on %s: %w", s.srv.Addr, err)
			}
			s.mu.Lock()
			s.addr = ln.Addr()
			s.mu.Unlock()
			log.Info("http server listening", zap.Stringer("addr", ln.Addr()))
			go func() {
				// Serve returns when OnStop shuts the server down.
				if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
					log.Error("http server failed", zap.Error(err))
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if err := s.srv.Shutdown(ctx); err != nil {
				return fmt.Errorf("shut down http server: %w", err)
			}
			return nil
		},
	})
	return s
}

// Addr is the address the server listens on once started, which tells the
// port when HTTP_ADDR asks for port 0; nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// readiness answers 200 when every check that is not Optional passes within
// ReadinessTimeout, and 503 otherwise, listing each failing check's reason.
func readiness(checks []Check, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadinessTimeout)
		defer cancel()
		var failed, degraded []string
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				log.Warn("readiness check failed", zap.String("check", c.Name), zap.NamedError("reason", err), zap.Error(errors.Unwrap(err)),
					zap.Bool("optional", c.Optional))
				if c.Optional {
					degraded = append(degraded, c.Name+": "+err.Error())
				} else {
					failed = append(failed, c.Name+": "+err.Error())
				}
			}
		}
		failed = append(failed, degraded...)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		status := "ready"
		if len(failed) > len(degraded) {
			w.WriteHeader(http.StatusServiceUnavailable)
			status = "not ready"
		}
		fmt.Fprintln(w, status)
		for _, f := range failed {
			fmt.Fprintln(w, f)
		}
	})
}
